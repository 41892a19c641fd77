import type { SlerpMixArgs } from './binding.js';
import { forEachRun } from './layout.js';
import { BLOCK, elementReader, elementWriter, loadBlock, roundBlock, roundTo, scratch, storeBlock } from './numeric.js';

/**
 * TypeScript twin of slerp-mix.cc: per element of vector e, res = O(O(c0[e]·v0) + O(c1[e]·v1)),
 * then O(res / div[e]) unless div[e] = 1, then R(res); with a base, v = R(x − base) and the result
 * is R(base + res). O rounds to `opDType`, R to `computeDType`.
 */
export function slerpMix(a: SlerpMixArgs): void {
  const { outer, len, inner } = a;
  const count = outer * len * inner;
  const c = a.computeDType;
  const op = a.opDType;
  const vectors = outer * inner;
  for (const [name, arr] of [['c0', a.c0], ['c1', a.c1], ['div', a.div]] as const) {
    if (arr.length < vectors) throw new TypeError(`${name} holds ${arr.length} elements, needs ${vectors}`);
  }
  if (!(a.start <= a.end && a.end <= count)) throw new TypeError('slerpMix: bad element range');
  const r0 = elementReader(a.v0, a.v0DType, count, 'v0');
  const r1 = elementReader(a.v1, a.v1DType, count, 'v1');
  const rb = a.base === null ? undefined : elementReader(a.base, a.baseDType, count, 'base');
  const w = elementWriter(a.out, a.outDType, a.start, a.end, 'out');
  const x0 = scratch();
  const x1 = scratch();
  const b = scratch();
  forEachRun(len, inner, a.start, a.end, (j0, j1, vec0, step) => {
    for (let j = j0; j < j1; j += BLOCK) {
      const n = Math.min(BLOCK, j1 - j);
      const v = vec0 + step * (j - j0);
      loadBlock(r0, j, n, x0.f, x0.u, c);
      loadBlock(r1, j, n, x1.f, x1.u, c);
      if (rb) {
        loadBlock(rb, j, n, b.f, b.u, c);
        for (let k = 0; k < n; k++) {
          x0.f[k] = (x0.f[k] ?? 0) - (b.f[k] ?? 0);
          x1.f[k] = (x1.f[k] ?? 0) - (b.f[k] ?? 0);
        }
        roundBlock(c, x0.f, n);
        roundBlock(c, x1.f, n);
      }
      for (let k = 0; k < n; k++) {
        const e = v + step * k;
        let r = roundTo(op, roundTo(op, (a.c0[e] ?? 0) * (x0.f[k] ?? 0)) + roundTo(op, (a.c1[e] ?? 0) * (x1.f[k] ?? 0)));
        const d = a.div[e] ?? 1;
        if (d !== 1) r = roundTo(op, r / d);
        x0.f[k] = roundTo(c, r);
      }
      if (rb) {
        for (let k = 0; k < n; k++) x0.f[k] = (b.f[k] ?? 0) + (x0.f[k] ?? 0);
        roundBlock(c, x0.f, n);
      }
      storeBlock(x0.f, x0.u, n, w, j);
    }
  });
  w.finish();
}
