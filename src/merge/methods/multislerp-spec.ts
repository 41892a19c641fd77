import { WEIGHT_PARAM, type MethodSpec } from '../method-spec.js';

/** Barycentric interpolation on the hypersphere (semantics §1.3). */
export const MULTISLERP_SPEC: MethodSpec = {
  id: 'multislerp',
  family: 'multislerp',
  title: 'Multi-SLERP',
  reference: 'https://goddard.blog/posts/multislerp-wow-what-a-cool-idea',
  doc: 'Weighted spherical mean of any number of models, optionally of task vectors around a base.',
  params: [
    {
      name: 'normalize_weights',
      scope: 'global',
      kind: 'boolean',
      default: true,
      required: false,
      doc: 'Scale the weights to sum to 1.',
    },
    {
      name: 'eps',
      scope: 'global',
      kind: 'number',
      default: 1e-8,
      required: false,
      min: 0,
      minExclusive: true,
      doc: 'Numerical floor on norms.',
    },
    WEIGHT_PARAM,
  ],
  needsBase: 'optional',
  modelCount: { min: 1, max: Number.POSITIVE_INFINITY },
  // An easy_define method: it never rectifies embedding sizes, so any mismatch fails (§1.4).
  embedShapes: 'exact',
  otherShapes: 'error',
  randomized: false,
  rules: ['weights-sum-nonzero'],
};
