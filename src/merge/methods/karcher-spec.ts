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
      min: 1,
      integer: true,
      searchRange: [5, 50],
      doc: 'Maximum fixed-point iterations.',
    },
    {
      name: 'tol',
      scope: 'global',
      kind: 'number',
      default: 1e-5,
      required: false,
      min: 0,
      minExclusive: true,
      doc: 'Convergence tolerance on the update norm.',
    },
  ],
  needsBase: 'no',
  modelCount: { min: 1, max: Number.POSITIVE_INFINITY },
  embedShapes: 'common',
  otherShapes: 'error',
  randomized: false,
  rules: [],
};
