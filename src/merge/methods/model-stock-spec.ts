import type { MethodSpec } from '../method-spec.js';

/** Model Stock: interpolate the fine-tunes' mean toward the base by their agreement (semantics §1.3). */
export const MODEL_STOCK_SPEC: MethodSpec = {
  id: 'model_stock',
  family: 'model_stock',
  title: 'Model Stock',
  reference: 'https://arxiv.org/abs/2403.19522',
  doc: 't = N·cos/(1+(N−1)·cos) from the mean pairwise cosine of the task vectors; out = t·mean + (1−t)·base.',
  params: [
    {
      name: 'filter_wise',
      scope: 'global',
      kind: 'boolean',
      default: false,
      required: false,
      doc: 'Compute the cosine per row instead of over the flattened tensor.',
    },
  ],
  needsBase: 'yes',
  modelCount: { min: 2, max: Number.POSITIVE_INFINITY },
  embedShapes: 'common',
  otherShapes: 'error',
  randomized: false,
  rules: [],
};
