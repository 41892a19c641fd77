import type { SceVarianceArgs } from './binding.js';
import { BLOCK, dtypeAt, elementReader, loadBlock, roundBlock, roundTo, scratch, type Scratch } from './numeric.js';

/**
 * TypeScript twin of sce-variance.cc: per element, the population variance over the inputs of
 * R(x − base), in f64 (mean first, then the mean squared deviation), rounded to f32 and then to
 * the compute dtype; out[0] = how many of them are non-zero (NaN counts).
 */
export function sceVariance(p: SceVarianceArgs): void {
  const c = p.computeDType;
  const m = p.inputs.length;
  if (m < 1) throw new TypeError('sceVariance: inputs must not be empty');
  if (p.variance.length < p.count) throw new TypeError(`variance holds ${p.variance.length} elements, needs ${p.count}`);
  if (p.out.length < 1) throw new TypeError('out must hold 1 element');
  const base = elementReader(p.base, p.baseDType, p.count, 'base');
  const readers = p.inputs.map((bytes, i) => elementReader(bytes, dtypeAt(p.dtypes, i), p.count, `inputs[${i}]`));
  const b = scratch();
  const d: Scratch[] = readers.map(() => scratch());
  let nonzero = 0;
  for (let j = 0; j < p.count; j += BLOCK) {
    const n = Math.min(BLOCK, p.count - j);
    loadBlock(base, j, n, b.f, b.u, c);
    readers.forEach((r, i) => {
      const s = d[i];
      if (s === undefined) return;
      loadBlock(r, j, n, s.f, s.u, c);
      for (let k = 0; k < n; k++) s.f[k] = (s.f[k] ?? 0) - (b.f[k] ?? 0);
      roundBlock(c, s.f, n);
    });
    for (let k = 0; k < n; k++) {
      let mean = 0;
      for (let i = 0; i < m; i++) mean += d[i]?.f[k] ?? 0;
      mean /= m;
      let ss = 0;
      for (let i = 0; i < m; i++) {
        const e = (d[i]?.f[k] ?? 0) - mean;
        ss += e * e;
      }
      const v = roundTo(c, ss / m);
      p.variance[j + k] = v;
      if (v !== 0) nonzero++;
    }
  }
  p.out[0] = nonzero;
}
