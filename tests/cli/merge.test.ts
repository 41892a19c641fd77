import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEvo } from './run-evo.js';
import type { DryRunReport } from '../../src/cli/merge.js';
import { parseSizeBytes } from '../../src/cli/size.js';
import { decodeToF32 } from '../../src/tensors/dtype.js';
import { readSafetensorsHeader } from '../../src/tensors/safetensors.js';
import { writeTinyLlama, type TinyLlamaInfo } from '../fixtures/tiny-llama.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';

let dir = '';
let base: TinyLlamaInfo;
let ft: TinyLlamaInfo;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-cli-merge-'));
  base = await writeTinyLlama(path.join(dir, 'base'), { layers: 2, seed: 0 });
  ft = await writeTinyLlama(path.join(dir, 'ft'), { layers: 2, seed: 1 });
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `evo ...args`, capturing stdout and stderr. */
async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await runEvo(...args);
  return { code: r.code, out: r.stdout, err: r.stderr };
}

async function config(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

describe('parseSizeBytes', () => {
  it.each([
    ['4GB', 4e9],
    ['512MiB', 512 * 1024 ** 2],
    ['1.5 g', 1.5e9],
    ['1048576', 1048576],
    ['2kib', 2048],
    ['10 B', 10],
  ])('%s = %i bytes', (text, bytes) => {
    expect(parseSizeBytes(text, '--max-memory')).toBe(bytes);
  });

  it.each(['', '0', '-1GB', '4 parsecs', 'GB', '1e9'])('rejects %j', (text) => {
    expect(() => parseSizeBytes(text, '--max-memory')).toThrow(/--max-memory must be/);
  });
});

describe('evo merge', () => {
  it('--dry-run --json prints the resolved plan and writes nothing', async () => {
    const file = await config(
      'ties.yml',
      'merge_method: ties\nbase_model: base\nmodels:\n  - model: ft\n    parameters: {weight: [0, 1], density: 0.5}\ndtype: bfloat16\n',
    );
    const before = await readdir(dir);
    const r = await run('merge', file, '--dry-run', '--json', '--seed', '3');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as DryRunReport;
    expect(report.tasks).toHaveLength(1 + 2 * 9 + 2);
    expect(report.seed).toBe(3);
    const l1 = report.tasks.find((t) => t.output === 'model.layers.1.self_attn.q_proj.weight');
    expect(l1).toMatchObject({
      method: 'ties',
      computeDType: 'BF16',
      outDType: 'BF16',
      params: { normalize: true, lambda: 1, rescale: false, int8_mask: false },
      inputs: [
        { model: 'ft', kind: 'file', tensor: 'model.layers.1.self_attn.q_proj.weight', base: false, params: { weight: 1, density: 0.5 } },
        { model: 'base', kind: 'file', base: true, params: { density: 1 } },
      ],
    });
    expect(report.outputConfig['num_hidden_layers']).toBe(2);
    expect(await readdir(dir)).toEqual(before);
  });

  it('--dry-run prints one line per output tensor', async () => {
    const file = await config('franken.yml', 'merge_method: passthrough\nslices:\n  - sources: [{model: base, layer_range: [0, 2]}]\n  - sources: [{model: ft, layer_range: [1, 2]}]\n');
    const r = await run('merge', file, '--dry-run');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(1 + 3 * 9 + 2 + 1);
    expect(lines).toContain('model.layers.2.mlp.up_proj.weight [32×16] F32 passthrough ← ft:model.layers.1.mlp.up_proj.weight');
    expect(lines.at(-1)).toMatch(/^30 tensors, 3 layers; tokenizer from .*base$/);
  });

  it('reports every config problem with file:line:col and exits 1', async () => {
    const file = await config('bad.yml', 'merge_method: ties\nbase_model: base\nmodels:\n  - model: ft\n    parameters: {weight: 1, density: 1.5}\nnormalize: false\n');
    const r = await run('merge', file, '--dry-run');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}:5:38 models[0].parameters.density: must be in (0, 1], got 1.5`);
    expect(r.out).toBe('');
  });

  it('prints warnings for keys mergekit would ignore', async () => {
    const file = await config('warn.yml', 'merge_method: linear\nnormalize: false\nmodels: [{model: ft, parameters: {weight: 1}}]\n');
    const r = await run('merge', file, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/warn\.yml:2:1 warning: normalize: unknown key 'normalize' is ignored/);
  });

  it('is a usage error (exit 2) without --out, or with a bad size', async () => {
    const file = await config('ok.yml', 'merge_method: linear\nmodels: [{model: ft, parameters: {weight: 1}}]\n');
    expect((await run('merge', file)).code).toBe(2);
    const r = await run('merge', file, '--dry-run', '--max-memory', 'lots');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--max-memory must be a size/);
  });
});

/** Every tensor of a single-file output model, decoded to f32. */
async function readModel(modelDir: string): Promise<Map<string, { shape: readonly number[]; values: Float32Array }>> {
  const file = path.join(modelDir, 'model.safetensors');
  const header = await readSafetensorsHeader(file);
  const fh = await open(file, 'r');
  const out = new Map<string, { shape: readonly number[]; values: Float32Array }>();
  try {
    for (const t of header.tensors.values()) {
      const bytes = new Uint8Array(t.byteLength);
      await fh.read(bytes, 0, t.byteLength, t.byteOffset);
      out.set(t.name, { shape: t.shape, values: decodeToF32(t.dtype, bytes) });
    }
  } finally {
    await fh.close();
  }
  return out;
}

describe('evo merge (writing a model)', () => {
  beforeAll(async () => {
    await ensureMergeWorkerBuilt();
  }, 300_000);

  it('stacks layers for a frankenmerge: copies, renumbered, with config and tokenizer', async () => {
    const file = await config('stack.yml', 'merge_method: passthrough\nslices:\n  - sources: [{model: base, layer_range: [0, 2]}]\n  - sources: [{model: ft, layer_range: [1, 2]}]\n');
    const out = path.join(dir, 'out-stack');
    const r = await run('merge', file, '--out', out, '--jobs', '1', '--json');
    expect(r.code, r.err).toBe(0);
    const model = await readModel(out);
    expect(model.size).toBe(1 + 3 * 9 + 2);
    expect(model.get('model.layers.2.mlp.up_proj.weight')?.values).toEqual(ft.values.get('model.layers.1.mlp.up_proj.weight'));
    expect(model.get('model.layers.0.self_attn.q_proj.weight')?.values).toEqual(base.values.get('model.layers.0.self_attn.q_proj.weight'));
    expect(model.get('model.embed_tokens.weight')?.values).toEqual(base.values.get('model.embed_tokens.weight'));
    expect(model.get('lm_head.weight')?.values).toEqual(ft.values.get('lm_head.weight'));
    const cfg = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg['num_hidden_layers']).toBe(3);
    expect(cfg['hidden_size']).toBe(16);
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']));
  }, 120_000);

  it('computes a linear merge with gradient weights (checked against hand arithmetic)', async () => {
    const file = await config('lin.yml', 'merge_method: linear\nmodels:\n  - model: base\n    parameters: {weight: [1, 3]}\n  - model: ft\n    parameters: {weight: 1}\ndtype: float32\n');
    const out = path.join(dir, 'out-linear');
    const r = await run('merge', file, '--out', out, '--jobs', '2', '--json');
    expect(r.code, r.err).toBe(0);
    const model = await readModel(out);
    // Layer 1 of 2 sits at t = 1: weights 3 and 1, normalized; embeddings at t = 0: 1 and 1.
    const check = (name: string, wBase: number): void => {
      const a = base.values.get(name);
      const b = ft.values.get(name);
      const got = model.get(name)?.values;
      if (!a || !b || !got) throw new Error(`missing ${name}`);
      for (let i = 0; i < a.length; i++) {
        const want = ((a[i] ?? 0) * wBase + (b[i] ?? 0)) / (wBase + 1);
        expect(Math.abs((got[i] ?? 0) - want)).toBeLessThanOrEqual(1e-6 + 1e-6 * Math.abs(want));
      }
    };
    check('model.layers.1.mlp.down_proj.weight', 3);
    check('model.layers.0.mlp.down_proj.weight', 1);
    check('model.embed_tokens.weight', 1);
  }, 120_000);

  it('computes nearswap (checked against hand arithmetic) and sce, karcher, multislerp with the same bytes for --jobs 1 and 4', async () => {
    const swap = await config('nearswap.yml', 'merge_method: nearswap\nbase_model: base\nmodels: [{model: ft}]\nparameters: {t: 0.02}\ndtype: float32\n');
    const out = path.join(dir, 'out-nearswap');
    const r = await run('merge', swap, '--out', out, '--jobs', '2', '--json');
    expect(r.code, r.err).toBe(0);
    const model = await readModel(out);
    const name = 'model.layers.1.mlp.down_proj.weight';
    const a = base.values.get(name);
    const b = ft.values.get(name);
    const got = model.get(name)?.values;
    if (!a || !b || !got) throw new Error(`missing ${name}`);
    for (let i = 0; i < a.length; i++) {
      const ai = a[i] ?? 0;
      const bi = b[i] ?? 0;
      const w = Math.min(1, Math.max(0, 0.02 / Math.max(Math.abs(ai - bi), 1e-6)));
      const want = w * bi + (1 - w) * ai;
      expect(Math.abs((got[i] ?? 0) - want)).toBeLessThanOrEqual(1e-6 + 1e-6 * Math.abs(want));
    }
    const others = {
      sce: 'merge_method: sce\nbase_model: base\nmodels: [{model: ft}, {model: base}]\nparameters: {select_topk: 0.5}\ndtype: bfloat16\n',
      karcher: 'merge_method: karcher\nmodels: [{model: base}, {model: ft}]\ndtype: bfloat16\n',
      multislerp: 'merge_method: multislerp\nmodels: [{model: base, parameters: {weight: 0.3}}, {model: ft, parameters: {weight: 0.7}}]\n',
    };
    for (const [method, yaml] of Object.entries(others)) {
      const file = await config(`${method}.yml`, yaml);
      const bytes = async (jobs: string): Promise<Buffer> => {
        const o = path.join(dir, `out-${method}-${jobs}`);
        const res = await run('merge', file, '--out', o, '--jobs', jobs, '--json');
        expect(res.code, `${method}: ${res.err}`).toBe(0);
        return readFile(path.join(o, 'model.safetensors'));
      };
      expect((await bytes('1')).equals(await bytes('4')), method).toBe(true);
    }
  }, 240_000);
});
