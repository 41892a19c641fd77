/**
 * The counter-based generator behind DARE and DELLA masks (design.md, Randomness). A draw is a
 * pure function of (merge seed, tensor name, model index, element index): the stream key comes
 * from the first three, the element index is the counter. Masks are therefore bit-identical for
 * any pool size, chunking or task order. The C++ twin of `mix32`/`draw32` is native/random.h.
 *
 * This is not torch's generator: mergekit's masks cannot be reproduced (semantics §0.10), only
 * their distribution (random-methods.md). Bernoulli(p) keeps an element iff its 32-bit draw is
 * below ceil(p·2^32), so the keep probability is p rounded up to a multiple of 2^-32.
 */
import { EvoError } from '../errors.js';

/** A 32-bit xorshift-multiply finaliser (bijective on 32 bits). */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x21f0aaad);
  h ^= h >>> 15;
  h = Math.imul(h, 0x735a2d97);
  h ^= h >>> 15;
  return h >>> 0;
}

/** The 32-bit draw for element `index` (a non-negative safe integer) of stream (key0, key1). */
export function draw32(key0: number, key1: number, index: number): number {
  const lo = index >>> 0;
  const hi = Math.floor(index / 4294967296) >>> 0;
  const a = mix32(lo ^ key0);
  return mix32((a + key1 + Math.imul(hi, 0x85ebca6b)) >>> 0);
}

/** The integer threshold of Bernoulli(p): keep iff draw32 < threshold. p is clamped to [0, 1]. */
export function keepThreshold(p: number): number {
  if (!(p > 0)) return 0;
  if (p >= 1) return 4294967296;
  return Math.ceil(p * 4294967296);
}

/** The key of one random stream: one (merge seed, tensor, model) triple. */
export interface StreamKey {
  readonly key0: number;
  readonly key1: number;
}

function fnv1a32(bytes: Uint8Array, basis: number): number {
  let h = basis >>> 0;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

const encoder = new TextEncoder();

/**
 * The stream of model `modelIndex` (its index in TensorTask.inputs) for tensor `tensor` under
 * merge seed `seed` (a non-negative safe integer).
 */
export function streamKey(seed: number, tensor: string, modelIndex: number): StreamKey {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new EvoError('BAD_SEED', `random seed must be a non-negative integer, got ${seed}`);
  }
  const name = encoder.encode(tensor);
  const h0 = fnv1a32(name, 0x811c9dc5);
  const h1 = fnv1a32(name, 0x050c5d1f);
  const seedLo = seed >>> 0;
  const seedHi = Math.floor(seed / 4294967296) >>> 0;
  const m = modelIndex >>> 0;
  const key0 = mix32(mix32(mix32(seedLo ^ 0x5bd1e995) ^ h0) + m);
  const key1 = mix32((mix32(mix32(seedHi ^ 0x1b873593) + h1) ^ Math.imul(m + 1, 0x9e3779b9)) >>> 0);
  return { key0, key1 };
}
