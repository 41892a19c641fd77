import { WEIGHT_PARAM, type MethodSpec } from '../method-spec.js';

/** Weighted average (semantics §1.3): out = Σ wᵢxᵢ, divided by Σ wᵢ when `normalize`. */
export const LINEAR_SPEC: MethodSpec = {
  id: 'linear',
  family: 'linear',
  title: 'Linear',
  reference: 'https://arxiv.org/abs/2203.05482',
  doc: 'Weighted sum of the models, divided by the sum of the weights when normalize is true.',
  params: [
    {
      name: 'normalize',
      scope: 'global',
      kind: 'boolean',
      default: true,
      required: false,
      doc: 'Divide by the sum of the weights (no zero guard in mergekit; evomerge refuses Σw = 0).',
    },
    WEIGHT_PARAM,
  ],
  needsBase: 'no',
  modelCount: { min: 1, max: Number.POSITIVE_INFINITY },
  embedShapes: 'common',
  otherShapes: 'error',
  randomized: false,
  rules: ['weights-sum-nonzero'],
};
