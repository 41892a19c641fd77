/**
 * sce, karcher, multislerp and nearswap through computeTask: hand-computed results on small
 * tensors, merging identical models, and the native kernels against their TypeScript twins on the
 * whole method (bit for bit).
 */
import { describe, expect, it } from 'vitest';
import { computeTask, MergeComputeError, type TensorData } from '../../src/merge/compute.js';
import { loadKernels } from '../../src/merge/native/binding.js';
import type { MethodId, ResolvedParams, TensorTask } from '../../src/merge/task.js';
import { decodeToF32, encodeFromF32, type FloatDType } from '../../src/tensors/dtype.js';
import { seeded, values } from './kernels-inputs.js';

const NATIVE = loadKernels({ logger: () => undefined }).native;

function data(v: readonly number[] | Float32Array, dtype: FloatDType = 'F32', shape: readonly number[] = [v.length]): TensorData {
  return { dtype, shape, bytes: encodeFromF32(dtype, Float32Array.from(v)) };
}

interface TaskSpec {
  readonly method: MethodId;
  readonly inputs: readonly TensorData[];
  readonly baseIndex?: number | null;
  readonly params?: ResolvedParams;
  readonly modelParams?: readonly ResolvedParams[];
  readonly computeDType?: FloatDType;
  readonly outDType?: FloatDType;
}

function taskOf(s: TaskSpec): TensorTask {
  const first = s.inputs[0];
  if (first === undefined) throw new Error('no inputs');
  return {
    output: 'model.layers.0.mlp.up_proj.weight',
    outShape: first.shape,
    outDType: s.outDType ?? 'F32',
    computeDType: s.computeDType ?? 'F32',
    method: s.method,
    inputs: s.inputs.map((t, i) => ({
      kind: 'file' as const,
      model: i === s.baseIndex ? 'base' : `m${i}`,
      file: `/nowhere/m${i}.safetensors`,
      tensor: 'model.layers.0.mlp.up_proj.weight',
      dtype: t.dtype,
      shape: t.shape,
      byteOffset: 0,
      byteLength: t.bytes.byteLength,
    })),
    baseIndex: s.baseIndex ?? null,
    params: s.params ?? {},
    modelParams: s.modelParams ?? s.inputs.map(() => ({})),
    isEmbed: false,
    randomKey: { seed: 1, tensor: 'model.layers.0.mlp.up_proj.weight' },
  };
}

function run(s: TaskSpec, kernels: 'native' | 'ts' = 'ts'): Float32Array {
  const out = computeTask(taskOf(s), s.inputs, { kernels });
  return decodeToF32(out.dtype, out.bytes);
}

function expectClose(actual: Float32Array, expected: readonly number[], digits = 5): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i], `element ${i}`).toBeCloseTo(e, digits));
}

const KERNELS = NATIVE ? (['ts', 'native'] as const) : (['ts'] as const);

