import type { NearswapArgs } from './binding.js';
import { BLOCK, elementReader, elementWriter, loadBlock, roundTo, scratch, storeBlock } from './numeric.js';

/**
 * TypeScript twin of nearswap.cc: w = clamp(R(R(1 / max(R(|a − b|), 1e-6))·t), 0, 1) and
 * out = R(R(w·b) + R(R(1 − w)·a)), a the base.
 */
export function nearswapMerge(p: NearswapArgs): void {
  const c = p.computeDType;
  const ra = elementReader(p.a, p.aDType, p.end, 'a');
  const rb = elementReader(p.b, p.bDType, p.end, 'b');
  const w = elementWriter(p.out, p.outDType, p.start, p.end, 'out');
  const a = scratch();
  const b = scratch();
  const lo = Math.fround(1e-6);
  const floor = roundTo(c, lo);
  const t = Math.fround(p.t);
  for (let j = p.start; j < p.end; j += BLOCK) {
    const n = Math.min(BLOCK, p.end - j);
    loadBlock(ra, j, n, a.f, a.u, c);
    loadBlock(rb, j, n, b.f, b.u, c);
    for (let k = 0; k < n; k++) {
      const av = a.f[k] ?? 0;
      const bv = b.f[k] ?? 0;
      const d = Math.abs(roundTo(c, av - bv));
      const cl = d < lo ? floor : d;
      let wt = roundTo(c, roundTo(c, 1 / cl) * t);
      wt = wt < 0 ? 0 : wt > 1 ? 1 : wt;
      a.f[k] = roundTo(c, roundTo(c, wt * bv) + roundTo(c, roundTo(c, 1 - wt) * av));
    }
    storeBlock(a.f, a.u, n, w, j);
  }
  w.finish();
}
