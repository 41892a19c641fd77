/**
 * karcher (semantics §1.3): the equal-weight Riemannian mean of the inputs' unit directions by
 * mergekit's fixed-point iteration, scaled by the mean norm. Following its torch code:
 *
 *   nᵢ = ‖xᵢ‖ in f32; models with nᵢ ≤ tol take no part in the direction (all: zeros out);
 *   u = R(Σ aᵢ·R(xᵢ/nᵢ)) over those (aᵢ = 1/V), normalised unless ‖u‖ < tol (then u = unit₀);
 *   up to max_iter times: dotᵢ = clamp(R(u·unitᵢ)), θᵢ = R(acos dotᵢ), skipped when θᵢ < tol;
 *     T = Σ R(aᵢ·R(θᵢ / R(sin θᵢ)))·R(unitᵢ − R(dotᵢ·u)); stop when ‖T‖ < tol;
 *     u = R(R(cos‖T‖)·u) + R(R(sin‖T‖)·R(T/‖T‖)), then u / ‖u‖ when ‖u‖ > tol;
 *   out = (Σ nᵢ/N) · u.
 *
 * The scalar steps run here (norms from the gram kernel's exact f64 sums). The dots are torch.dot
 * of the ROUNDED vectors u and unitᵢ = R(xᵢ/nᵢ) (the karcherDots kernel): in bf16 a dot near 1
 * is 1 or 1 − 2⁻⁸, so taking it from the unrounded vectors picks the other value and changes
 * which models the θ < tol rule skips. cos‖T‖ and sin‖T‖ are f32 0-d tensors on the LEFT of a
 * product, so torch narrows them to the compute dtype first (only a right-hand scalar of mul/div
 * is read in f32). The karcher kernels compute the tangent sum and the update per element. Sums
 * that torch accumulates in place round after each model.
 */
import { flatLayout } from '../native/layout.js';
import { KERNEL_DTYPE, roundTo } from '../native/numeric.js';
import {
  castOut,
  commonShapes,
  dtypeCodes,
  elementCount,
  f32Scratch,
  globalNumber,
  MergeComputeError,
  outputBuffer,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';

export function computeKarcher(ctx: FamilyContext): TensorData {
  const { task, compute: c, kernels } = ctx;
  const tensors = commonShapes(ctx, ctx.inputs);
  const first = tensors[0];
  if (first === undefined) throw new MergeComputeError('MERGE_INPUT', task.output, 'karcher needs at least one model');
  if (tensors.length === 1) return castOut(ctx, first);
  const n = elementCount(first.shape);
  const maxIter = globalNumber(task, 'max_iter');
  const tol = globalNumber(task, 'tol');
  const layout = flatLayout(n);
  const count = tensors.length;
  const g0 = new Float64Array((count * (count + 1)) / 2);
  kernels.gramStats({ inputs: tensors.map((t) => t.bytes), dtypes: dtypeCodes(ctx, tensors), base: null, baseDType: KERNEL_DTYPE.F32, computeDType: c, ...layout, out: g0 });
  const norms = tensors.map((_, a) => Math.fround(Math.sqrt(g0[a * count - (a * (a - 1)) / 2] ?? 0)));
  const alpha = 1 / count;
  const valid = norms.map((v, i) => ({ v, i })).filter(({ v }) => v > tol);
  const out = outputBuffer(ctx, first.shape);
  if (valid.length === 0) {
    out.bytes.fill(0);
    return out;
  }
  let alphaSum = 0;
  for (let k = 0; k < valid.length; k++) alphaSum += alpha;
  const a = Float32Array.from(valid, () => alpha / alphaSum);
  const vs = valid.map(({ i }) => tensors[i]).filter((t): t is TensorData => t !== undefined);
  const vBytes = vs.map((t) => t.bytes);
  const vDTypes = dtypeCodes(ctx, vs);
  const vNorms = Float32Array.from(valid, ({ v }) => v);
  const m = vs.length;
  // u holds the direction before its pending division by uDiv; t the tangent sum (zero at first).
  let u = f32Scratch(ctx, n);
  let t = f32Scratch(ctx, n);
  const sums = new Float64Array(1);
  const tangent = (inputs: readonly Uint8Array[], dtypes: Int32Array, nrm: Float32Array, coefs: Float32Array, dots: Float32Array, uDiv: number): number => {
    kernels.karcherTangent({ inputs, dtypes, computeDType: c, count: n, norms: nrm, coefs, dots, u, uDiv, t, out: sums });
    return Math.fround(Math.sqrt(sums[0] ?? 0));
  };
  // The initial guess Σ aᵢ·unitᵢ is a tangent sum with dots 0 around u = 0.
  const initNorm = tangent(vBytes, vDTypes, vNorms, a, new Float32Array(m), 1);
  [u, t] = [t, u];
  let uDiv = Math.fround(initNorm);
  if (initNorm < tol) {
    // u = unit₀: the same sum over the first model alone, around u = 0 again.
    [u, t] = [t, u];
    tangent(vBytes.slice(0, 1), vDTypes.slice(0, 1), vNorms.slice(0, 1), Float32Array.of(1), Float32Array.of(0), 1);
    [u, t] = [t, u];
    uDiv = 1;
  }
  const uBytes = (): Uint8Array => new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
  const unitDots = new Float64Array(m);
  for (let iter = 0; iter < maxIter; iter++) {
    // torch.dot(ū, unitᵢ) of the rounded vectors, R to the compute dtype, clamped to [−1, 1].
    kernels.karcherDots({ inputs: vBytes, dtypes: vDTypes, computeDType: c, count: n, norms: vNorms, u, uDiv, out: unitDots });
    const active: number[] = [];
    const coefs: number[] = [];
    const dots: number[] = [];
    for (let i = 0; i < m; i++) {
      const dot = Math.min(1, Math.max(-1, roundTo(c, unitDots[i] ?? 0)));
      const theta = roundTo(c, Math.acos(dot));
      if (theta < tol) continue;
      active.push(i);
      coefs.push(roundTo(c, (a[i] ?? 0) * roundTo(c, theta / roundTo(c, Math.sin(theta)))));
      dots.push(dot);
    }
    if (active.length === 0) break;
    const normT = tangent(
      active.map((i) => vBytes[i] ?? new Uint8Array(0)),
      Int32Array.from(active, (i) => vDTypes[i] ?? 0),
      Float32Array.from(active, (i) => vNorms[i] ?? 1),
      Float32Array.from(coefs),
      Float32Array.from(dots),
      uDiv,
    );
    if (normT < tol) break;
    kernels.karcherStep({ computeDType: c, count: n, u, uDiv, t, cosN: roundTo(c, Math.cos(normT)), sinN: roundTo(c, Math.sin(normT)), normT });
    const g = new Float64Array(1);
    kernels.gramStats({ inputs: [uBytes()], dtypes: Int32Array.of(KERNEL_DTYPE.F32), base: null, baseDType: KERNEL_DTYPE.F32, computeDType: c, ...layout, out: g });
    const uNorm = Math.fround(Math.sqrt(g[0] ?? 0));
    uDiv = uNorm > tol ? uNorm : 1;
  }
  // Σ aᵢnᵢ over every model, the zero-norm ones included.
  let scale = 0;
  for (const v of norms) scale += alpha * v;
  kernels.karcherStep({ computeDType: c, count: n, u, uDiv, t: null, cosN: scale, sinN: 0, normT: 1 });
  kernels.convertDType({ src: uBytes(), srcDType: KERNEL_DTYPE.F32, roundDType: c, out: out.bytes, outDType: ctx.outCode, start: 0, end: n });
  return out;
}
