import type { LinearArgs } from './binding.js';
import { BLOCK, dtypeAt, elementReader, elementWriter, loadBlock, roundBlock, scratch, storeBlock } from './numeric.js';

/** TypeScript twin of linear.cc: out = R(Σ_f32 R(w_i·x_i)), then R(out / divisor) unless divisor = 1. */
export function linearMerge(a: LinearArgs): void {
  const readers = a.inputs.map((b, i) => elementReader(b, dtypeAt(a.dtypes, i), a.end, `inputs[${i}]`));
  const w = elementWriter(a.out, a.outDType, a.start, a.end, 'out');
  const x = scratch();
  const acc = scratch();
  const c = a.computeDType;
  const divisor = Math.fround(a.divisor);
  for (let j = a.start; j < a.end; j += BLOCK) {
    const n = Math.min(BLOCK, a.end - j);
    acc.f.fill(0, 0, n);
    for (let i = 0; i < readers.length; i++) {
      const r = readers[i];
      if (r === undefined) continue;
      loadBlock(r, j, n, x.f, x.u, c);
      const wi = a.weights[i] ?? 0;
      for (let k = 0; k < n; k++) x.f[k] = wi * (x.f[k] ?? 0);
      roundBlock(c, x.f, n);
      for (let k = 0; k < n; k++) acc.f[k] = (acc.f[k] ?? 0) + (x.f[k] ?? 0);
    }
    roundBlock(c, acc.f, n);
    if (divisor !== 1) {
      for (let k = 0; k < n; k++) acc.f[k] = (acc.f[k] ?? 0) / divisor;
      roundBlock(c, acc.f, n);
    }
    storeBlock(acc.f, acc.u, n, w, j);
  }
  w.finish();
}

