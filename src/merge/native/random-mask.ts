import { draw32 } from '../random.js';
import type { BernoulliMaskArgs, DellaMaskArgs } from './binding.js';
import { BLOCK, elementReader, loadBlock, roundBlock, roundTo, scratch, type ComputeCode } from './numeric.js';

/** TypeScript twin of mask-rule.h bernoulli_fill: out[k] = draw32(j0 + k) < threshold for k in [0, n). */
export function bernoulliFill(key0: number, key1: number, threshold: number, j0: number, n: number, out: Uint8Array): void {
  for (let k = 0; k < n; k++) out[k] = draw32(key0, key1, j0 + k) < threshold ? 1 : 0;
}

/** TypeScript twin of random-mask.cc bernoulli_mask: mask[j] = draw32(j) < threshold over [start, end). */
export function bernoulliMask(a: BernoulliMaskArgs): void {
  if (a.mask.length < a.end) throw new TypeError(`mask holds ${a.mask.length} bytes, needs ${a.end}`);
  bernoulliFill(a.key0, a.key1, a.threshold, a.start, a.end - a.start, a.mask.subarray(a.start, a.end));
}

/**
 * DELLA's keep probability for the element of 0-based ascending rank r among `len`, computed op
 * by op in the work dtype as mergekit does (random-methods.md): rank r+1 normalised to [0, 1],
 * p = (density − ε) + r̂·2·ε. `lowP` = f32(density − ε), `eps` = f32(ε). A vector of one element
 * gets r̂ = ½, i.e. p = density (mergekit divides 0 by 0 there and fails).
 */
export function dellaProbability(work: ComputeCode, r: number, len: number, lowP: number, eps: number): number {
  let rn: number;
  if (len === 1) {
    rn = 0.5;
  } else {
    const rk = roundTo(work, roundTo(work, r) + 1);
    const maxR = roundTo(work, roundTo(work, len - 1) + 1);
    rn = roundTo(work, roundTo(work, rk - 1) / roundTo(work, maxR - 1));
    rn = rn < 0 ? 0 : rn > 1 ? 1 : rn;
  }
  return roundTo(work, Math.fround(lowP) + roundTo(work, roundTo(work, rn * 2) * Math.fround(eps)));
}

/** TypeScript twin of random-mask.cc della_mask: rank-based probabilities per vector, then draws. */
export function dellaMask(a: DellaMaskArgs): void {
  const { outer, len, inner } = a;
  const count = outer * len * inner;
  if (a.mask.length < count) throw new TypeError(`mask holds ${a.mask.length} bytes, needs ${count}`);
  const c = a.computeDType;
  const base = elementReader(a.base, a.baseDType, count, 'base');
  const x = elementReader(a.x, a.xDType, count, 'x');
  const b = scratch();
  const v = scratch();
  const slab = len * inner;
  // Sort keys (magnitude bits, then position) packed into one exact double when they fit.
  const packed = len < 2 ** 21;
  const sortable = new Float64Array(slab);
  const keys = new Uint32Array(packed ? 0 : slab);
  const probs = new Float64Array(len);
  for (let r = 0; r < len; r++) probs[r] = Math.ceil(dellaProbability(a.workDType, r, len, a.lowP, a.eps) * 4294967296);
  for (let o = 0; o < outer; o++) {
    const first = o * slab;
    for (let s = 0; s < slab; s += BLOCK) {
      const n = Math.min(BLOCK, slab - s);
      loadBlock(base, first + s, n, b.f, b.u, c);
      loadBlock(x, first + s, n, v.f, v.u, c);
      for (let k = 0; k < n; k++) v.f[k] = (v.f[k] ?? 0) - (b.f[k] ?? 0);
      roundBlock(c, v.f, n);
      for (let k = 0; k < n; k++) {
        const l = Math.floor((s + k) / inner);
        const i = s + k - l * inner;
        const key = (v.u[k] ?? 0) & 0x7fffffff;
        if (packed) sortable[i * len + l] = key * 2097152 + l;
        else {
          keys[i * len + l] = key;
          sortable[i * len + l] = l;
        }
      }
    }
    for (let i = 0; i < inner; i++) {
      const seg = sortable.subarray(i * len, (i + 1) * len);
      if (packed) seg.sort();
      else {
        const kseg = keys.subarray(i * len, (i + 1) * len);
        seg.sort((p, q) => (kseg[p] ?? 0) - (kseg[q] ?? 0) || p - q);
      }
      for (let r = 0; r < len; r++) {
        const l = packed ? (seg[r] ?? 0) % 2097152 : (seg[r] ?? 0);
        const j = first + l * inner + i;
        a.mask[j] = draw32(a.key0, a.key1, a.indexOffset + j) < (probs[r] ?? 0) ? 1 : 0;
      }
    }
  }
}
