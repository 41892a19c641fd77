import type { MethodSpec } from '../method-spec.js';

/** Spherical interpolation between the base (t = 0) and one other model (semantics §0.9, §1.3). */
export const SLERP_SPEC: MethodSpec = {
  id: 'slerp',
  family: 'slerp',
  title: 'SLERP',
  reference: 'https://en.wikipedia.org/wiki/Slerp',
  doc: 'Spherical interpolation of the flattened tensors, from the base (t = 0) to the other model (t = 1); lerp when nearly colinear.',
  params: [
    {
      name: 't',
      scope: 'global',
      kind: 'number',
      required: true,
      searchRange: [0, 1],
      doc: 'Interpolation position: 0 is the base model, 1 the other model.',
    },
  ],
  needsBase: 'yes',
  modelCount: { min: 1, max: 1 },
  embedShapes: 'common',
  otherShapes: 'error',
  randomized: false,
  rules: [],
};
