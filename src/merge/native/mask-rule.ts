import type { MaskSource } from './binding.js';
import { markRankBlock, type RankState } from './rank-mask.js';
import { bernoulliFill } from './random-mask.js';
import { BLOCK } from './numeric.js';

/** One input's kept positions, evaluated block by block in index order. */
export interface BlockMasker {
  readonly active: boolean;
  /**
   * Kept flags (0 / 1) of elements [j, j + n), n <= BLOCK; `deltaBits` holds the f32 bits of the
   * block's δ = R(x − base) (or |δ|). The view is valid until the next call.
   */
  block(j: number, n: number, deltaBits: Uint32Array): Uint8Array;
}

/**
 * TypeScript twin of mask-rule.h BlockMasker, for a kernel covering elements [start, count):
 * checks the byte mask's length and that a rank rule starts at element 0.
 */
export function blockMasker(source: MaskSource, start: number, count: number, name: string): BlockMasker {
  if (source === null) return { active: false, block: () => new Uint8Array(0) };
  if (source instanceof Uint8Array) {
    if (source.length < count) throw new TypeError(`${name} holds ${source.length} bytes, needs ${count}`);
    return { active: true, block: (j, n) => source.subarray(j, j + n) };
  }
  const out = new Uint8Array(BLOCK);
  if (source.kind === 'bernoulli') {
    return {
      active: true,
      block: (j, n) => {
        bernoulliFill(source.key0, source.key1, source.threshold, source.indexOffset + j, n, out);
        return out;
      },
    };
  }
  // Ranks count in the whole tensor, of which the buffers may be a row chunk: lo and hi may pass `count`.
  if (!(source.lo >= 0 && source.lo <= source.hi && source.hi < 2 ** 32)) throw new TypeError(`${name}: need 0 <= lo <= hi < 2^32`);
  if (start !== 0) throw new TypeError(`${name}: a rank mask rule needs start = 0`);
  const keys = new Uint32Array(BLOCK);
  const flip = source.descending ? 0xffffffff : 0;
  const state: RankState = { nextLo: source.beforeLo, nextHi: source.beforeHi };
  return {
    active: true,
    block: (_j, n, deltaBits) => {
      if (source.lo >= source.hi) return out.fill(0);
      for (let k = 0; k < n; k++) keys[k] = ((deltaBits[k] ?? 0) & 0x7fffffff) ^ flip;
      markRankBlock(keys, 0, n, source, state, out, 0);
      return out;
    },
  };
}
