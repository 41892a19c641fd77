import type { MethodSpec } from '../method-spec.js';

/** SCE: select by variance, calculate weights from energy, erase by sign (semantics §1.4). */
export const SCE_SPEC: MethodSpec = {
  id: 'sce',
  family: 'sce',
  title: 'SCE',
  reference: 'https://arxiv.org/abs/2408.07990',
  doc: 'Task vectors kept at high-variance positions, TIES sign election, weights from each model’s mean squared delta.',
  params: [
    {
      name: 'int8_mask',
      scope: 'global',
      kind: 'boolean',
      default: false,
      required: false,
      doc: 'Store the sign mask as int8 (no numeric effect).',
    },
    {
      name: 'select_topk',
      scope: 'global',
      kind: 'number',
      default: 1,
      required: false,
      min: 0,
      minExclusive: true,
      max: 1,
      searchRange: [0.1, 1],
      doc: 'Fraction of positions kept by across-model variance (1 keeps all).',
    },
  ],
  needsBase: 'yes',
  modelCount: { min: 0, max: Number.POSITIVE_INFINITY },
  // An easy_define method: no embedding rectification, so shapes must match (§1.4).
  embedShapes: 'exact',
  otherShapes: 'error',
  randomized: false,
  rules: [],
};
