import { mkdtemp, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { InspectReport } from '../../src/cli/inspect.js';
import { formatBytes } from '../../src/cli/inspect.js';
import { runEvo } from './run-evo.js';
import { itWithShared } from '../shared-dir.js';
import { cacheHubSnapshot } from '../fixtures/hf-cache.js';
import { writeTinyLlama, type TinyLlamaInfo } from '../fixtures/tiny-llama.js';

let root: string;
let counter = 0;
function fresh(name: string): string {
  return path.join(root, `${++counter}-${name}`);
}

const run = runEvo;

async function inspectJson(ref: string, ...extra: string[]): Promise<InspectReport> {
  const r = await run('inspect', ref, '--json', ...extra);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as InspectReport;
}

let bf16: TinyLlamaInfo;
let sharded: TinyLlamaInfo;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'evo-inspect-'));
  bf16 = await writeTinyLlama(fresh('bf16'), { layers: 4, hidden: 8, intermediate: 16, vocab: 12, heads: 2, kvHeads: 1, dtype: 'BF16', seed: 4 });
  sharded = await writeTinyLlama(fresh('sharded'), { layers: 3, dtype: 'F32', shardBytes: 4096, tied: true });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('evo inspect --json', () => {
  it('describes a single-file checkpoint', async () => {
    const r = await inspectJson(bf16.dir);
    expect(r).toMatchObject({
      ref: bf16.dir,
      dir: bf16.dir,
      source: { kind: 'local' },
      architecture: 'LlamaForCausalLM',
      modelType: 'llama',
      layers: 4,
      hiddenSize: 8,
      intermediateSize: 16,
      numAttentionHeads: 2,
      numKeyValueHeads: 1,
      vocabSize: 12,
      torchDtype: 'bfloat16',
      tiedEmbeddings: false,
      indexFile: null,
      tokenizerFiles: ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'],
      generationConfigFile: 'generation_config.json',
      problems: [],
    });
    // embed + lm_head 2·12·8, per layer 2·8 norms + q 8·8 + k,v 2·4·8 + o 8·8 + mlp 3·16·8, final norm 8
    const perLayer = 16 + 64 + 64 + 64 + 384;
    const parameters = 2 * 96 + 4 * perLayer + 8;
    expect(r.parameters).toBe(parameters);
    expect(r.parameters).toBe(bf16.parameterCount);
    expect(r.bytes).toBe(2 * parameters);
    expect(r.dtypes).toEqual([{ dtype: 'BF16', tensors: 39, parameters, bytes: 2 * parameters }]);
    expect(r.shards).toEqual([{ file: 'model.safetensors', tensors: 39, bytes: 2 * parameters }]);
    expect(r.tensors).toHaveLength(39);
    expect(r.tensors.find((t) => t.name === 'model.layers.3.self_attn.v_proj.weight')).toEqual({
      name: 'model.layers.3.self_attn.v_proj.weight',
      dtype: 'BF16',
      shape: [4, 8],
      bytes: 64,
      file: 'model.safetensors',
    });
  });

  it('describes a sharded, tied checkpoint', async () => {
    const r = await inspectJson(sharded.dir);
    expect(r.indexFile).toBe('model.safetensors.index.json');
    expect(r.tiedEmbeddings).toBe(true);
    expect(r.tensors.some((t) => t.name === 'lm_head.weight')).toBe(false);
    expect(r.shards.map((s) => s.file)).toEqual(sharded.weightFiles);
    expect(r.shards.reduce((a, s) => a + s.tensors, 0)).toBe(sharded.tensorNames.length);
    expect(r.shards.reduce((a, s) => a + s.bytes, 0)).toBe(sharded.totalBytes);
    expect(r.problems).toEqual([]);
  });

  it('lists problems', async () => {
    const broken = await writeTinyLlama(fresh('broken'), { layers: 3, omit: ['lm_head.weight', 'model.layers.2.mlp.down_proj.weight'] });
    const r = await inspectJson(broken.dir);
    expect(r.problems).toEqual([
      'no lm_head tensor although tie_word_embeddings is false: the output layer is taken to be the input embeddings',
      'layers differ in their tensors: layer 2 lacks mlp.down_proj.weight',
    ]);
    const text = await run('inspect', broken.dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('problems (2)\n  - no lm_head tensor');
  });

  it('resolves a hub id through HF_HOME with --offline', async () => {
    const hfHome = fresh('hf-home');
    const commit = 'e'.repeat(40);
    await cacheHubSnapshot(path.join(hfHome, 'hub'), 'org/tiny', commit, bf16.dir);
    vi.stubEnv('HF_HOME', hfHome);
    vi.stubEnv('HF_HUB_CACHE', '');
    const r = await inspectJson('org/tiny', '--offline');
    expect(r.source).toEqual({ kind: 'hub', repo: 'org/tiny', revision: 'main', commit });
    expect(r.parameters).toBe(bf16.parameterCount);
    const text = await run('inspect', 'org/tiny', '--offline');
    expect(text.stdout).toContain(`hub             org/tiny@main (commit ${commit})`);
    const missing = await run('inspect', 'org/other', '--offline');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^evo: org\/other@main is not in the cache .*looked at .*models--org--other.refs.main/);
  });
});

