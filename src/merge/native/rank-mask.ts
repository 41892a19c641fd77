import type { RankMaskArgs } from './binding.js';
import { BLOCK, elementReader, loadBlock, roundBlock, scratch } from './numeric.js';

/**
 * Order keys of |δ|, δ = R(x − base): the bit pattern of a non-negative f32 orders like its value
 * (NaN above +Inf); descending order uses the complement.
 */
function orderKeys(a: RankMaskArgs): Uint32Array {
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

/**
 * TypeScript twin of rank-mask.cc: mask[j] = 1 iff the rank of |δ[j]| lies in [lo, hi), ranks
 * counted in ascending (or descending) magnitude, ties broken by lower index first.
 */
export function rankWindowMask(a: RankMaskArgs): void {
  const { count, lo, hi } = a;
  if (!(lo >= 0 && lo <= hi && hi <= count)) throw new TypeError('rankWindowMask: need 0 <= lo <= hi <= count');
  if (a.mask.length < count) throw new TypeError(`mask holds ${a.mask.length} bytes, needs ${count}`);
  const mask = a.mask;
  mask.fill(0, 0, count);
  if (lo >= hi) return;
  const keys = orderKeys(a);
  const top = new Float64Array(65536);
  for (let j = 0; j < count; j++) {
    const t = (keys[j] ?? 0) >>> 16;
    top[t] = (top[t] ?? 0) + 1;
  }
  const bl = findBucket(top, lo);
  const bh = findBucket(top, hi - 1);
  const lowA = new Float64Array(65536);
  const lowB = new Float64Array(65536);
  for (let j = 0; j < count; j++) {
    const k = keys[j] ?? 0;
    const t = k >>> 16;
    const low = k & 0xffff;
    if (t === bl.bucket) lowA[low] = (lowA[low] ?? 0) + 1;
    if (t === bh.bucket) lowB[low] = (lowB[low] ?? 0) + 1;
  }
  const wl = findBucket(lowA, lo - bl.before);
  const wh = findBucket(lowB, hi - 1 - bh.before);
  const vLo = ((bl.bucket << 16) | wl.bucket) >>> 0;
  const vHi = ((bh.bucket << 16) | wh.bucket) >>> 0;
  let nextLo = bl.before + wl.before;
  let nextHi = bh.before + wh.before;
  for (let j = 0; j < count; j++) {
    const key = keys[j] ?? 0;
    if (key < vLo || key > vHi) continue;
    if (key > vLo && key < vHi) {
      mask[j] = 1;
      continue;
    }
    const rank = key === vLo ? nextLo++ : nextHi++;
    if (rank >= lo && rank < hi) mask[j] = 1;
  }
}
