import type { MaskedL1Args } from './binding.js';
import { blockMasker } from './mask-rule.js';
import { BLOCK, elementReader, loadBlock, roundBlock, scratch } from './numeric.js';

/**
 * Bins of one exact sum of non-negative f32 values (masked-l1.cc kL1Bins): bin e < 255 holds the
 * sum of the significands (implicit bit included) of the values with exponent field e, then the
 * counts of NaN and of +Inf. Integer sums add up in any order, so the bins of a tensor's chunks
 * sum to the bins of the tensor.
 */
export const L1_BINS = 258;

/** TypeScript twin of masked-l1.cc: exact Σ|δ| and Σ|δ| over kept entries, δ = R(x − base), as bins. */
export function maskedL1(a: MaskedL1Args): void {
  const c = a.computeDType;
  const base = elementReader(a.base, a.baseDType, a.count, 'base');
  const x = elementReader(a.x, a.xDType, a.count, 'x');
  const masker = blockMasker(a.mask, 0, a.count, 'mask');
  if (a.out.length < 2 * L1_BINS) throw new TypeError(`out must hold ${2 * L1_BINS} elements`);
  const b = scratch();
  const v = scratch();
  const all = new BinSum();
  const kept = new BinSum();
  for (let j = 0; j < a.count; j += BLOCK) {
    const n = Math.min(BLOCK, a.count - j);
    loadBlock(base, j, n, b.f, b.u, c);
    loadBlock(x, j, n, v.f, v.u, c);
    for (let k = 0; k < n; k++) v.f[k] = (v.f[k] ?? 0) - (b.f[k] ?? 0);
    roundBlock(c, v.f, n);
    const m = masker.active ? masker.block(j, n, v.u) : null;
    for (let k = 0; k < n; k++) {
      const u = (v.u[k] ?? 0) & 0x7fffffff;
      all.add(u);
      if (m === null || m[k] !== 0) kept.add(u);
    }
    all.flush();
    kept.flush();
  }
  all.write(a.out, 0);
  kept.write(a.out, L1_BINS);
}

/** Exact bins, summed per block in doubles (512 significands < 2^53) and flushed to BigInt. */
class BinSum {
  readonly #block = new Float64Array(L1_BINS);
  readonly #total: bigint[] = Array.from({ length: L1_BINS }, () => 0n);

  add(u: number): void {
    const e = u >>> 23;
    if (e === 255) {
      const at = (u & 0x7fffff) !== 0 ? 256 : 257;
      this.#block[at] = (this.#block[at] ?? 0) + 1;
      return;
    }
    const m = e !== 0 ? (u & 0x7fffff) | 0x800000 : u & 0x7fffff;
    this.#block[e] = (this.#block[e] ?? 0) + m;
  }

  flush(): void {
    for (let e = 0; e < L1_BINS; e++) {
      const s = this.#block[e] ?? 0;
      if (s === 0) continue;
      this.#total[e] = (this.#total[e] ?? 0n) + BigInt(s);
      this.#block[e] = 0;
    }
  }

  write(out: BigInt64Array, at: number): void {
    for (let e = 0; e < L1_BINS; e++) out[at + e] = this.#total[e] ?? 0n;
  }
}

/** Adds the bins of `from` into `into` (same layout: 2 × L1_BINS). */
export function addL1Bins(into: BigInt64Array, from: BigInt64Array): void {
  if (into.length !== from.length) throw new TypeError(`L1 bins of ${from.length} entries cannot add into ${into.length}`);
  for (let i = 0; i < into.length; i++) into[i] = (into[i] ?? 0n) + (from[i] ?? 0n);
}

/**
 * The exact sum the bins at `at` stand for, rounded once to the nearest double (ties to even):
 * NaN when a NaN was summed, else +Inf when an Inf was.
 */
export function l1FromBins(bins: BigInt64Array, at: number): number {
  if ((bins[at + 256] ?? 0n) > 0n) return NaN;
  if ((bins[at + 257] ?? 0n) > 0n) return Infinity;
  // Σ m_e · 2^(max(e, 1) − 150): an integer times 2^−149, converted by BigInt → Number (correctly
  // rounded) and scaled exactly.
  let total = 0n;
  for (let e = 0; e < 255; e++) {
    const m = bins[at + e] ?? 0n;
    if (m !== 0n) total += m << BigInt(Math.max(e, 1) - 1);
  }
  return Number(total) * 2 ** -149;
}
