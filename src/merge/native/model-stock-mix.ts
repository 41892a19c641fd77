import type { ModelStockMixArgs } from './binding.js';
import { forEachRun } from './layout.js';
import { BLOCK, dtypeAt, elementReader, elementWriter, loadBlock, roundBlock, roundTo, scratch, storeBlock } from './numeric.js';

/**
 * TypeScript twin of model-stock-mix.cc: avg = R(R((x₁ + x₂) + …) / N), each addition rounded as
 * Python's sum() of tensors does; out = R(R(t[e]·avg) + R(omt[e]·base)) for vector e.
 */
export function modelStockMix(a: ModelStockMixArgs): void {
  const { outer, len, inner } = a;
  const count = outer * len * inner;
  const c = a.computeDType;
  const vectors = outer * inner;
  if (a.t.length < vectors || a.omt.length < vectors) throw new TypeError(`t and omt need ${vectors} elements`);
  if (a.inputs.length < 1) throw new TypeError('modelStockMix: inputs must not be empty');
  if (!(a.start <= a.end && a.end <= count)) throw new TypeError('modelStockMix: bad element range');
  const base = elementReader(a.base, a.baseDType, count, 'base');
  const readers = a.inputs.map((bytes, i) => elementReader(bytes, dtypeAt(a.dtypes, i), count, `inputs[${i}]`));
  const w = elementWriter(a.out, a.outDType, a.start, a.end, 'out');
  const m = readers.length;
  const b = scratch();
  const x = scratch();
  const s = scratch();
  forEachRun(len, inner, a.start, a.end, (j0, j1, vec0, step) => {
    for (let j = j0; j < j1; j += BLOCK) {
      const n = Math.min(BLOCK, j1 - j);
      const v = vec0 + step * (j - j0);
      loadBlock(base, j, n, b.f, b.u, c);
      readers.forEach((r, i) => {
        if (i === 0) {
          loadBlock(r, j, n, s.f, s.u, c);
          return;
        }
        loadBlock(r, j, n, x.f, x.u, c);
        for (let k = 0; k < n; k++) s.f[k] = (s.f[k] ?? 0) + (x.f[k] ?? 0);
        roundBlock(c, s.f, n);
      });
      for (let k = 0; k < n; k++) {
        const e = v + step * k;
        const avg = roundTo(c, (s.f[k] ?? 0) / m);
        s.f[k] = roundTo(c, roundTo(c, (a.t[e] ?? 0) * avg) + roundTo(c, (a.omt[e] ?? 0) * (b.f[k] ?? 0)));
      }
      storeBlock(s.f, s.u, n, w, j);
    }
  });
  w.finish();
}
