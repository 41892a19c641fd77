/**
 * The merge pool with real Piscina workers running the real kernels: the output's bytes do not
 * depend on the thread count, the order of the plan's tasks or row chunking (for every method
 * family: linear, dare_ties, ties, task_arithmetic, sce, karcher, multislerp, nearswap).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { materializePlan } from '../../src/merge/materialize.js';
import type { MaterializeOptions } from '../../src/merge/materialize.js';
import type { MergePlan } from '../../src/merge/task.js';
import { planYaml, readDir, readTensors, shuffleTasks, tempFilesIn, writeTinyModels } from './merge-fixtures.js';
import type { TinyModels } from './merge-fixtures.js';
import { ensureMergeWorkerBuilt } from './merge-worker-build.js';
import { decodeToF32, type FloatDType } from '../../src/tensors/dtype.js';

let models: TinyModels;
let outCount = 0;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  models = await writeTinyModels(3);
}, 180_000);

afterAll(() => {
  if (models !== undefined) fs.rmSync(models.root, { recursive: true, force: true });
});

async function merge(plan: MergePlan, options: Omit<MaterializeOptions, 'outDir'> = {}): Promise<Map<string, Buffer>> {
  const outDir = path.join(models.root, `out-${outCount++}`);
  await materializePlan(plan, { progress: 'none', ...options, outDir });
  expect(tempFilesIn(outDir)).toEqual([]);
  return readDir(outDir);
}

function expectSameFiles(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [name, bytes] of a) expect(b.get(name)?.equals(bytes), name).toBe(true);
}

const LINEAR = `merge_method: linear
models:
  - model: ft1
    parameters: {weight: 0.2}
  - model: ft2
    parameters: {weight: 0.3}
  - model: ft3
    parameters: {weight: 0.5}
dtype: float32
out_dtype: float32
`;

const DARE_TIES = `merge_method: dare_ties
base_model: base
models:
  - model: ft1
    parameters: {weight: 0.5, density: 0.5}
  - model: ft2
    parameters: {weight: 0.3, density: 0.7}
  - model: ft3
    parameters: {weight: 0.4, density: 0.3}
dtype: bfloat16
`;

const TIES_DENSE = `merge_method: ties
base_model: base
models:
  - model: ft1
    parameters: {weight: 0.5, density: 1}
  - model: ft2
    parameters: {weight: -0.3, density: 1}
  - model: ft3
    parameters: {weight: 0.4}
parameters: {normalize: true}
dtype: bfloat16
`;

const TASK_ARITHMETIC = `merge_method: task_arithmetic
base_model: base
models:
  - model: ft1
    parameters: {weight: 0.7}
  - model: ft2
    parameters: {weight: 0.6}
dtype: bfloat16
`;

describe('merge pool (real workers)', () => {
  it('linear: each output element is the weighted mean of the inputs, whatever the thread count', async () => {
    const plan = await planYaml(models.root, LINEAR);
    const one = await merge(plan, { jobs: 1 });
    const out = readTensors(path.join(models.root, `out-${outCount - 1}`));
    expect(out.size).toBe(models.base.tensorNames.length);
    for (const name of models.base.tensorNames) {
      const got = out.get(name);
      if (got === undefined) throw new Error(`missing ${name}`);
      expect(got.dtype).toBe('F32');
      const values = new Float32Array(got.bytes.buffer, got.bytes.byteOffset, got.bytes.byteLength / 4);
      const [a, b, c] = models.fineTunes.map((m) => m.values.get(name));
      if (a === undefined || b === undefined || c === undefined) throw new Error(`no fixture values for ${name}`);
      for (let i = 0; i < values.length; i++) {
        const want = 0.2 * (a[i] ?? 0) + 0.3 * (b[i] ?? 0) + 0.5 * (c[i] ?? 0);
        expect(Math.abs((values[i] ?? Number.NaN) - want)).toBeLessThanOrEqual(1e-6 * Math.abs(want) + 1e-7);
      }
    }
    expectSameFiles(one, await merge(plan, { jobs: 2 }));
    expectSameFiles(one, await merge(plan, { jobs: 4 }));
    expectSameFiles(one, await merge(shuffleTasks(plan, 11), { jobs: 4 }));
  });

  it('dare_ties: identical bytes for 1, 2 and 4 threads and shuffled task orders', async () => {
    const plan = await planYaml(models.root, DARE_TIES, 1234);
    const one = await merge(plan, { jobs: 1 });
    expectSameFiles(one, await merge(plan, { jobs: 2 }));
    expectSameFiles(one, await merge(shuffleTasks(plan, 3), { jobs: 2 }));
    expectSameFiles(one, await merge(shuffleTasks(plan, 99), { jobs: 4 }));
    // The masks do depend on the seed: a different seed gives a different model.
    const other = await merge(await planYaml(models.root, DARE_TIES, 1235), { jobs: 2 });
    expect(other.get('model.safetensors')?.equals(one.get('model.safetensors') ?? Buffer.alloc(0))).toBe(false);
  });

  it('row chunks give the bytes of whole tensors (linear, task_arithmetic, ties at density 1)', async () => {
    for (const yaml of [LINEAR, TASK_ARITHMETIC, TIES_DENSE]) {
      const plan = await planYaml(models.root, yaml);
      const whole = await merge(plan, { jobs: 2, rowChunkBytes: 1 << 30 });
      // 1 KiB chunks: a few rows each, so every matrix is split many times.
      expectSameFiles(whole, await merge(plan, { jobs: 2, rowChunkBytes: 1024 }));
      expectSameFiles(whole, await merge(shuffleTasks(plan, 5), { jobs: 4, rowChunkBytes: 1024 }));
    }
  });

  it('a memory budget smaller than every task still merges, one task at a time, and says so once', async () => {
    const plan = await planYaml(models.root, DARE_TIES, 1234);
    const reference = await merge(plan, { jobs: 2 });
    const outDir = path.join(models.root, `out-${outCount++}`);
    const summary = await materializePlan(plan, { outDir, progress: 'none', jobs: 2, maxMemoryBytes: 1 });
    expectSameFiles(reference, readDir(outDir));
    expect(summary.warnings.filter((w) => w.includes('memory budget'))).toHaveLength(1);
  });

  it("a worker's failure rejects with its error code and leaves no output", async () => {
    const plan = await planYaml(models.root, LINEAR);
    const [first, ...rest] = plan.tasks;
    if (first === undefined) throw new Error('empty plan');
    // An output shape the inputs cannot give: the kernels refuse it in the worker.
    const broken: MergePlan = { ...plan, tasks: [...rest, { ...first, outShape: [2, ...first.outShape] }] };
    const outDir = path.join(models.root, `out-${outCount++}`);
    const failure = materializePlan(broken, { outDir, progress: 'none', jobs: 2 });
    await expect(failure).rejects.toMatchObject({ code: 'MERGE_SHAPE' });
    await expect(failure).rejects.toThrow(first.output);
    expect(fs.existsSync(outDir)).toBe(false);
  });
});

// sce, karcher, multislerp and nearswap: whole-tensor statistics (nearswap is elementwise).
const EXTRA_METHODS: Readonly<Record<string, string>> = {
  sce: `merge_method: sce
base_model: base
models: [{model: ft1}, {model: ft2}, {model: ft3}]
parameters: {select_topk: 0.6}
dtype: bfloat16
`,
  karcher: `merge_method: karcher
models: [{model: ft1}, {model: ft2}, {model: ft3}]
parameters: {max_iter: 20}
dtype: bfloat16
`,
  multislerp: `merge_method: multislerp
base_model: base
models:
  - {model: ft1, parameters: {weight: 0.5}}
  - {model: ft2, parameters: {weight: 0.3}}
  - {model: ft3, parameters: {weight: [0.2, 0.6]}}
dtype: float32
`,
  nearswap: `merge_method: nearswap
base_model: base
models: [{model: ft1}]
parameters: {t: 0.05}
dtype: bfloat16
`,
};

describe('sce, karcher, multislerp, nearswap through the merge pool', () => {
  for (const [method, yaml] of Object.entries(EXTRA_METHODS)) {
    it(`${method}: identical bytes for 1 and 4 threads and a shuffled task order; finite, and off the base`, async () => {
      const plan = await planYaml(models.root, yaml);
      expect(plan.tasks.every((t) => t.method === method)).toBe(true);
      const one = await merge(plan, { jobs: 1 });
      const oneDir = path.join(models.root, `out-${outCount - 1}`);
      expectSameFiles(one, await merge(plan, { jobs: 4 }));
      expectSameFiles(one, await merge(shuffleTasks(plan, 17), { jobs: 4 }));
      // Finite everywhere, and not the base copied through: most tensors moved away from it.
      const out = readTensors(oneDir);
      expect(out.size).toBe(models.base.tensorNames.length);
      let changed = 0;
      for (const name of models.base.tensorNames) {
        const got = out.get(name);
        const base = models.base.values.get(name);
        if (got === undefined || base === undefined) throw new Error(`missing ${name}`);
        const v = decodeToF32(got.dtype as FloatDType, got.bytes);
        expect(v.every((x) => Number.isFinite(x)), name).toBe(true);
        if (v.some((x, i) => Math.abs(x - (base[i] ?? 0)) > 1e-2 * Math.max(1, Math.abs(base[i] ?? 0)))) changed++;
      }
      expect(changed).toBeGreaterThan(models.base.tensorNames.length / 2);
    });
  }

  it('nearswap in row chunks gives the bytes of whole tensors', async () => {
    const plan = await planYaml(models.root, EXTRA_METHODS.nearswap ?? '');
    const whole = await merge(plan, { jobs: 2, rowChunkBytes: 1 << 30 });
    expectSameFiles(whole, await merge(plan, { jobs: 2, rowChunkBytes: 1024 }));
    expectSameFiles(whole, await merge(shuffleTasks(plan, 5), { jobs: 4, rowChunkBytes: 1024 }));
  });
});
