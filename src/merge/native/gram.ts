import type { GramArgs } from './binding.js';
import { forEachRun } from './layout.js';
import { BLOCK, dtypeAt, elementReader, laneTotal, loadBlock, roundBlock, roundTo, scratch, type Scratch } from './numeric.js';

/**
 * TypeScript twin of gram.cc: per vector of the layout, Σ v_a·v_b for every pair a <= b (in the
 * order (0,0), (0,1), …, (1,1), …), with v = R(x − base) when a base is given, else x. Products
 * are exact in f64; sums run in four lanes by position in the vector (mod 4), combined as
 * (l0 + l1) + (l2 + l3). With a mask, positions whose mask byte is 0 count as 0. With
 * roundProducts each product is R(v_a·v_b) (torch's elementwise product before its sum).
 */
export function gramStats(a: GramArgs): void {
  const { outer, len, inner } = a;
  const c = a.computeDType;
  const count = outer * len * inner;
  const m = a.inputs.length;
  if (m < 1) throw new TypeError('gramStats: inputs must not be empty');
  const pairs = (m * (m + 1)) / 2;
  const vectors = outer * inner;
  if (a.out.length < vectors * pairs) throw new TypeError(`out holds ${a.out.length} elements, needs ${vectors * pairs}`);
  const readers = a.inputs.map((bytes, i) => elementReader(bytes, dtypeAt(a.dtypes, i), count, `inputs[${i}]`));
  const base = a.base === null ? undefined : elementReader(a.base, a.baseDType, count, 'base');
  const mask = a.mask ?? undefined;
  const roundProducts = a.roundProducts === true;
  if (mask && mask.length < count) throw new TypeError(`mask holds ${mask.length} bytes, needs ${count}`);
  const lanes = new Float64Array(vectors * pairs * 4);
  const b = scratch();
  const v: Scratch[] = readers.map(() => scratch());
  forEachRun(len, inner, 0, count, (j0, j1, vec0, step) => {
    for (let j = j0; j < j1; j += BLOCK) {
      const n = Math.min(BLOCK, j1 - j);
      if (base) loadBlock(base, j, n, b.f, b.u, c);
      readers.forEach((r, i) => {
        const s = v[i];
        if (s === undefined) return;
        loadBlock(r, j, n, s.f, s.u, c);
        if (base) {
          for (let k = 0; k < n; k++) s.f[k] = (s.f[k] ?? 0) - (b.f[k] ?? 0);
          roundBlock(c, s.f, n);
        }
        if (mask) for (let k = 0; k < n; k++) if ((mask[j + k] ?? 0) === 0) s.f[k] = 0;
      });
      for (let k = 0; k < n; k++) {
        const vec = vec0 + step * (j + k - j0);
        const pos = step === 0 ? j + k - vec0 * len : Math.floor(j0 / inner) % len;
        const at = vec * pairs * 4 + (pos & 3);
        let q = 0;
        for (let p = 0; p < m; p++) {
          const xa = v[p]?.f[k] ?? 0;
          if (roundProducts) {
            for (let r = p; r < m; r++, q++) lanes[at + q * 4] = (lanes[at + q * 4] ?? 0) + roundTo(c, xa * (v[r]?.f[k] ?? 0));
          } else {
            for (let r = p; r < m; r++, q++) lanes[at + q * 4] = (lanes[at + q * 4] ?? 0) + xa * (v[r]?.f[k] ?? 0);
          }
        }
      }
    }
  });
  for (let e = 0; e < vectors * pairs; e++) {
    a.out[e] = laneTotal(lanes, e);
  }
}
