import type { MethodSpec } from '../method-spec.js';

/** Riemannian (Karcher) mean of the models' directions with equal weights (semantics §1.3). */
export const KARCHER_SPEC: MethodSpec = {
  id: 'karcher',
  family: 'karcher',
  title: 'Karcher mean',
  doc: 'Equal-weight Riemannian mean of the unit directions, scaled by the mean norm.',
  params: [
    {
      name: 'max_iter',
      scope: 'global',
      kind: 'number',
      default: 10,
      required: false,
      min: 0,
      integer: true,
      searchRange: [5, 50],
      doc: 'Maximum fixed-point iterations (0: the normalised weighted mean of the unit directions, as mergekit).',
    },
    {
      name: 'tol',
      scope: 'global',
      kind: 'number',
      default: 1e-5,
      required: false,
      min: 0,
      minExclusive: true,
      // mergekit accepts 0, but then θ/sin θ is 0/0 for any model already at the mean and its output NaN.
      doc: 'Convergence tolerance on the update norm (> 0).',
    },
  ],
  needsBase: 'no',
  modelCount: { min: 1, max: Number.POSITIVE_INFINITY },
  embedShapes: 'common',
  otherShapes: 'error',
  randomized: false,
  rules: [],
};
