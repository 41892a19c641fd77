import type { MethodSpec } from '../method-spec.js';

/** Copy one model's tensor, optionally scaled: layer stacking / frankenmerges (semantics §1.4). */
export const PASSTHROUGH_SPEC: MethodSpec = {
  id: 'passthrough',
  family: 'passthrough',
  title: 'Passthrough',
  doc: 'Copies the single input tensor, multiplied by scale when one is set.',
  params: [
    {
      name: 'scale',
      scope: 'model',
      kind: 'number',
      required: false,
      searchRange: [0, 1],
      doc: 'Optional multiplier of the copied tensor (none: an exact copy).',
    },
  ],
  needsBase: 'no',
  modelCount: { min: 1, max: 1 },
  embedShapes: 'exact',
  otherShapes: 'error',
  randomized: false,
  rules: [],
};