describe.each(KERNELS)('hand-computed results (%s kernels)', (kernels) => {
  it('nearswap: swapped where |a − b| ≤ t, blended by t/|a − b| above, kept where t/|a − b| is small', () => {
    // |a − b| = 0.0005, 0.5, 0.002, 0 with t = 0.001 → w = 1, 0.002, 0.5, 1.
    const a = [0, 1, 2, 3];
    const b = [0.0005, 1.5, 2.002, 3];
    const out = run({ method: 'nearswap', inputs: [data(a), data(b)], baseIndex: 0, params: { t: 0.001 } }, kernels);
    expectClose(out, [0.0005, 0.998 * 1 + 0.002 * 1.5, 0.5 * 2 + 0.5 * 2.002, 3], 6);
    // t ≤ 0 keeps the base everywhere (the weight clamps to 0).
    expectClose(run({ method: 'nearswap', inputs: [data(a), data(b)], baseIndex: 0, params: { t: -1 } }, kernels), a, 6);
  });

  it('nearswap in bf16 rounds the blend as torch does', () => {
    // |a − b| = 2⁻⁷, t = 2⁻⁸: w = 0.5; 0.5·1.0078125 + 0.5·1 = 1.00390625 lies halfway between the
    // bf16 neighbours 1 and 1.0078125 and rounds to even (1); f32 keeps it.
    const spec = (dtype: FloatDType): TaskSpec => ({
      method: 'nearswap',
      inputs: [data([1, 1], dtype), data([1.0078125, 1.0078125], dtype)],
      baseIndex: 0,
      params: { t: 2 ** -8 },
      computeDType: dtype,
    });
    expect(Array.from(run(spec('BF16'), kernels))).toEqual([1, 1]);
    expect(Array.from(run(spec('F32'), kernels))).toEqual([1.00390625, 1.00390625]);
  });

  it('multislerp of two models at a right angle: the normalised weighted mean of the directions, times the mean norm', () => {
    const x0 = data([1, 0]);
    const x1 = data([0, 2]);
    const eq = run({ method: 'multislerp', inputs: [x0, x1], modelParams: [{ weight: 0.5 }, { weight: 0.5 }] }, kernels);
    const s = 1.5 / Math.SQRT2; // (0.5·1 + 0.5·2) · (1, 1)/√2
    expectClose(eq, [s, s]);
    // Weights 1 and 3, normalised to 0.25 and 0.75: direction (0.25, 0.75)/‖·‖, scale 0.25·1 + 0.75·2.
    const uneven = run({ method: 'multislerp', inputs: [x0, x1], modelParams: [{ weight: 1 }, { weight: 3 }] }, kernels);
    const len = Math.hypot(0.25, 0.75);
    expectClose(uneven, [(0.25 / len) * 1.75, (0.75 / len) * 1.75]);
    // normalize_weights: false uses the weights as given: scale 1·1 + 1·2 = 3.
    const raw = run({ method: 'multislerp', inputs: [x0, x1], params: { normalize_weights: false }, modelParams: [{ weight: 1 }, { weight: 1 }] }, kernels);
    expectClose(raw, [3 / Math.SQRT2, 3 / Math.SQRT2]);
  });

  it('multislerp with a base works on the task vectors and adds the base back', () => {
    const base = data([1, 1, 5]);
    const out = run(
      { method: 'multislerp', inputs: [base, data([2, 1, 5]), data([1, 3, 5])], baseIndex: 0, modelParams: [{}, { weight: 1 }, { weight: 1 }] },
      kernels,
    );
    const s = 1.5 / Math.SQRT2;
    expectClose(out, [1 + s, 1 + s, 5]);
  });

  it('multislerp of three orthogonal directions', () => {
    const out = run(
      { method: 'multislerp', inputs: [data([1, 0, 0]), data([0, 1, 0]), data([0, 0, 3])], modelParams: [{ weight: 1 }, { weight: 1 }, { weight: 1 }] },
      kernels,
    );
    const v = 5 / 3 / Math.sqrt(3);
    expectClose(out, [v, v, v]);
  });

  it('multislerp of two antipodal models with equal weights falls back to the lerp (here 0); three such are an error', () => {
    const lerp = run({ method: 'multislerp', inputs: [data([1, -2]), data([-1, 2])], modelParams: [{ weight: 1 }, { weight: 1 }] }, kernels);
    expectClose(lerp, [0, 0], 7);
    const three = { method: 'multislerp' as const, inputs: [data([1, 0]), data([-1, 0]), data([0, 0])], modelParams: [{ weight: 1 }, { weight: 1 }, { weight: 1 }] };
    expect(() => run(three, kernels)).toThrow(MergeComputeError);
    expect(() => run(three, kernels)).toThrow(/unit directions is 0/);
  });

  it('karcher of two orthogonal vectors: their normalised bisector scaled by the mean norm', () => {
    const out = run({ method: 'karcher', inputs: [data([3, 0]), data([0, 1])] }, kernels);
    expectClose(out, [Math.SQRT2, Math.SQRT2]); // (3 + 1)/2 · (1, 1)/√2
  });

  it('karcher finds the geodesic mean, not the normalised Euclidean mean', () => {
    // Directions at 0°, 0° and 90°: the Euclidean mean points at atan(1/2) ≈ 26.57°, the Karcher
    // mean at (0 + 0 + 90)/3 = 30°. Norms 2, 1, 3: mean norm 2.
    const out = run({ method: 'karcher', inputs: [data([2, 0]), data([1, 0]), data([0, 3])] }, kernels);
    expectClose(out, [2 * Math.cos(Math.PI / 6), 2 * Math.sin(Math.PI / 6)]);
    // With max_iter 1 it takes one step from the Euclidean guess: on a circle that step lands on the mean too.
    const one = run({ method: 'karcher', inputs: [data([2, 0]), data([1, 0]), data([0, 3])], params: { max_iter: 1 } }, kernels);
    expectClose(one, [2 * Math.cos(Math.PI / 6), 2 * Math.sin(Math.PI / 6)]);
    // With max_iter 0 (mergekit runs no iteration): the normalised mean of the units, (2, 1)/√5, times the mean norm 2.
    const none = run({ method: 'karcher', inputs: [data([2, 0]), data([1, 0]), data([0, 3])], params: { max_iter: 0 } }, kernels);
    expectClose(none, [4 / Math.sqrt(5), 2 / Math.sqrt(5)]);
  });

  it('karcher: a zero model takes no part in the direction but counts in the mean norm', () => {
    const out = run({ method: 'karcher', inputs: [data([3, 0]), data([0, 1]), data([0, 0])] }, kernels);
    const s = (3 + 1 + 0) / 3;
    expectClose(out, [s / Math.SQRT2, s / Math.SQRT2]);
    // All zero: zeros.
    expectClose(run({ method: 'karcher', inputs: [data([0, 0]), data([0, 0])] }, kernels), [0, 0], 7);
  });

  // τ₁ = (1, 2, 0, −1), τ₂ = (3, −2, 0, 1) around a zero base.
  const base = data([0, 0, 0, 0]);
  const x1 = data([1, 2, 0, -1]);
  const x2 = data([3, -2, 0, 1]);
  const sce = (params: ResolvedParams): Float32Array => run({ method: 'sce', inputs: [base, x1, x2], baseIndex: 0, params }, kernels);

  it('sce with select_topk 1: energy weights, unweighted sign election, agreeing-weight divisor', () => {
    // c = (1.5, 3.5)/5 = (0.3, 0.7); elected signs +, + (a zero sum counts +), +, +.
    // 0: (0.3·1 + 0.7·3)/1 = 2.4; 1: only τ₁ agrees → 2; 2: nobody (sign 0) → 0; 3: only τ₂ → 1.
    expectClose(sce({}), [2.4, 2, 0, 1], 6);
  });

  it('sce in bf16 rounds the weights and every product as torch does', () => {
    // c = bf16(0.3) = 0.30078125, bf16(0.7) = 0.69921875 (their sum is exactly 1). Position 0:
    // bf16(3·c₂) = bf16(2.09765625) = 2.09375; bf16(c₁ + 2.09375) = bf16(2.39453125) = 2.390625.
    const bf = (v: readonly number[]): TensorData => data(v, 'BF16');
    const out = run({ method: 'sce', inputs: [bf([0, 0, 0, 0]), bf([1, 2, 0, -1]), bf([3, -2, 0, 1])], baseIndex: 0, computeDType: 'BF16', outDType: 'F32' }, kernels);
    expect(Array.from(out)).toEqual([2.390625, 2, 0, 1]);
  });

  it('sce with select_topk < 1 keeps the positions of largest variance', () => {
    // Variances 1, 4, 0, 1: three non-zero. select_topk 0.5 keeps int(3·0.5) = 1 position (index 1):
    // τ₁ = (0, 2, 0, 0), τ₂ = (0, −2, 0, 0), c = (0.5, 0.5), sum 0 elects +: τ₁ alone → 2.
    expectClose(sce({ select_topk: 0.5 }), [0, 2, 0, 0], 6);
    // select_topk 0.7 keeps int(2.1) = 2: index 1, then the tie at variance 1 goes to the lower index 0.
    // τ₁ = (1, 2, 0, 0), τ₂ = (3, −2, 0, 0): c = (1.25, 3.25)/4.5; position 0 → (c₁ + 3c₂)/(c₁ + c₂).
    const c1 = 1.25 / 4.5;
    const c2 = 3.25 / 4.5;
    expectClose(sce({ select_topk: 0.7 }), [(c1 + 3 * c2) / (c1 + c2), 2, 0, 0], 6);
    // int(3·0.2) = 0 positions: every task vector is erased, the output is the base.
    expectClose(sce({ select_topk: 0.2 }), [0, 0, 0, 0], 7);
  });

  it('with a single input to mix, each method returns it as mergekit does', () => {
    expectClose(run({ method: 'sce', inputs: [data([1, 2])], baseIndex: 0 }, kernels), [1, 2], 7);
    expectClose(run({ method: 'nearswap', inputs: [data([1, 2])], baseIndex: 0, params: { t: 0.1 } }, kernels), [1, 2], 7);
    expectClose(run({ method: 'karcher', inputs: [data([1, 2])] }, kernels), [1, 2], 7);
    // multislerp with a base and one other model returns that model itself, not base + its delta.
    expectClose(run({ method: 'multislerp', inputs: [data([5, 5]), data([1, 2])], baseIndex: 0, modelParams: [{}, { weight: 0.3 }] }, kernels), [1, 2], 7);
    // Only the base (mergekit fails on its empty stack of task vectors): an error, not the base.
    expect(() => run({ method: 'multislerp', inputs: [data([5, 5])], baseIndex: 0, modelParams: [{}] }, kernels)).toThrow(/multislerp needs at least one model besides the base/);
  });
});

