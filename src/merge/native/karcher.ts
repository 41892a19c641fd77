import type { KarcherDotsArgs, KarcherStepArgs, KarcherTangentArgs } from './binding.js';
import { BLOCK, addSquares, dtypeAt, elementReader, laneTotal, loadBlock, roundTo, scratch } from './numeric.js';

/** ū of elements [j, j + n): u, or R(u / uDiv). */
function loadU(u: Float32Array, uDiv: number, c: 0 | 1 | 2, j: number, n: number, dst: Float32Array): void {
  const d = Math.fround(uDiv);
  if (d === 1) dst.set(u.subarray(j, j + n));
  else for (let k = 0; k < n; k++) dst[k] = roundTo(c, (u[j + k] ?? 0) / d);
}

function checkU(name: string, arr: Float32Array, count: number): void {
  if (arr.length < count) throw new TypeError(`${name} holds ${arr.length} elements, needs ${count}`);
}

/**
 * TypeScript twin of karcher.cc karcher_tangent: t = Σᵢ (each step rounded, as torch's in-place
 * sum) R(coefᵢ·R(R(xᵢ / normᵢ) − R(dotᵢ·ū))); out[0] = Σ t² (f64, four lanes by index).
 */
export function karcherTangent(p: KarcherTangentArgs): void {
  const c = p.computeDType;
  const m = p.inputs.length;
  for (const [name, arr] of [['norms', p.norms], ['coefs', p.coefs], ['dots', p.dots]] as const) {
    if (arr.length < m) throw new TypeError(`${name} holds ${arr.length} elements, needs ${m}`);
  }
  checkU('u', p.u, p.count);
  checkU('t', p.t, p.count);
  if (p.out.length < 1) throw new TypeError('out must hold 1 element');
  const readers = p.inputs.map((bytes, i) => elementReader(bytes, dtypeAt(p.dtypes, i), p.count, `inputs[${i}]`));
  const ub = new Float32Array(BLOCK);
  const x = scratch();
  const t = new Float32Array(BLOCK);
  const lanes = new Float64Array(4);
  for (let j = 0; j < p.count; j += BLOCK) {
    const n = Math.min(BLOCK, p.count - j);
    loadU(p.u, p.uDiv, c, j, n, ub);
    t.fill(0, 0, n);
    readers.forEach((r, i) => {
      loadBlock(r, j, n, x.f, x.u, c);
      const nrm = p.norms[i] ?? 1;
      const coef = p.coefs[i] ?? 0;
      const d = p.dots[i] ?? 0;
      for (let k = 0; k < n; k++) {
        const unit = roundTo(c, (x.f[k] ?? 0) / nrm);
        t[k] = roundTo(c, (t[k] ?? 0) + roundTo(c, coef * roundTo(c, unit - roundTo(c, d * (ub[k] ?? 0)))));
      }
    });
    p.t.set(t.subarray(0, n), j);
    addSquares(lanes, t, j, n);
  }
  p.out[0] = laneTotal(lanes);
}

/** TypeScript twin of karcher.cc karcher_step: u = R(R(cosN·ū) + R(sinN·R(t / normT))), or R(cosN·ū) without t. */
export function karcherStep(p: KarcherStepArgs): void {
  const c = p.computeDType;
  checkU('u', p.u, p.count);
  if (p.t !== null) checkU('t', p.t, p.count);
  const ub = new Float32Array(BLOCK);
  const cosN = Math.fround(p.cosN);
  const sinN = Math.fround(p.sinN);
  const normT = Math.fround(p.normT);
  for (let j = 0; j < p.count; j += BLOCK) {
    const n = Math.min(BLOCK, p.count - j);
    loadU(p.u, p.uDiv, c, j, n, ub);
    const t = p.t;
    if (t !== null) {
      for (let k = 0; k < n; k++) {
        p.u[j + k] = roundTo(c, roundTo(c, cosN * (ub[k] ?? 0)) + roundTo(c, sinN * roundTo(c, (t[j + k] ?? 0) / normT)));
      }
    } else {
      for (let k = 0; k < n; k++) p.u[j + k] = roundTo(c, cosN * (ub[k] ?? 0));
    }
  }
}

/** TypeScript twin of karcher.cc karcher_dots: out[i] = Σ ū·R(xᵢ / normᵢ) (f64, four lanes by index). */
export function karcherDots(p: KarcherDotsArgs): void {
  const c = p.computeDType;
  const m = p.inputs.length;
  if (p.norms.length < m) throw new TypeError(`norms holds ${p.norms.length} elements, needs ${m}`);
  if (p.out.length < m) throw new TypeError(`out holds ${p.out.length} elements, needs ${m}`);
  checkU('u', p.u, p.count);
  const readers = p.inputs.map((bytes, i) => elementReader(bytes, dtypeAt(p.dtypes, i), p.count, `inputs[${i}]`));
  const ub = new Float32Array(BLOCK);
  const x = scratch();
  const lanes = new Float64Array(m * 4);
  for (let j = 0; j < p.count; j += BLOCK) {
    const n = Math.min(BLOCK, p.count - j);
    loadU(p.u, p.uDiv, c, j, n, ub);
    readers.forEach((r, i) => {
      loadBlock(r, j, n, x.f, x.u, c);
      const nrm = p.norms[i] ?? 1;
      for (let k = 0; k < n; k++) {
        const l = i * 4 + ((j + k) & 3);
        lanes[l] = (lanes[l] ?? 0) + (ub[k] ?? 0) * roundTo(c, (x.f[k] ?? 0) / nrm);
      }
    });
  }
  for (let i = 0; i < m; i++) {
    p.out[i] = laneTotal(lanes, i);
  }
}