describe('evo inspect (text)', () => {
  it('abbreviates the middle layers unless --tensors', async () => {
    const short = await run('inspect', bf16.dir);
    expect(short.code).toBe(0);
    const lines = short.stdout.split('\n');
    expect(lines[0]).toBe(`model           ${bf16.dir}`);
    expect(short.stdout).toContain('architecture    LlamaForCausalLM (llama): 4 layers, hidden 8, intermediate 16, heads 2 (kv 1), vocab 12\n');
    expect(short.stdout).toContain(`parameters      ${bf16.parameterCount.toLocaleString('en-US')} in 39 tensors (${formatBytes(bf16.totalBytes)})\n`);
    expect(short.stdout).toContain('tied embeddings no\n');
    expect(short.stdout).toContain('tokenizer       tokenizer.json, tokenizer_config.json, special_tokens_map.json\n');
    expect(short.stdout).toContain('  … 2 more layer(s), 18 tensors\n');
    expect(short.stdout).toContain('problems        none\n');
    const tensorLines = lines.filter((l) => /^ {2}(model|lm_head)/.test(l));
    expect(tensorLines).toHaveLength(39 - 18);
    // Reading order: embeddings first, then layers, final norm, lm_head.
    expect(tensorLines[0]).toMatch(/^ {2}model\.embed_tokens\.weight\s+BF16 {2}\[12, 8\] {2}192 B$/);
    expect(tensorLines[tensorLines.length - 2]).toMatch(/^ {2}model\.norm\.weight/);
    expect(tensorLines[tensorLines.length - 1]).toMatch(/^ {2}lm_head\.weight/);
    expect(short.stdout).not.toContain('model.layers.1.');

    const full = await run('inspect', bf16.dir, '--tensors');
    expect(full.stdout.split('\n').filter((l) => /^ {2}(model|lm_head)/.test(l))).toHaveLength(39);
    expect(full.stdout).not.toContain('more layer(s)');
  });

  it('formats byte sizes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(47_718)).toBe('46.6 KiB');
    expect(formatBytes(16 * 1024 ** 3)).toBe('16.0 GiB');
    expect(formatBytes(300 * 1024 ** 2)).toBe('300 MiB');
  });
});

describe('evo inspect exit codes', () => {
  it('1 with one line on stderr for a bad checkpoint', async () => {
    const missing = path.join(root, 'nothing-here');
    const r = await run('inspect', missing);
    expect(r).toEqual({ code: 1, stdout: '', stderr: `evo: ${missing}: no such file or directory\n` });
    const noConfig = await writeTinyLlama(fresh('no-config'));
    await unlink(path.join(noConfig.dir, 'config.json'));
    const c = await run('inspect', noConfig.dir, '--json');
    expect(c.code).toBe(1);
    expect(c.stdout).toBe('');
    expect(c.stderr).toBe(`evo: ${noConfig.dir}: no config.json (the model's Hugging Face configuration)\n`);
  });

  it('2 for a usage error', async () => {
    expect((await run('inspect')).code).toBe(2);
    expect((await run('inspect', bf16.dir, '--no-such-flag')).code).toBe(2);
  });
});

describe('on the shared mergekit golden inputs', () => {
  itWithShared('inspects inputs/f32/base', async (shared) => {
    const dir = path.join(shared, 'mergekit-golden', 'inputs', 'f32', 'base');
    const r = await inspectJson(dir);
    expect(r).toMatchObject({ architecture: 'LlamaForCausalLM', layers: 4, hiddenSize: 16, vocabSize: 48, parameters: 11920, tiedEmbeddings: false, problems: [] });
    expect(r.dtypes).toEqual([{ dtype: 'F32', tensors: 39, parameters: 11920, bytes: 47680 }]);
    expect(r.tensors.find((t) => t.name === 'lm_head.weight')?.shape).toEqual([48, 16]);
  });
});
