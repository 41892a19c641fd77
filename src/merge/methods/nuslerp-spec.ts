import { WEIGHT_PARAM, type MethodSpec } from '../method-spec.js';

/** SLERP driven by two weights, optionally of task vectors around a base (semantics §1.3). */
export const NUSLERP_SPEC: MethodSpec = {
  id: 'nuslerp',
  family: 'nuslerp',
  title: 'NuSLERP',
  doc: 'SLERP of exactly two models at t = w₂/(w₁+w₂); with a base model, of their task vectors.',
  params: [
    {
      name: 'nuslerp_row_wise',
      scope: 'global',
      kind: 'boolean',
      default: false,
      required: false,
      doc: 'Without flattening, slerp along dim 0 instead of the last dim.',
    },
    {
      name: 'nuslerp_flatten',
      scope: 'global',
      kind: 'boolean',
      default: true,
      required: false,
      doc: 'Slerp the whole flattened tensor (true) or each vector separately (false).',
    },
    WEIGHT_PARAM,
  ],
  needsBase: 'optional',
  modelCount: { min: 2, max: 2 },
  embedShapes: 'common',
  otherShapes: 'error',
  randomized: false,
  rules: [],
};