describe.each(KERNELS)('merging identical models returns that model (%s kernels)', (kernels) => {
  const r = seeded(5);
  const shape = [6, 50];
  const v = values(r, 300);
  const other = values(r, 300);
  for (const dtype of ['F32', 'BF16'] as const) {
    const x = data(v, dtype, shape);
    const b = data(other, dtype, shape);
    const exact = decodeToF32(dtype, x.bytes);
    const common = { computeDType: dtype, outDType: dtype } as const;
    const bytesOf = (s: TaskSpec): Uint8Array => computeTask(taskOf({ ...s, ...common }), s.inputs, { kernels }).bytes;

    it(`nearswap and sce, bit for bit (${dtype})`, () => {
      expect(Buffer.from(bytesOf({ method: 'nearswap', inputs: [x, x], baseIndex: 0, params: { t: 0.001 } }))).toEqual(Buffer.from(x.bytes));
      expect(Buffer.from(bytesOf({ method: 'sce', inputs: [x, x, x], baseIndex: 0 }))).toEqual(Buffer.from(x.bytes));
      expect(Buffer.from(bytesOf({ method: 'sce', inputs: [x, x, x], baseIndex: 0, params: { select_topk: 0.5 } }))).toEqual(Buffer.from(x.bytes));
    });

    // Both divide by the norm and multiply it back, each rounded in the compute dtype (as mergekit):
    // within a few units in the last place of the largest operand (x, or base and x − base), not bit
    // for bit: two in f32; in bf16 four (u = δ/n, m = mean/M, ·scale and + base each round to 8 bits).
    const mantissa = dtype === 'BF16' ? 7 : 23;
    const allowed = dtype === 'BF16' ? 4 : 2;
    const ulp = (a: number): number => (a === 0 ? 0 : 2 ** (Math.floor(Math.log2(Math.abs(a))) - mantissa));
    const expectNear = (bytes: Uint8Array, want: Float32Array, around?: Float32Array): void => {
      const got = decodeToF32(dtype, bytes);
      const far = want.filter((w, i) => {
        const o = around?.[i] ?? 0;
        const scale = Math.max(Math.abs(w), Math.abs(o), Math.abs(w - o));
        return Math.abs((got[i] ?? Number.NaN) - w) > allowed * ulp(scale) || Number.isNaN(got[i] ?? Number.NaN);
      });
      expect(far.length).toBe(0);
    };

    it(`multislerp, with and without a base (${dtype})`, () => {
      expectNear(bytesOf({ method: 'multislerp', inputs: [x, x, x], modelParams: [{ weight: 0.2 }, { weight: 0.5 }, { weight: 0.3 }] }), exact);
      expectNear(bytesOf({ method: 'multislerp', inputs: [b, x, x], baseIndex: 0, modelParams: [{}, { weight: 1 }, { weight: 2 }] }), exact, decodeToF32(dtype, b.bytes));
    });

    it(`karcher (${dtype})`, () => {
      expectNear(bytesOf({ method: 'karcher', inputs: [x, x, x] }), exact);
    });
  }
});

