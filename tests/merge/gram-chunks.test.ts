/**
 * slerp, nuslerp and model_stock tensors cut into row chunks (a gram pass over the chunks first,
 * then each chunk merged on its own) give the bytes of the same tensors merged whole, for any thread count
 * and budget; and the gram block sums are what a plain f64 sum of the products gives.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MaterializeOptions } from '../../src/merge/materialize.js';
import { GRAM_BLOCK_ELEMENTS, gramBlockRows, gramBlocks, sumGramBlocks } from '../../src/merge/methods/gram-blocks.js';
import type { ChunkStatsCollector } from '../../src/merge/methods/chunk-stats.js';
import { GramCollector } from '../../src/merge/methods/gram-stats.js';
import { SceCollector } from '../../src/merge/methods/sce.js';
import type { FamilyContext, TensorData } from '../../src/merge/methods/task-inputs.js';
import { TS_KERNELS, loadKernels } from '../../src/merge/native/binding.js';
import { KERNEL_DTYPE } from '../../src/merge/native/numeric.js';
import { computeTask, computeTaskStats } from '../../src/merge/compute.js';
import { rowSplitOf } from '../../src/merge/row-chunks.js';
import { dtypeByteSize, encodeFromF32 } from '../../src/tensors/dtype.js';
import type { MergePlan, TensorTask } from '../../src/merge/task.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { mergeWeights, planYaml, shuffleTasks } from './merge-fixtures.js';
import { ensureMergeWorkerBuilt } from './merge-worker-build.js';

// 40000 × 32 embeddings: 1.28 M elements, two gram blocks of 32768 rows (the second partial).
const SHAPE = { layers: 1, hidden: 32, intermediate: 48, vocab: 40000, heads: 4, kvHeads: 2 };

let root: string;
let outCount = 0;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'evomerge-gram-'));
  for (const dtype of ['BF16', 'F32'] as const) {
    const dir = path.join(root, dtype);
    await writeTinyLlama(path.join(dir, 'base'), { ...SHAPE, dtype, seed: 0 });
    for (let i = 1; i <= 2; i++) await writeTinyLlama(path.join(dir, `ft${i}`), { ...SHAPE, dtype, seed: 20 + i, perturbFrom: { seed: 0, scale: 0.3 } });
  }
}, 180_000);

afterAll(() => {
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
});

function merge(plan: MergePlan, options: Omit<MaterializeOptions, 'outDir'>): Promise<{ weights: Buffer; reread: boolean }> {
  return mergeWeights(plan, path.join(root, `out-${outCount++}`), options);
}

// `native`: the jobs-3 run keeps the addon (passes that walk the data many times are slow in the TS twins).
const CASES: readonly { name: string; yaml: (dtype: string) => string; split: 'gram' | 'elementwise'; native?: boolean }[] = [
  { name: 'slerp', split: 'gram', yaml: (d) => `merge_method: slerp\nbase_model: base\nmodels:\n  - model: base\n  - model: ft1\nparameters: {t: 0.35}\ndtype: ${d}\n` },
  {
    name: 'nuslerp, flattened',
    split: 'gram',
    yaml: (d) => `merge_method: nuslerp\nmodels:\n  - model: ft1\n    parameters: {weight: 0.7}\n  - model: ft2\n    parameters: {weight: 0.4}\nparameters: {nuslerp_flatten: true}\ndtype: ${d}\n`,
  },
  {
    name: 'nuslerp, column vectors, with a base',
    split: 'gram',
    yaml: (d) => `merge_method: nuslerp\nbase_model: base\nmodels:\n  - model: ft1\n    parameters: {weight: 0.5}\n  - model: ft2\n    parameters: {weight: 0.8}\nparameters: {nuslerp_flatten: false, nuslerp_row_wise: true}\ndtype: ${d}\n`,
  },
  {
    name: 'nuslerp, row vectors',
    split: 'elementwise',
    yaml: (d) => `merge_method: nuslerp\nmodels:\n  - model: ft1\n    parameters: {weight: 1}\n  - model: ft2\n    parameters: {weight: 2}\nparameters: {nuslerp_flatten: false}\ndtype: ${d}\n`,
  },
  {
    name: 'model_stock',
    split: 'gram',
    yaml: (d) => `merge_method: model_stock\nbase_model: base\nmodels:\n  - model: base\n  - model: ft1\n  - model: ft2\ndtype: ${d}\n`,
  },
  {
    name: 'model_stock, filter_wise',
    split: 'elementwise',
    yaml: (d) => `merge_method: model_stock\nbase_model: base\nmodels:\n  - model: base\n  - model: ft1\n  - model: ft2\nparameters: {filter_wise: true}\ndtype: ${d}\n`,
  },
  {
    name: 'multislerp with a base (four passes)',
    split: 'gram',
    native: true,
    yaml: (d) => `merge_method: multislerp\nbase_model: base\nmodels:\n  - model: base\n  - model: ft1\n    parameters: {weight: 0.6}\n  - model: ft2\n    parameters: {weight: 0.9}\ndtype: ${d}\n`,
  },
  {
    name: 'multislerp of three models',
    split: 'gram',
    native: true,
    yaml: (d) =>
      `merge_method: multislerp\nmodels:\n  - model: base\n    parameters: {weight: 0.2}\n  - model: ft1\n    parameters: {weight: 0.5}\n  - model: ft2\n    parameters: {weight: 0.3}\nparameters: {normalize_weights: false}\ndtype: ${d}\n`,
  },
  {
    name: 'karcher (passes per iteration)',
    split: 'gram',
    native: true,
    yaml: (d) => `merge_method: karcher\nmodels:\n  - model: base\n  - model: ft1\n  - model: ft2\nparameters: {max_iter: 2, tol: 1.0e-9}\ndtype: ${d}\n`,
  },
  {
    name: 'sce, select_topk 0.3 (variance ranks, then energies)',
    split: 'gram',
    yaml: (d) => `merge_method: sce\nbase_model: base\nmodels:\n  - model: base\n  - model: ft1\n  - model: ft2\nparameters: {select_topk: 0.3}\ndtype: ${d}\n`,
  },
  {
    name: 'sce, select_topk 1 (energies only)',
    split: 'gram',
    yaml: (d) => `merge_method: sce\nbase_model: base\nmodels:\n  - model: base\n  - model: ft1\n  - model: ft2\nparameters: {select_topk: 1}\ndtype: ${d}\n`,
  },
];

describe('gram-pass row chunks (real workers)', () => {
  for (const stored of ['BF16', 'F32'] as const) {
    for (const c of CASES) {
      it(`${c.name}, ${stored}: chunked bytes equal whole-tensor bytes for jobs 1 and 3`, async () => {
        const plan = await planYaml(path.join(root, stored), c.yaml(stored === 'BF16' ? 'bfloat16' : 'float32'), 5);
        const embed = plan.tasks.find((t) => t.output === 'model.embed_tokens.weight');
        expect(embed && rowSplitOf(embed)).toBe(c.split);
        const whole = await merge(plan, { jobs: 2, rowChunkBytes: 1 << 30 });
        expect(whole.reread).toBe(false);
        const one = await merge(plan, { jobs: 1, rowChunkBytes: 1 << 20, maxMemoryBytes: 8192 });
        expect(one.reread).toBe(c.split === 'gram');
        expect(one.weights.equals(whole.weights)).toBe(true);
        const three = await merge(shuffleTasks(plan, 3), { jobs: 3, rowChunkBytes: 700_000, maxMemoryBytes: 8192, kernels: c.native === true ? 'native' : 'ts' });
        expect(three.weights.equals(whole.weights)).toBe(true);
      }, 120_000);
    }
  }
});

function f32Tensor(shape: number[], fill: (i: number) => number): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from({ length: n }, (_, i) => fill(i)).buffer) };
}

function context(kernels: FamilyContext['kernels']): FamilyContext {
  const task = { output: 't', method: 'slerp' } as unknown as TensorTask;
  return { task, inputs: [], kernels, compute: KERNEL_DTYPE.F32, outCode: KERNEL_DTYPE.F32, maskOverride: undefined, warn: () => undefined, alloc: (n) => new Uint8Array(n), chunk: undefined };
}

describe('gram blocks', () => {
  const rows = 2 * gramBlockRows([1, 24]) + 5;
  const a = f32Tensor([rows, 24], (i) => Math.fround(Math.sin(i * 0.37) * (1 + (i % 7))));
  const b = f32Tensor([rows, 24], (i) => Math.fround(Math.cos(i * 0.11) - 0.25));
  const slice = (t: TensorData, r0: number, n: number): TensorData => ({ ...t, shape: [n, 24], bytes: t.bytes.subarray(r0 * 96, (r0 + n) * 96) });

  for (const [name, kernels] of [['ts', TS_KERNELS], ['native', loadKernels({ logger: () => undefined }).kernels]] as const) {
    it(`${name}: blocks of about 2^20 elements whose sums are the products' sums; chunks on block boundaries give the same blocks`, () => {
      const ctx = context(kernels);
      expect(gramBlockRows([rows, 24])).toBe(Math.floor(GRAM_BLOCK_ELEMENTS / 24));
      const blocks = gramBlocks(ctx, [a, b], undefined, 'flat');
      expect(blocks.length).toBe(3 * 3);
      const x = new Float32Array(a.bytes.buffer);
      const y = new Float32Array(b.bytes.buffer);
      let aa = 0;
      let ab = 0;
      let bb = 0;
      for (let i = 0; i < x.length; i++) {
        aa += (x[i] ?? 0) * (x[i] ?? 0);
        ab += (x[i] ?? 0) * (y[i] ?? 0);
        bb += (y[i] ?? 0) * (y[i] ?? 0);
      }
      const total = sumGramBlocks(blocks, 3);
      // The same sums in another order: equal to about 1e-15 relative.
      expect(Math.abs((total[0] ?? 0) - aa)).toBeLessThan(1e-12 * aa);
      expect(Math.abs((total[1] ?? 0) - ab)).toBeLessThan(1e-12 * Math.sqrt(aa * bb));
      expect(Math.abs((total[2] ?? 0) - bb)).toBeLessThan(1e-12 * bb);
      const r = gramBlockRows([rows, 24]);
      const first = gramBlocks(ctx, [slice(a, 0, 2 * r), slice(b, 0, 2 * r)], undefined, 'flat');
      const rest = gramBlocks(ctx, [slice(a, 2 * r, 5), slice(b, 2 * r, 5)], undefined, 'flat');
      expect([...first, ...rest]).toEqual([...blocks]);
      // Columns: one triple per column and block.
      const cols = gramBlocks(ctx, [a, b], undefined, 'columns');
      expect(cols.length).toBe(3 * 24 * 3);
      const colTotal = sumGramBlocks(cols, 24 * 3);
      let c5 = 0;
      for (let i = 0; i < rows; i++) c5 += (x[i * 24 + 5] ?? 0) * (y[i * 24 + 5] ?? 0);
      expect(Math.abs((colTotal[5 * 3 + 1] ?? 0) - c5)).toBeLessThan(1e-12 * Math.sqrt(aa * bb));
    });
  }

  it('the collector refuses chunks off block boundaries and replies of mismatched sizes', () => {
    const task = { output: 'w', method: 'slerp', outShape: [rows, 24], inputs: [], computeDType: 'F32', baseIndex: 0, params: { t: 0.5 } } as unknown as TensorTask;
    const r = gramBlockRows([rows, 24]);
    expect(() => new GramCollector(task, [r + 1, rows - r - 1])).toThrow(/not whole gram blocks/);
    const collector: ChunkStatsCollector = new GramCollector(task, [r, rows - r]);
    expect(collector.nextPass()).toBe('gram');
    collector.beginPass('gram');
    // slerp sends 3 sums a block; chunk 1 holds two blocks.
    expect(() => collector.absorb(0, { pass: 'gram', blocks: new Float64Array(6) })).toThrow(/expected 3 per block/);
    collector.absorb(0, { pass: 'gram', blocks: Float64Array.of(1, 0, 1) });
    expect(() => collector.absorb(1, { pass: 'gram', blocks: new Float64Array(3) })).toThrow(/expected 3 per block/);
    expect(() => collector.finishPass()).toThrow(/chunk 1 has not answered/);
    collector.absorb(1, { pass: 'gram', blocks: Float64Array.of(2, 1, 3, 4, 2, 5) });
    expect(() => collector.absorb(1, { pass: 'gram', blocks: Float64Array.of(2, 1, 3, 4, 2, 5) })).toThrow(/twice/);
    collector.finishPass();
    expect(collector.nextPass()).toBeNull();
    expect(collector.chunkContext(0)).toEqual({ kind: 'gram', sums: [Float64Array.of(7, 3, 9)] });

    // sce: energies are the sums of every block of every chunk (3 tensors: 6 gram pairs per block).
    const sceTask = { ...task, method: 'sce', inputs: [{}, {}, {}, {}], baseIndex: 0, params: { select_topk: 1 } } as unknown as TensorTask;
    const sce: ChunkStatsCollector = new SceCollector(sceTask, [r, rows - r]);
    expect(sce.nextPass()).toBe('gram');
    sce.beginPass('gram');
    const b0 = Float64Array.from({ length: 6 }, (_, i) => i + 1);
    const b1 = Float64Array.from({ length: 12 }, (_, i) => 10 * (i + 1));
    sce.absorb(1, { pass: 'gram', blocks: b1 });
    expect(() => sce.absorb(0, { pass: 'gram', blocks: new Float64Array(12) })).toThrow(/expected 6 per block/);
    sce.absorb(0, { pass: 'gram', blocks: b0 });
    sce.finishPass();
    expect(sce.nextPass()).toBeNull();
    const energy = (sce.chunkContext(1) as { energy: Float64Array }).energy;
    expect([...energy]).toEqual([...b0].map((v, i) => v + (b1[i] ?? 0) + (b1[i + 6] ?? 0)));
  });
});

describe('gram passes driven by hand', () => {
  type Float = 'F32' | 'F16' | 'BF16';
  const tensor = (dtype: Float, shape: number[], fill: (i: number) => number): TensorData => {
    const n = shape.reduce((x, y) => x * y, 1);
    return { dtype, shape, bytes: encodeFromF32(dtype, Float32Array.from({ length: n }, (_, i) => fill(i))) };
  };
  const fileInput = (model: string, t: TensorData) => ({ kind: 'file' as const, model, file: `${model}.safetensors`, tensor: 'w', dtype: t.dtype, shape: t.shape, byteOffset: 0, byteLength: t.bytes.byteLength });
  function task(method: TensorTask['method'], inputs: readonly TensorData[], opts: { compute: Float; base: number | null; params?: TensorTask['params']; modelParams?: TensorTask['modelParams'] }): TensorTask {
    return {
      output: 'w',
      outShape: [...(inputs[0]?.shape ?? [])],
      outDType: opts.compute,
      computeDType: opts.compute,
      method,
      inputs: inputs.map((t, i) => fileInput(`m${i}`, t)),
      baseIndex: opts.base,
      params: opts.params ?? {},
      modelParams: opts.modelParams ?? inputs.map(() => ({ weight: 1 })),
      isEmbed: false,
      randomKey: { seed: 1, tensor: 'w' },
    };
  }
  const rowBytesOf = (t: TensorData): number => (t.bytes.byteLength / (t.shape[0] ?? 1));
  const slice = (t: TensorData, r0: number, k: number): TensorData => ({ ...t, shape: [k, ...t.shape.slice(1)], bytes: t.bytes.subarray(r0 * rowBytesOf(t), (r0 + k) * rowBytesOf(t)) });

  /** The tensor merged in chunks of `chunkRows` rows: every gram pass over all chunks, then each chunk. */
  function chunked(t: TensorTask, inputs: TensorData[], chunkRows: number, kernels: 'ts' | 'native'): { bytes: Uint8Array; passes: number } {
    const rows = t.outShape[0] ?? 1;
    const starts: number[] = [];
    for (let r = 0; r < rows; r += chunkRows) starts.push(r);
    const sizes = starts.map((r) => Math.min(chunkRows, rows - r));
    const collector: ChunkStatsCollector = t.method === 'sce' ? new SceCollector(t, sizes) : new GramCollector(t, sizes);
    const part = (c: number): { task: TensorTask; inputs: TensorData[] } => ({
      task: { ...t, outShape: [sizes[c] ?? 0, ...t.outShape.slice(1)] },
      inputs: inputs.map((x) => slice(x, starts[c] ?? 0, sizes[c] ?? 0)),
    });
    let passes = 0;
    for (let pass = collector.nextPass(); pass !== null; pass = collector.nextPass()) {
      collector.beginPass(pass);
      // Chunks answer in reverse order: the sums must not depend on it.
      for (let c = sizes.length - 1; c >= 0; c--) {
        const p = part(c);
        collector.absorb(c, computeTaskStats(p.task, p.inputs, pass, { kernels, chunk: collector.chunkContext(c) }));
      }
      collector.finishPass();
      passes++;
    }
    const first = inputs[0];
    const out = new Uint8Array(first === undefined ? 0 : (first.bytes.byteLength / dtypeByteSize(first.dtype)) * dtypeByteSize(t.outDType));
    const outRow = out.byteLength / rows;
    sizes.forEach((_, c) => {
      const p = part(c);
      out.set(computeTask(p.task, p.inputs, { kernels, chunk: collector.chunkContext(c) }).bytes, (starts[c] ?? 0) * outRow);
    });
    return { bytes: out, passes };
  }

  const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
  const wave = (k: number, phase: number) => (i: number) => Math.sin(i * k + phase) * (1 + ((i * 7) % 5) * 0.1);

  for (const kernels of ['ts', 'native'] as const) {
    it(`${kernels}: multislerp takes four passes for three models, two when the mean vanishes (mergekit's lerp of two models); bytes as whole`, () => {
      const cols = 64;
      const rows = 2 * gramBlockRows([1, cols]) + 7;
      const [a, b, c] = [wave(0.013, 0), wave(0.029, 1), wave(0.007, 2)].map((f) => tensor('F32', [rows, cols], f));
      if (a === undefined || b === undefined || c === undefined) throw new Error('inputs');
      const three = task('multislerp', [a, b, c], { compute: 'F32', base: null, modelParams: [{ weight: 0.5 }, { weight: 0.3 }, { weight: 0.2 }] });
      const whole = computeTask(three, [a, b, c], { kernels });
      const r = gramBlockRows([1, cols]);
      for (const chunkRows of [r, 2 * r]) {
        const got = chunked(three, [a, b, c], chunkRows, kernels);
        expect(got.passes).toBe(4);
        expect(same(got.bytes, whole.bytes)).toBe(true);
      }
      const minusA = tensor('F32', [rows, cols], (i) => -wave(0.013, 0)(i));
      const two = task('multislerp', [a, minusA], { compute: 'F32', base: null, modelParams: [{ weight: 0.5 }, { weight: 0.5 }] });
      const lerp = chunked(two, [a, minusA], r, kernels);
      expect(lerp.passes).toBe(2);
      expect(same(lerp.bytes, computeTask(two, [a, minusA], { kernels }).bytes)).toBe(true);
      expect(new Float32Array(lerp.bytes.buffer).every((v) => v === 0)).toBe(true);
    });

    it(`${kernels}: karcher walks its chunks' rows of u again at each pass and gives the bytes of the whole tensor, unit₀ start included`, () => {
      const cols = 40;
      const rows = 2 * gramBlockRows([1, cols]) + 3;
      const r = gramBlockRows([1, cols]);
      // The TS twins are slow, and each pass walks u again from the start: fewer iterations there.
      const maxIter = kernels === 'ts' ? 1 : 5;
      for (const dtype of kernels === 'ts' ? (['BF16'] as const) : (['F32', 'BF16'] as const)) {
        const [a, b, c] = [wave(0.011, 0), wave(0.017, 0.7), wave(0.005, 1.9)].map((f) => tensor(dtype, [rows, cols], f));
        if (a === undefined || b === undefined || c === undefined) throw new Error('inputs');
        const karcher = task('karcher', [a, b, c], { compute: dtype, base: null, params: { max_iter: maxIter, tol: 1e-9 }, modelParams: [{}, {}, {}] });
        const got = chunked(karcher, [a, b, c], r, kernels);
        // The norms and ‖init‖, then the dots, ‖T‖ and ‖u‖ of at least one iteration.
        expect(got.passes).toBeGreaterThanOrEqual(2 + 3);
        expect(got.passes).toBeLessThanOrEqual(2 + 3 * maxIter);
        expect(same(got.bytes, computeTask(karcher, [a, b, c], { kernels }).bytes)).toBe(true);
      }
      // a and −a: Σ aᵢ·unitᵢ is 0, so u starts at unit₀.
      const a = tensor('F32', [rows, cols], wave(0.011, 0));
      const minusA = tensor('F32', [rows, cols], (i) => -wave(0.011, 0)(i));
      const pair = task('karcher', [a, minusA], { compute: 'F32', base: null, params: { max_iter: kernels === 'ts' ? 1 : 3, tol: 1e-6 }, modelParams: [{}, {}] });
      const got = chunked(pair, [a, minusA], r, kernels);
      expect(same(got.bytes, computeTask(pair, [a, minusA], { kernels }).bytes)).toBe(true);
    });

    it(`${kernels}: sce ranks variances across chunks (ties at the cut by lower index) and gives the bytes of the whole tensor`, () => {
      const cols = 32;
      const rows = 2 * gramBlockRows([1, cols]) + 9;
      const r = gramBlockRows([1, cols]);
      // Quantized deltas: many equal variances, so the cut falls inside a run of ties across chunks.
      const q = (k: number, phase: number) => (i: number) => Math.round(Math.sin(i * k + phase) * 4) / 8;
      for (const dtype of ['BF16', 'F32'] as const) {
        const base = tensor(dtype, [rows, cols], () => 0.25);
        const [x, y, z] = [q(0.37, 0), q(0.11, 1), q(0.23, 2)].map((f) => tensor(dtype, [rows, cols], (i) => 0.25 + f(i)));
        if (x === undefined || y === undefined || z === undefined) throw new Error('inputs');
        for (const topk of [0.3, 0.999, 1, 0]) {
          const sce = task('sce', [base, x, y, z], { compute: dtype, base: 0, params: { select_topk: topk }, modelParams: [{}, {}, {}, {}] });
          const whole = computeTask(sce, [base, x, y, z], { kernels });
          const got = chunked(sce, [base, x, y, z], r, kernels);
          expect(got.passes, `select_topk ${topk}`).toBe(topk >= 1 ? 1 : topk <= 0 ? 0 : dtype === 'BF16' ? 2 : 3);
          expect(same(got.bytes, whole.bytes), `${dtype} select_topk ${topk}`).toBe(true);
        }
      }
    });

    it(`${kernels}: slerp of a 1-d bf16 tensor, nuslerp along columns in f16 with a base, model_stock in bf16: bytes as whole`, () => {
      const n = 2 * (1 << 20) + 3;
      const x = tensor('BF16', [n], wave(0.001, 0));
      const y = tensor('BF16', [n], wave(0.0013, 0.5));
      const slerp = task('slerp', [x, y], { compute: 'BF16', base: 0, params: { t: 0.4 }, modelParams: [{}, {}] });
      const s1 = chunked(slerp, [x, y], 1 << 20, kernels);
      expect(s1.passes).toBe(1);
      expect(same(s1.bytes, computeTask(slerp, [x, y], { kernels }).bytes)).toBe(true);

      const cols = 48;
      const rows = gramBlockRows([1, cols]) * 2 + 11;
      const [base, p, q] = [wave(0.002, 0), wave(0.003, 1), wave(0.0017, 2)].map((f) => tensor('F16', [rows, cols], f));
      if (base === undefined || p === undefined || q === undefined) throw new Error('inputs');
      const nuslerp = task('nuslerp', [base, p, q], { compute: 'F16', base: 0, params: { nuslerp_flatten: false, nuslerp_row_wise: true }, modelParams: [{}, { weight: 0.3 }, { weight: 0.9 }] });
      const s2 = chunked(nuslerp, [base, p, q], gramBlockRows([1, cols]), kernels);
      expect(s2.passes).toBe(1);
      expect(same(s2.bytes, computeTask(nuslerp, [base, p, q], { kernels }).bytes)).toBe(true);

      const [b0, m1, m2, m3] = [wave(0.002, 0), wave(0.0021, 0.1), wave(0.0019, 0.2), wave(0.0023, 0.3)].map((f) => tensor('BF16', [rows, cols], f));
      if (b0 === undefined || m1 === undefined || m2 === undefined || m3 === undefined) throw new Error('inputs');
      const stock = task('model_stock', [b0, m1, m2, m3], { compute: 'BF16', base: 0, modelParams: [{}, {}, {}, {}] });
      const s3 = chunked(stock, [b0, m1, m2, m3], gramBlockRows([1, cols]), kernels);
      expect(s3.passes).toBe(1);
      expect(same(s3.bytes, computeTask(stock, [b0, m1, m2, m3], { kernels }).bytes)).toBe(true);
    });
  }
});
