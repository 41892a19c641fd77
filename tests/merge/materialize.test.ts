/**
 * materializePlan's output directory: the files it writes, sharding, replacing an earlier output,
 * failures and aborts that leave nothing behind, option checks and intermediates.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  defaultMaxMemoryBytes,
  materializePlan,
  MaterializeOptionError,
  resolveMaterializeOptions,
} from '../../src/merge/materialize.js';
import type { MaterializeOptions } from '../../src/merge/materialize.js';
import type { MergePlan } from '../../src/merge/task.js';
import { planYaml, readDir, readTensorFile, readTensors, tempFilesIn, writeTinyModels } from './merge-fixtures.js';
import type { TinyModels } from './merge-fixtures.js';
import { ensureMergeWorkerBuilt } from './merge-worker-build.js';

let models: TinyModels;
let plan: MergePlan;
let outCount = 0;

const TIES = `merge_method: ties
base_model: base
models:
  - model: ft1
    parameters: {weight: 0.6, density: 0.5}
  - model: ft2
    parameters: {weight: 0.4, density: 0.8}
dtype: bfloat16
`;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  models = await writeTinyModels(2);
  plan = await planYaml(models.root, TIES);
}, 180_000);

afterAll(() => {
  if (models !== undefined) fs.rmSync(models.root, { recursive: true, force: true });
});

function freshDir(): string {
  return path.join(models.root, `out-${outCount++}`);
}

async function merge(options: Omit<MaterializeOptions, 'outDir'> & { outDir?: string } = {}, p: MergePlan = plan): Promise<string> {
  const outDir = options.outDir ?? freshDir();
  await materializePlan(p, { progress: 'none', jobs: 2, ...options, outDir });
  return outDir;
}

describe('materializePlan output', () => {
  it('writes the weights, config.json, the tokenizer files and mergekit_config.yml, and reports them', async () => {
    const outDir = freshDir();
    const summary = await materializePlan(plan, { outDir, progress: 'none', jobs: 2 });
    const files = readDir(outDir);
    expect([...files.keys()].sort()).toEqual([...summary.files].sort());
    expect(summary.files[0]).toBe('model.safetensors');
    expect(summary.outDir).toBe(outDir);
    expect(summary.tensors).toBe(plan.tasks.length);
    expect(JSON.parse(files.get('config.json')?.toString() ?? '')).toEqual(plan.outputConfig);
    expect(files.get('mergekit_config.yml')?.toString()).toBe(plan.configText);
    expect(plan.tokenizerFiles.length).toBeGreaterThan(0);
    for (const name of plan.tokenizerFiles) {
      expect(files.get(name)?.equals(fs.readFileSync(path.join(plan.tokenizerDir ?? '', name))), name).toBe(true);
    }
    let written = 0;
    for (const bytes of files.values()) written += bytes.byteLength;
    expect(summary.bytesWritten).toBe(written);
    // Every input tensor of every task is read once: base + two fine-tunes.
    const inputBytes = plan.tasks.reduce((n, t) => n + t.inputs.reduce((m, i) => m + (i.kind === 'file' ? i.byteLength : 0), 0), 0);
    expect(summary.bytesRead).toBe(inputBytes);
    expect(summary.peakRssBytes).toBeGreaterThan(0);
    const tensors = readTensors(outDir);
    for (const task of plan.tasks) {
      expect(tensors.get(task.output), task.output).toMatchObject({ dtype: task.outDType, shape: task.outShape });
    }
    expect(tempFilesIn(outDir)).toEqual([]);
  });

  it('shards by size with an index naming the file of every tensor', async () => {
    const single = readTensors(await merge());
    const tensorBytes = [...single.values()].reduce((n, t) => n + t.bytes.byteLength, 0);
    const outDir = await merge({ shardBytes: Math.ceil(tensorBytes / 3) });
    const names = fs.readdirSync(outDir).filter((n) => n.endsWith('.safetensors')).sort();
    expect(names.length).toBeGreaterThanOrEqual(3);
    names.forEach((n, i) => expect(n).toBe(`model-${String(i + 1).padStart(5, '0')}-of-${String(names.length).padStart(5, '0')}.safetensors`));
    expect(fs.existsSync(path.join(outDir, 'model.safetensors'))).toBe(false);
    const index = JSON.parse(fs.readFileSync(path.join(outDir, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    expect(index.metadata.total_size).toBe(tensorBytes);
    expect(Object.keys(index.weight_map).sort()).toEqual([...single.keys()].sort());
    for (const shard of names) {
      for (const name of readTensorFile(path.join(outDir, shard)).keys()) expect(index.weight_map[name]).toBe(shard);
    }
    const sharded = readTensors(outDir);
    for (const [name, t] of single) expect(sharded.get(name)?.bytes.equals(t.bytes), name).toBe(true);
  });

  it('replaces an earlier output: stale shards and index go, unrelated files stay', async () => {
    const outDir = await merge({ shardBytes: 4096 });
    expect(fs.existsSync(path.join(outDir, 'model.safetensors.index.json'))).toBe(true);
    fs.writeFileSync(path.join(outDir, 'README.md'), 'notes');
    await merge({ outDir });
    const names = fs.readdirSync(outDir).sort();
    expect(names.filter((n) => n.startsWith('model'))).toEqual(['model.safetensors']);
    expect(names).toContain('README.md');
  });
});

describe('materializePlan failures leave nothing partial', () => {
  it('an already aborted signal writes nothing', async () => {
    const outDir = freshDir();
    await expect(materializePlan(plan, { outDir, progress: 'none', signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'MERGE_ABORTED',
    });
    expect(fs.existsSync(outDir)).toBe(false);
  });

  it('aborting mid-merge removes every temp file and keeps the previous output byte for byte', async () => {
    const outDir = await merge({ shardBytes: 4096 });
    const before = readDir(outDir);
    const controller = new AbortController();
    // One thread and 256-byte row chunks: thousands of units, so the merge is still running when
    // the first temp file shows up and the abort lands.
    const running = materializePlan(plan, { outDir, progress: 'none', jobs: 1, rowChunkBytes: 256, signal: controller.signal });
    const watcher = setInterval(() => {
      if (tempFilesIn(outDir).length > 0) controller.abort();
    }, 1);
    try {
      await expect(running).rejects.toMatchObject({ code: 'MERGE_ABORTED' });
    } finally {
      clearInterval(watcher);
    }
    expect(tempFilesIn(outDir)).toEqual([]);
    const after = readDir(outDir);
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [name, bytes] of before) expect(after.get(name)?.equals(bytes), name).toBe(true);
  });

  it('an input file changed since planning is refused before anything is written', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'evomerge-materialize-changed-'));
    try {
      fs.cpSync(models.root, root, { recursive: true, filter: (src) => !path.basename(src).startsWith('out-') });
      const p = await planYaml(root, TIES);
      const file = path.join(root, 'ft2', 'model.safetensors');
      fs.truncateSync(file, fs.statSync(file).size - 64);
      const outDir = path.join(root, 'out');
      await expect(materializePlan(p, { outDir, progress: 'none' })).rejects.toMatchObject({ code: 'INPUT_OUT_OF_RANGE' });
      await expect(materializePlan(p, { outDir, progress: 'none' })).rejects.toThrow(file);
      expect(fs.existsSync(outDir)).toBe(false);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('a missing tokenizer file is refused before anything is written', async () => {
    const outDir = freshDir();
    const p: MergePlan = { ...plan, tokenizerFiles: [...plan.tokenizerFiles, 'tokenizer.model'] };
    await expect(materializePlan(p, { outDir, progress: 'none' })).rejects.toMatchObject({ code: 'TOKENIZER_FILE_MISSING' });
    expect(fs.existsSync(outDir)).toBe(false);
  });

  it('duplicate outputs and an empty plan are refused', async () => {
    const first = plan.tasks[0];
    if (first === undefined) throw new Error('empty plan');
    await expect(materializePlan({ ...plan, tasks: [...plan.tasks, first] }, { outDir: freshDir(), progress: 'none' })).rejects.toMatchObject({
      code: 'DUPLICATE_OUTPUT',
    });
    await expect(materializePlan({ ...plan, tasks: [] }, { outDir: freshDir(), progress: 'none' })).rejects.toMatchObject({ code: 'EMPTY_PLAN' });
  });
});

describe('materialize options', () => {
  it('fills in defaults', () => {
    const o = resolveMaterializeOptions({ outDir: 'rel/out' }, plan);
    expect(o).toMatchObject({
      outDir: path.resolve('rel/out'),
      jobs: os.availableParallelism(),
      shardBytes: 5e9,
      intermediateDir: null,
      progress: 'auto',
      signal: null,
      kernels: 'native',
      rowChunkBytes: 64 * 1024 ** 2,
      maxMemoryExplicit: false,
    });
    const perJob = 384 * 1024 ** 2 * os.availableParallelism();
    expect(o.maxMemoryBytes).toBeGreaterThanOrEqual(Math.min(Math.floor(os.freemem() / 4), perJob) - 64 * 1024 ** 2);
    expect(o.maxMemoryBytes).toBeLessThanOrEqual(perJob);
  });

  it('defaults the budget to min(25% of free memory, 384 MiB per thread), at least the largest task', () => {
    const GiB = 1024 ** 3;
    expect(defaultMaxMemoryBytes(1000, 2, 8 * GiB)).toBe(0.75 * GiB);
    expect(defaultMaxMemoryBytes(1000, 16, 8 * GiB)).toBe(2 * GiB);
    expect(defaultMaxMemoryBytes(1000, 16, 128 * GiB)).toBe(6 * GiB);
    expect(defaultMaxMemoryBytes(5 * GiB, 2, 8 * GiB)).toBe(5 * GiB);
  });

  it.each([
    [{ jobs: 0 }, 'options.jobs must be a positive integer'],
    [{ jobs: 1.5 }, 'options.jobs must be a positive integer'],
    [{ maxMemoryBytes: -1 }, 'options.maxMemoryBytes must be a positive integer'],
    [{ shardBytes: 0 }, 'options.shardBytes must be a positive integer'],
    [{ rowChunkBytes: Number.NaN }, 'options.rowChunkBytes must be a positive integer'],
    [{ progress: 'loud' }, "options.progress must be 'auto', 'none' or 'json'"],
    [{ kernels: 'gpu' }, "options.kernels must be 'native' or 'ts'"],
    [{ intermediateDir: '' }, 'options.intermediateDir must be a non-empty path'],
    [{ outDir: '' }, 'options.outDir must be a non-empty path'],
  ])('rejects %o naming the option', (bad, message) => {
    const options = { outDir: 'out', ...bad } as MaterializeOptions;
    let caught: unknown;
    try {
      resolveMaterializeOptions(options, plan);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MaterializeOptionError);
    expect(caught).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 });
    expect((caught as Error).message).toContain(message);
  });
});

const TWO_STAGES = `name: mix
merge_method: linear
models:
  - model: ft1
    parameters: {weight: 0.5}
  - model: ft2
    parameters: {weight: 0.5}
dtype: bfloat16
---
merge_method: task_arithmetic
base_model: base
models:
  - model: mix
    parameters: {weight: 0.8}
  - model: ft1
    parameters: {weight: 0.3}
dtype: bfloat16
`;

describe('intermediates', () => {
  it('writes each named stage when asked, and the final model is the same either way', async () => {
    const p = await planYaml(models.root, TWO_STAGES);
    expect(p.stages.map((s) => s.name)).toEqual(['mix']);
    const inMemory = readDir(await merge({}, p));
    const intermediateDir = path.join(models.root, `intermediates-${outCount}`);
    const outDir = freshDir();
    const summary = await materializePlan(p, { outDir, intermediateDir, progress: 'none', jobs: 2 });
    expect(summary.intermediateDirs).toEqual([path.join(intermediateDir, 'mix')]);
    const viaFiles = readDir(outDir);
    expect([...viaFiles.keys()]).toEqual([...inMemory.keys()]);
    for (const [name, bytes] of inMemory) expect(viaFiles.get(name)?.equals(bytes), name).toBe(true);
    // The stage is a loadable model of its own: its tensors, its config and its base's tokenizer files.
    const stage = p.stages[0];
    if (stage === undefined) throw new Error('no stage');
    const stageTensors = readTensors(path.join(intermediateDir, 'mix'));
    expect([...stageTensors.keys()].sort()).toEqual(stage.tasks.map((t) => t.output).sort());
    expect(JSON.parse(fs.readFileSync(path.join(intermediateDir, 'mix', 'config.json'), 'utf8'))).toEqual(stage.outputConfig);
    expect(stage.tokenizerFiles).toContain('tokenizer.json');
    for (const f of stage.tokenizerFiles) expect(fs.readFileSync(path.join(intermediateDir, 'mix', f)).equals(fs.readFileSync(path.join(stage.tokenizerDir ?? '', f))), f).toBe(true);
    // And its values are the stage's: the linear mix computed on its own.
    const alone = readTensors(await merge({}, { ...p, tasks: stage.tasks, stages: [] }));
    for (const [name, t] of alone) expect(stageTensors.get(name)?.bytes.equals(t.bytes), name).toBe(true);
  });
});
