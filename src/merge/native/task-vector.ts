import type { TaskVectorArgs } from './binding.js';
import { blockMasker } from './mask-rule.js';
import { BLOCK, dtypeAt, elementReader, elementWriter, loadBlock, roundBlock, roundTo, scratch, storeBlock } from './numeric.js';

function signOf(v: number): number {
  return v > 0 ? 1 : v < 0 ? -1 : v; // ±0 → ±0, NaN → NaN: neither equals an elected sign
}

/** TypeScript twin of task-vector.cc: the fused pass of generalized task arithmetic (semantics §1.2). */
export function taskVectorMerge(a: TaskVectorArgs): void {
  const c = a.computeDType;
  const base = elementReader(a.base, a.baseDType, a.end, 'base');
  const readers = a.inputs.map((b, i) => elementReader(b, dtypeAt(a.dtypes, i), a.end, `inputs[${i}]`));
  if (a.masks.length !== readers.length) throw new TypeError('masks must have one entry per input');
  const maskers = a.masks.map((m, i) => blockMasker(m, a.start, a.end, `masks[${i}]`));
  const w = elementWriter(a.out, a.outDType, a.start, a.end, 'out');
  const b = scratch();
  const x = scratch();
  const acc = scratch();
  const res = scratch();
  const div = new Float32Array(BLOCK);
  const raw = scratch();
  const wd = readers.map(() => new Float32Array(BLOCK));
  const rd = a.electOnRaw ? readers.map(() => new Float32Array(BLOCK)) : [];
  const weights = Float32Array.from(a.weights);
  const scales = Float32Array.from(a.scales);
  const divisor = Math.fround(a.divisor);
  const lambda = Math.fround(a.lambda);
  for (let j = a.start; j < a.end; j += BLOCK) {
    const n = Math.min(BLOCK, a.end - j);
    loadBlock(base, j, n, b.f, b.u, c);
    acc.f.fill(0, 0, n);
    if (a.electOnRaw) raw.f.fill(0, 0, n);
    for (let i = 0; i < readers.length; i++) {
      const r = readers[i];
      const wi = wd[i];
      if (r === undefined || wi === undefined) continue;
      loadBlock(r, j, n, x.f, x.u, c);
      for (let k = 0; k < n; k++) x.f[k] = (x.f[k] ?? 0) - (b.f[k] ?? 0);
      roundBlock(c, x.f, n);
      const masker = maskers[i];
      if (masker?.active) {
        const m = masker.block(j, n, x.u);
        for (let k = 0; k < n; k++) x.f[k] = (x.f[k] ?? 0) * (m[k] ?? 0);
      }
      const s = scales[i] ?? 1;
      if (s !== 1) {
        for (let k = 0; k < n; k++) x.f[k] = roundTo(c, roundTo(a.sparsifyDType, (x.f[k] ?? 0) * s));
      }
      const ri = rd[i];
      if (ri !== undefined) {
        for (let k = 0; k < n; k++) {
          ri[k] = x.f[k] ?? 0;
          raw.f[k] = (raw.f[k] ?? 0) + (x.f[k] ?? 0);
        }
      }
      const weight = weights[i] ?? 0;
      for (let k = 0; k < n; k++) wi[k] = weight * (x.f[k] ?? 0);
      roundBlock(c, wi, n);
      for (let k = 0; k < n; k++) acc.f[k] = (acc.f[k] ?? 0) + (wi[k] ?? 0);
    }
    if (a.consensus) {
      const elect = a.electOnRaw ? raw : acc;
      roundBlock(c, elect.f, n);
      for (let k = 0; k < n; k++) {
        acc.f[k] = (elect.f[k] ?? 0) >= 0 ? 1 : -1;
        res.f[k] = 0;
        div[k] = 0;
      }
      for (let i = 0; i < wd.length; i++) {
        const wi = wd[i];
        if (wi === undefined) continue;
        const si = rd[i] ?? wi;
        const weight = weights[i] ?? 0;
        for (let k = 0; k < n; k++) {
          const m = signOf(si[k] ?? 0) === acc.f[k] ? 1 : 0;
          res.f[k] = (res.f[k] ?? 0) + (wi[k] ?? 0) * m;
          div[k] = (div[k] ?? 0) + weight * m;
        }
      }
      roundBlock(c, res.f, n);
      roundBlock(c, div, n);
      const lo = Math.fround(a.minDivisor);
      if (lo > 0) {
        const floor = roundTo(c, lo);
        for (let k = 0; k < n; k++) if ((div[k] ?? 0) < lo) div[k] = floor;
      } else {
        for (let k = 0; k < n; k++) if (div[k] === 0) div[k] = 1;
      }
    } else {
      for (let k = 0; k < n; k++) {
        res.f[k] = acc.f[k] ?? 0;
        div[k] = divisor;
      }
      roundBlock(c, res.f, n);
    }
    if (a.normalize) {
      for (let k = 0; k < n; k++) res.f[k] = (res.f[k] ?? 0) / (div[k] ?? 1);
      roundBlock(c, res.f, n);
    }
    if (lambda !== 1) {
      for (let k = 0; k < n; k++) res.f[k] = (res.f[k] ?? 0) * lambda;
      roundBlock(c, res.f, n);
    }
    for (let k = 0; k < n; k++) res.f[k] = (b.f[k] ?? 0) + (res.f[k] ?? 0);
    roundBlock(c, res.f, n);
    storeBlock(res.f, res.u, n, w, j);
  }
  w.finish();
}
