import type { RankHistogramArgs, RankLowHistogramArgs } from './binding.js';
import { BLOCK, elementReader, loadBlock, roundBlock, scratch } from './numeric.js';

/**
 * Order keys of |δ|, δ = R(x − base), block by block: the bit pattern of a non-negative f32 orders
 * like its value (NaN above +Inf); descending order uses the complement.
 */
function forEachKeyBlock(a: Omit<RankHistogramArgs, 'top' | 'lowBits'>, fn: (keys: Uint32Array, n: number) => void): void {
  if (!(Number.isSafeInteger(a.count) && a.count >= 0 && a.count < 2 ** 32)) throw new TypeError('count must be below 2^32');
  const c = a.computeDType;
  const base = elementReader(a.base, a.baseDType, a.count, 'base');
  const x = elementReader(a.x, a.xDType, a.count, 'x');
  const b = scratch();
  const v = scratch();
  const keys = new Uint32Array(BLOCK);
  const flip = a.descending ? 0xffffffff : 0;
  for (let j = 0; j < a.count; j += BLOCK) {
    const n = Math.min(BLOCK, a.count - j);
    loadBlock(base, j, n, b.f, b.u, c);
    loadBlock(x, j, n, v.f, v.u, c);
    for (let k = 0; k < n; k++) v.f[k] = (v.f[k] ?? 0) - (b.f[k] ?? 0);
    roundBlock(c, v.f, n);
    for (let k = 0; k < n; k++) keys[k] = ((v.u[k] ?? 0) & 0x7fffffff) ^ flip;
    fn(keys, n);
  }
}

function checkLength(a: Uint32Array, n: number, name: string): void {
  if (a.length < n) throw new TypeError(`${name} holds ${a.length} elements, needs ${n}`);
}

/** TypeScript twin of rank-mask.cc rank_histogram: top-16-bit counts of the order keys and the low bits' OR / AND. */
export function rankHistogram(a: RankHistogramArgs): void {
  checkLength(a.top, 65536, 'top');
  checkLength(a.lowBits, 2, 'lowBits');
  a.top.fill(0, 0, 65536);
  let or = 0;
  let and = 0xffff;
  forEachKeyBlock(a, (keys, n) => {
    for (let k = 0; k < n; k++) {
      const key = keys[k] ?? 0;
      const t = key >>> 16;
      a.top[t] = (a.top[t] ?? 0) + 1;
      or |= key & 0xffff;
      and &= key;
    }
  });
  a.lowBits[0] = or;
  a.lowBits[1] = and & 0xffff;
}

/** TypeScript twin of rank-mask.cc rank_low_histogram: low-16-bit counts of the keys in two top buckets. */
export function rankLowHistogram(a: RankLowHistogramArgs): void {
  checkLength(a.lowLo, 65536, 'lowLo');
  checkLength(a.lowHi, 65536, 'lowHi');
  if (!(a.bucketLo >= 0 && a.bucketLo < 65536 && a.bucketHi >= 0 && a.bucketHi < 65536)) {
    throw new TypeError('bucketLo and bucketHi must be below 65536');
  }
  a.lowLo.fill(0, 0, 65536);
  a.lowHi.fill(0, 0, 65536);
  forEachKeyBlock(a, (keys, n) => {
    for (let k = 0; k < n; k++) {
      const key = keys[k] ?? 0;
      const t = key >>> 16;
      const low = key & 0xffff;
      if (t === a.bucketLo) a.lowLo[low] = (a.lowLo[low] ?? 0) + 1;
      if (t === a.bucketHi) a.lowHi[low] = (a.lowHi[low] ?? 0) + 1;
    }
  });
}

/** Running ranks of the keys equal to each bound, carried from block to block. */
export interface RankState {
  nextLo: number;
  nextHi: number;
}

/**
 * Marks keys[from, from + n) into out[at, at + n) against a rank window (lo < hi): keys strictly
 * between the bounds are kept; a key equal to a bound takes that bound's next rank in index order
 * (one equal to both counts against the lower) and is kept when the rank lies in [lo, hi).
 * (mask-rule.h mark_rank_block is the C++ twin.)
 */
export function markRankBlock(
  keys: Uint32Array,
  from: number,
  n: number,
  rule: { readonly keyLo: number; readonly keyHi: number; readonly lo: number; readonly hi: number },
  state: RankState,
  out: Uint8Array,
  at: number,
): void {
  const { keyLo, keyHi, lo, hi } = rule;
  for (let k = 0; k < n; k++) {
    const key = keys[from + k] ?? 0;
    let keep = 0;
    if (key > keyLo && key < keyHi) keep = 1;
    else if (key === keyLo || key === keyHi) {
      const rank = key === keyLo ? state.nextLo++ : state.nextHi++;
      keep = rank >= lo && rank < hi ? 1 : 0;
    }
    out[at + k] = keep;
  }
}