describe.skipIf(!NATIVE)('the native kernels and the TypeScript twins give the same bytes for whole methods', () => {
  const cases: readonly { name: string; spec: (dtype: FloatDType, xs: readonly TensorData[]) => TaskSpec }[] = [
    { name: 'nearswap', spec: (_, xs) => ({ method: 'nearswap', inputs: xs.slice(0, 2), baseIndex: 0, params: { t: 0.02 } }) },
    { name: 'sce', spec: (_, xs) => ({ method: 'sce', inputs: xs, baseIndex: 0 }) },
    { name: 'sce select_topk 0.3', spec: (_, xs) => ({ method: 'sce', inputs: xs, baseIndex: 0, params: { select_topk: 0.3 } }) },
    { name: 'karcher', spec: (_, xs) => ({ method: 'karcher', inputs: xs }) },
    { name: 'multislerp', spec: (_, xs) => ({ method: 'multislerp', inputs: xs, modelParams: xs.map((_x, i) => ({ weight: 0.2 + 0.3 * i })) }) },
    {
      name: 'multislerp with a base',
      spec: (_, xs) => ({ method: 'multislerp', inputs: xs, baseIndex: 0, modelParams: xs.map((_x, i): ResolvedParams => (i === 0 ? {} : { weight: 0.5 + i })) }),
    },
  ];
  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    for (const c of cases) {
      it(`${c.name} (${dtype})`, () => {
        const r = seeded(c.name.length * 31 + dtype.length);
        const centre = values(r, 2000);
        const xs = [0, 1, 2, 3].map(() => data(values(r, 2000, { center: centre }), dtype, [40, 50]));
        const s = { ...c.spec(dtype, xs), computeDType: dtype, outDType: dtype };
        const task = taskOf(s);
        const native = computeTask(task, s.inputs, { kernels: 'native' });
        const ts = computeTask(task, s.inputs, { kernels: 'ts' });
        expect(Buffer.from(native.bytes).equals(Buffer.from(ts.bytes))).toBe(true);
      });
    }
  }
});

describe('bad parameters at compute time name the tensor', () => {
  it('multislerp weights summing to zero with normalize_weights', () => {
    const s = { method: 'multislerp' as const, inputs: [data([1, 0]), data([0, 1])], modelParams: [{ weight: 0.5 }, { weight: -0.5 }] };
    expect(() => run(s)).toThrow(/model\.layers\.0\.mlp\.up_proj\.weight: multislerp weights sum to 0 with normalize_weights: true/);
  });

  it('nearswap with two models besides the base', () => {
    const s = { method: 'nearswap' as const, inputs: [data([1]), data([2]), data([3])], baseIndex: 0, params: { t: 0.1 } };
    expect(() => run(s)).toThrow(/nearswap takes exactly one model besides the base, got 2/);
  });

  it('nearswap without t', () => {
    const s = { method: 'nearswap' as const, inputs: [data([1]), data([2])], baseIndex: 0 };
    expect(() => run(s)).toThrow(/missing parameter t for nearswap/);
  });
});
