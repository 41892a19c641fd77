import type { RankBoundsArgs, RankMaskArgs } from './binding.js';
import { BLOCK, elementReader, loadBlock, roundBlock, scratch } from './numeric.js';

/**
 * Order keys of |δ|, δ = R(x − base): the bit pattern of a non-negative f32 orders like its value
 * (NaN above +Inf); descending order uses the complement.
 */
function orderKeys(a: Omit<RankMaskArgs, 'mask'>): Uint32Array {
  const c = a.computeDType;
  const base = elementReader(a.base, a.baseDType, a.count, 'base');
  const x = elementReader(a.x, a.xDType, a.count, 'x');
  const b = scratch();
  const v = scratch();
  const keys = new Uint32Array(a.count);
  const flip = a.descending ? 0xffffffff : 0;
  for (let j = 0; j < a.count; j += BLOCK) {
    const n = Math.min(BLOCK, a.count - j);
    loadBlock(base, j, n, b.f, b.u, c);
    loadBlock(x, j, n, v.f, v.u, c);
    for (let k = 0; k < n; k++) v.f[k] = (v.f[k] ?? 0) - (b.f[k] ?? 0);
    roundBlock(c, v.f, n);
    for (let k = 0; k < n; k++) keys[j + k] = ((v.u[k] ?? 0) & 0x7fffffff) ^ flip;
  }
  return keys;
}

/** The bucket holding rank r and the count of entries in earlier buckets. */
function findBucket(hist: Float64Array, r: number): { bucket: number; before: number } {
  let cum = 0;
  for (let i = 0; i < hist.length; i++) {
    const h = hist[i] ?? 0;
    if (cum + h > r) return { bucket: i, before: cum };
    cum += h;
  }
  return { bucket: hist.length - 1, before: cum };
}

/** The order keys at ranks lo and hi − 1 (lo < hi) and the counts of smaller keys. */
interface Bounds {
  readonly keyLo: number;
  readonly keyHi: number;
  readonly beforeLo: number;
  readonly beforeHi: number;
}

function selectBounds(keys: Uint32Array, lo: number, hi: number): Bounds {
  const top = new Float64Array(65536);
  for (let j = 0; j < keys.length; j++) {
    const t = (keys[j] ?? 0) >>> 16;
    top[t] = (top[t] ?? 0) + 1;
  }
  const bl = findBucket(top, lo);
  const bh = findBucket(top, hi - 1);
  const lowA = new Float64Array(65536);
  const lowB = new Float64Array(65536);
  for (let j = 0; j < keys.length; j++) {
    const k = keys[j] ?? 0;
    const t = k >>> 16;
    const low = k & 0xffff;
    if (t === bl.bucket) lowA[low] = (lowA[low] ?? 0) + 1;
    if (t === bh.bucket) lowB[low] = (lowB[low] ?? 0) + 1;
  }
  const wl = findBucket(lowA, lo - bl.before);
  const wh = findBucket(lowB, hi - 1 - bh.before);
  return {
    keyLo: ((bl.bucket << 16) | wl.bucket) >>> 0,
    keyHi: ((bh.bucket << 16) | wh.bucket) >>> 0,
    beforeLo: bl.before + wl.before,
    beforeHi: bh.before + wh.before,
  };
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
 */
export function markRankBlock(
  keys: Uint32Array,
  from: number,
  n: number,
  rule: Bounds & { readonly lo: number; readonly hi: number },
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

function checkWindow(a: { readonly count: number; readonly lo: number; readonly hi: number }, kernel: string): void {
  if (!(a.lo >= 0 && a.lo <= a.hi && a.hi <= a.count)) throw new TypeError(`${kernel}: need 0 <= lo <= hi <= count`);
}

/**
 * TypeScript twin of rank-mask.cc: mask[j] = 1 iff the rank of |δ[j]| lies in [lo, hi), ranks
 * counted in ascending (or descending) magnitude, ties broken by lower index first.
 */
export function rankWindowMask(a: RankMaskArgs): void {
  checkWindow(a, 'rankWindowMask');
  if (a.mask.length < a.count) throw new TypeError(`mask holds ${a.mask.length} bytes, needs ${a.count}`);
  a.mask.fill(0, 0, a.count);
  if (a.lo >= a.hi) return;
  const keys = orderKeys(a);
  const bounds = selectBounds(keys, a.lo, a.hi);
  markRankBlock(keys, 0, a.count, { ...bounds, lo: a.lo, hi: a.hi }, { nextLo: bounds.beforeLo, nextHi: bounds.beforeHi }, a.mask, 0);
}

/** TypeScript twin of rank-mask.cc rank_window_bounds: what a RankRule needs; all 0 when lo >= hi. */
export function rankWindowBounds(a: RankBoundsArgs): void {
  checkWindow(a, 'rankWindowBounds');
  if (a.out.length < 4) throw new TypeError('out must hold 4 elements');
  const b = a.lo >= a.hi ? { keyLo: 0, keyHi: 0, beforeLo: 0, beforeHi: 0 } : selectBounds(orderKeys(a), a.lo, a.hi);
  a.out[0] = b.keyLo;
  a.out[1] = b.keyHi;
  a.out[2] = b.beforeLo;
  a.out[3] = b.beforeHi;
}
