import type { MethodSpec } from '../method-spec.js';

/** NearSwap: take the other model's value where it is close to the base's (semantics §1.4). */
export const NEARSWAP_SPEC: MethodSpec = {
  id: 'nearswap',
  family: 'nearswap',
  title: 'NearSwap',
  reference: 'https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001',
  doc: 'w = clamp(t / max(|a−b|, 1e-6), 0, 1); out = w·b + (1−w)·a with a the base.',
  params: [
    {
      name: 't',
      scope: 'global',
      kind: 'number',
      required: true,
      searchRange: [0, 0.01],
      doc: 'Distance scale: elements closer than t to the base are swapped entirely.',
    },
  ],
  needsBase: 'yes',
  modelCount: { min: 1, max: 1 },
  embedShapes: 'exact',
  otherShapes: 'error',
  randomized: false,
  rules: [],
};
