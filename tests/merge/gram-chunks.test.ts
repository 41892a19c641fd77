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
import type { FamilyContext, TensorData } from '../../src/merge/methods/task-inputs.js';
import { TS_KERNELS, loadKernels } from '../../src/merge/native/binding.js';
import { KERNEL_DTYPE } from '../../src/merge/native/numeric.js';
import { computeTask, computeTaskStats } from '../../src/merge/compute.js';
import { rowSplitOf } from '../../src/merge/row-chunks.js';
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

const CASES: readonly { name: string; yaml: (dtype: string) => string; split: 'gram' | 'elementwise' }[] = [
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
    yaml: (d) => `merge_method: multislerp\nbase_model: base\nmodels:\n  - model: base\n  - model: ft1\n    parameters: {weight: 0.6}\n  - model: ft2\n    parameters: {weight: 0.9}\ndtype: ${d}\n`,
  },
  {
    name: 'multislerp of three models',
    split: 'gram',
    yaml: (d) =>
      `merge_method: multislerp\nmodels:\n  - model: base\n    parameters: {weight: 0.2}\n  - model: ft1\n    parameters: {weight: 0.5}\n  - model: ft2\n    parameters: {weight: 0.3}\nparameters: {normalize_weights: false}\ndtype: ${d}\n`,
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
        const three = await merge(shuffleTasks(plan, 3), { jobs: 3, rowChunkBytes: 700_000, maxMemoryBytes: 8192, kernels: 'ts' });
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
  });
});

describe('gram passes driven by hand (multislerp)', () => {
  const cols = 64;
  const rows = 2 * gramBlockRows([1, cols]) + 7;
  const n = rows * cols;
  const fileInput = (model: string) => ({ kind: 'file' as const, model, file: `${model}.safetensors`, tensor: 'w', dtype: 'F32' as const, shape: [rows, cols], byteOffset: 0, byteLength: n * 4 });
  const task = (models: number, weights: number[]): TensorTask => ({
    output: 'w',
    outShape: [rows, cols],
    outDType: 'F32',
    computeDType: 'F32',
    method: 'multislerp',
    inputs: Array.from({ length: models }, (_, i) => fileInput(`m${i}`)),
    baseIndex: null,
    params: {},
    modelParams: weights.map((weight) => ({ weight })),
    isEmbed: false,
    randomKey: { seed: 1, tensor: 'w' },
  });
  const slice = (t: TensorData, r0: number, k: number): TensorData => ({ ...t, shape: [k, cols], bytes: t.bytes.subarray(r0 * cols * 4, (r0 + k) * cols * 4) });

  /** The tensor merged in chunks of `chunkRows` rows: every gram pass over all chunks, then each chunk. */
  function chunked(t: TensorTask, inputs: TensorData[], chunkRows: number, kernels: 'ts' | 'native'): { bytes: Uint8Array; passes: number } {
    const starts: number[] = [];
    for (let r = 0; r < rows; r += chunkRows) starts.push(r);
    const sizes = starts.map((r) => Math.min(chunkRows, rows - r));
    const collector: ChunkStatsCollector = new GramCollector(t, sizes);
    const part = (c: number): { task: TensorTask; inputs: TensorData[] } => ({
      task: { ...t, outShape: [sizes[c] ?? 0, cols] },
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
    const out = new Uint8Array(n * 4);
    sizes.forEach((_, c) => {
      const p = part(c);
      out.set(computeTask(p.task, p.inputs, { kernels, chunk: collector.chunkContext(c) }).bytes, (starts[c] ?? 0) * cols * 4);
    });
    return { bytes: out, passes };
  }

  for (const kernels of ['ts', 'native'] as const) {
    it(`${kernels}: four passes for three models, two when the mean vanishes (mergekit's lerp of two models); bytes as whole`, () => {
      const a = f32Tensor([rows, cols], (i) => Math.fround(Math.sin(i * 0.013) + 0.1 * ((i * 7) % 5)));
      const b = f32Tensor([rows, cols], (i) => Math.fround(Math.cos(i * 0.029) * 0.5));
      const c = f32Tensor([rows, cols], (i) => Math.fround(((i * 31) % 17) / 17 - 0.4));
      const three = task(3, [0.5, 0.3, 0.2]);
      const whole = computeTask(three, [a, b, c], { kernels });
      const r = gramBlockRows([1, cols]);
      for (const chunkRows of [r, 2 * r]) {
        const got = chunked(three, [a, b, c], chunkRows, kernels);
        expect(got.passes).toBe(4);
        expect(Buffer.from(got.bytes).equals(Buffer.from(whole.bytes))).toBe(true);
      }
      const minusA = f32Tensor([rows, cols], (i) => -(new Float32Array(a.bytes.buffer)[i] ?? 0));
      const two = task(2, [0.5, 0.5]);
      const lerp = chunked(two, [a, minusA], r, kernels);
      expect(lerp.passes).toBe(2);
      expect(Buffer.from(lerp.bytes).equals(Buffer.from(computeTask(two, [a, minusA], { kernels }).bytes))).toBe(true);
      expect(new Float32Array(lerp.bytes.buffer).every((v) => v === 0)).toBe(true);
    });
  }
});
