import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/merge/config-issue.js';
import { parseMergeConfig } from '../../src/merge/config.js';
import { PlanError } from '../../src/merge/plan-error.js';
import { resolvePlan } from '../../src/merge/plan.js';
import type { MergePlan, TensorInput, TensorTask } from '../../src/merge/task.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';

/** Planner behaviour on real tiny checkpoints written into a temp dir (no fake loader). */

let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-plan-'));
  const m = (name: string, opts: Parameters<typeof writeTinyLlama>[1]): Promise<unknown> => writeTinyLlama(path.join(dir, name), opts);
  await m('base', { layers: 4, seed: 0 });
  await m('ft1', { layers: 4, seed: 1 });
  await m('ft2', { layers: 4, seed: 2 });
  await m('deep', { layers: 6, seed: 3 });
  await m('tied', { layers: 4, seed: 4, tied: true });
  await m('tied2', { layers: 4, seed: 6, tied: true });
  await m('bigvocab', { layers: 4, seed: 5, vocab: 40 });
  await m('smallvocab', { layers: 4, seed: 7, vocab: 24 });
  await m('wide', { layers: 4, seed: 8, intermediate: 48 });
  await m('bf16', { layers: 4, seed: 9, dtype: 'BF16' });
  await m('holey', { layers: 4, seed: 10, omit: ['model.layers.1.mlp.up_proj.weight'] });
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function plan(yaml: string, warnings: string[] = []): Promise<MergePlan> {
  const configFile = path.join(dir, 'merge.yml');
  const parsed = parseMergeConfig(yaml, configFile);
  return resolvePlan(parsed.config, { configFile, seed: 7, configText: yaml, onWarning: (w) => warnings.push(w) });
}

async function planError(yaml: string): Promise<PlanError | ConfigError> {
  try {
    await plan(yaml);
  } catch (err) {
    if (err instanceof PlanError || err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected the plan to fail');
}

function task(p: MergePlan | { tasks: readonly TensorTask[] }, name: string): TensorTask {
  const t = p.tasks.find((x) => x.output === name);
  if (!t) throw new Error(`no task ${name}`);
  return t;
}

function fileInput(input: TensorInput | undefined): { model: string; tensor: string; shape: readonly number[] } {
  if (input?.kind !== 'file') throw new Error('expected a file input');
  return { model: input.model, tensor: input.tensor, shape: input.shape };
}

describe('frankenmerge (passthrough slices)', () => {
  it('stacks the right layers in the right order and counts them', async () => {
    const p = await plan(`
merge_method: passthrough
slices:
  - sources: [{model: base, layer_range: [0, 2]}]
  - sources: [{model: ft1, layer_range: [1, 4]}]
`);
    expect(p.outputConfig['num_hidden_layers']).toBe(5);
    expect(p.tasks).toHaveLength(1 + 5 * 9 + 2);
    expect(p.tasks[0]?.output).toBe('model.embed_tokens.weight');
    expect(p.tasks.slice(-2).map((t) => t.output)).toEqual(['model.norm.weight', 'lm_head.weight']);
    const source = (out: string): string => {
      const f = fileInput(task(p, out).inputs[0]);
      return `${f.model}:${f.tensor}`;
    };
    expect(source('model.embed_tokens.weight')).toBe('base:model.embed_tokens.weight');
    expect(source('model.layers.1.self_attn.q_proj.weight')).toBe('base:model.layers.1.self_attn.q_proj.weight');
    expect(source('model.layers.2.self_attn.q_proj.weight')).toBe('ft1:model.layers.1.self_attn.q_proj.weight');
    expect(source('model.layers.4.mlp.down_proj.weight')).toBe('ft1:model.layers.3.mlp.down_proj.weight');
    expect(source('model.norm.weight')).toBe('ft1:model.norm.weight');
    expect(source('lm_head.weight')).toBe('ft1:lm_head.weight');
    // Layer outputs appear in layer order.
    const layers = p.tasks.map((t) => /layers\.(\d+)\./.exec(t.output)?.[1]).filter((x) => x !== undefined).map(Number);
    expect(layers).toEqual([...layers].sort((a, b) => a - b));
    expect(p.tokenizerDir).toBe(path.join(dir, 'base'));
    expect(p.tokenizerFiles).toContain('tokenizer.json');
  });

  it('matches per-model filters against the input name and global ones against the output name', async () => {
    const p = await plan(`
merge_method: linear
slices:
  - sources:
      - {model: ft1, layer_range: [1, 2], parameters: {weight: [{filter: layers.1., value: 0.25}, {value: 1}]}}
      - {model: ft2, layer_range: [1, 2], parameters: {weight: 1}}
  - sources:
      - {model: ft1, layer_range: [0, 1], parameters: {weight: 1}}
      - {model: ft2, layer_range: [0, 1], parameters: {weight: 1}}
parameters:
  normalize: [{filter: layers.1., value: false}, {value: true}]
`);
    // Output layer 0 is input layer 1: the per-model filter sees 'layers.1.', the global one does not.
    const l0 = task(p, 'model.layers.0.mlp.up_proj.weight');
    expect(l0.modelParams.map((m) => m['weight'])).toEqual([0.25, 1]);
    expect(l0.params['normalize']).toBe(true);
    const l1 = task(p, 'model.layers.1.mlp.up_proj.weight');
    expect(l1.modelParams.map((m) => m['weight'])).toEqual([1, 1]);
    expect(l1.params['normalize']).toBe(false);
  });

  it('interpolates gradients per slice, with t = 0 for embeddings and the last slice for the head', async () => {
    const p = await plan(`
merge_method: task_arithmetic
base_model: base
slices:
  - sources:
      - {model: base, layer_range: [0, 3]}
      - {model: ft1, layer_range: [0, 3], parameters: {weight: [0, 1]}}
  - sources:
      - {model: base, layer_range: [3, 4]}
      - {model: ft1, layer_range: [3, 4], parameters: {weight: [0.2, 0.6]}}
`);
    const w = (name: string): unknown => task(p, name).modelParams[task(p, name).inputs.findIndex((i) => i.model === 'ft1')]?.['weight'];
    expect(w('model.embed_tokens.weight')).toBe(0);
    expect(w('model.layers.0.mlp.up_proj.weight')).toBe(0);
    expect(w('model.layers.1.mlp.up_proj.weight')).toBe(0.5);
    expect(w('model.layers.2.mlp.up_proj.weight')).toBe(1);
    expect(w('model.layers.3.mlp.up_proj.weight')).toBe(0.6); // one-layer slice: t = 1
    expect(w('model.norm.weight')).toBe(0.2);
    expect(w('lm_head.weight')).toBe(0.2);
  });
});

describe('modules: (one module)', () => {
  it('puts module parameters between the slice and the top level', async () => {
    const p = await plan(`
merge_method: linear
parameters: {weight: 0.1, normalize: false}
modules:
  decoder:
    parameters: {weight: 0.5}
    slices:
      - sources:
          - {model: ft1, layer_range: [0, 4]}
          - {model: ft2, layer_range: [0, 4], parameters: {weight: 0.25}}
        parameters: {weight: [{filter: mlp, value: 0.75}]}
`);
    const w = (name: string): unknown[] => task(p, name).modelParams.map((m) => m['weight']);
    expect(w('model.layers.0.mlp.up_proj.weight')).toEqual([0.75, 0.25]);
    expect(w('model.layers.0.self_attn.q_proj.weight')).toEqual([0.5, 0.25]);
    expect(task(p, 'model.norm.weight').params['normalize']).toBe(false);
  });
});

describe('tied embeddings (§1.5)', () => {
  it('writes no lm_head when no input has one', async () => {
    const p = await plan('merge_method: linear\nmodels: [{model: tied, parameters: {weight: 1}}, {model: tied2, parameters: {weight: 1}}]\n');
    expect(p.tasks.some((t) => t.output === 'lm_head.weight')).toBe(false);
    expect(p.outputConfig['tie_word_embeddings']).toBe(true);
  });

  it('lends a tied model its embeddings as lm_head when another model has one', async () => {
    const p = await plan('merge_method: linear\nmodels: [{model: tied, parameters: {weight: 1}}, {model: ft1, parameters: {weight: 1}}]\n');
    const head = task(p, 'lm_head.weight');
    expect(head.isEmbed).toBe(true);
    expect(head.inputs.map(fileInput).map((f) => `${f.model}:${f.tensor}`)).toEqual(['tied:model.embed_tokens.weight', 'ft1:lm_head.weight']);
  });
});

describe('models, dtypes and shapes', () => {
  it('appends a base_model missing from models: and marks it (weight not required)', async () => {
    const p = await plan('merge_method: ties\nbase_model: base\nmodels: [{model: ft1, parameters: {weight: 0.5, density: 0.5}}]\ndtype: bfloat16\nout_dtype: float16\n');
    const t = task(p, 'model.layers.0.self_attn.q_proj.weight');
    expect(t.inputs.map((i) => i.model)).toEqual(['ft1', 'base']);
    expect(t.baseIndex).toBe(1);
    expect(t.modelParams).toEqual([{ weight: 0.5, density: 0.5 }, { density: 1 }]);
    expect(t.params).toEqual({ int8_mask: false, normalize: true, rescale: false, lambda: 1 });
    expect(t.computeDType).toBe('BF16');
    expect(t.outDType).toBe('F16');
    expect(t.randomKey).toEqual({ seed: 7, tensor: 'model.layers.0.self_attn.q_proj.weight' });
    expect(p.outputConfig['torch_dtype']).toBe('float16');
  });

  it('computes in the stored dtype of the base when no dtype is given', async () => {
    const p = await plan('merge_method: slerp\nbase_model: bf16\nmodels: [{model: ft1}]\nparameters: {t: 0.3}\n');
    const t = task(p, 'model.norm.weight');
    expect(t.inputs.map((i) => i.model)).toEqual(['ft1', 'bf16']);
    expect(t.computeDType).toBe('BF16');
    expect(t.outDType).toBe('BF16');
  });

  it('counts a model listed twice once, with the first entry’s parameters (§0.13)', async () => {
    const warnings: string[] = [];
    const configFile = path.join(dir, 'merge.yml');
    const parsed = parseMergeConfig('merge_method: linear\nparameters: {normalize: false}\nmodels: [{model: ft1, parameters: {weight: 0.1}}, {model: ft1, parameters: {weight: 1.0}}]\n', configFile);
    expect(parsed.warnings.map((w) => w.code)).toEqual(['DUPLICATE_MODEL']);
    const p = await resolvePlan(parsed.config, { configFile, seed: 1, onWarning: (w) => warnings.push(w) });
    const t = task(p, 'model.norm.weight');
    expect(t.inputs).toHaveLength(1);
    expect(t.modelParams).toEqual([{ weight: 0.1 }]);
  });

  it('cuts embeddings to the common submatrix for linear', async () => {
    const warnings: string[] = [];
    const p = await plan('merge_method: linear\nmodels: [{model: ft1, parameters: {weight: 1}}, {model: bigvocab, parameters: {weight: 1}}]\n', warnings);
    expect(task(p, 'model.embed_tokens.weight').outShape).toEqual([32, 16]);
    expect(task(p, 'lm_head.weight').outShape).toEqual([32, 16]);
    expect(task(p, 'model.embed_tokens.weight').inputs.map((i) => fileInput(i).shape)).toEqual([[32, 16], [40, 16]]);
    expect(warnings.filter((w) => w.includes('common submatrix'))).toHaveLength(2);
  });

  it('cuts embeddings to the base shape for task-vector methods, and skips other mismatches', async () => {
    const warnings: string[] = [];
    const p = await plan('merge_method: task_arithmetic\nbase_model: base\nmodels: [{model: bigvocab, parameters: {weight: 1}}, {model: wide, parameters: {weight: 1}}]\n', warnings);
    expect(task(p, 'model.embed_tokens.weight').outShape).toEqual([32, 16]);
    const up = task(p, 'model.layers.0.mlp.up_proj.weight');
    expect(up.inputs.map((i) => i.model)).toEqual(['bigvocab', 'base']);
    expect(up.baseIndex).toBe(1);
    expect(up.modelParams).toEqual([{ weight: 1, density: 1 }, { density: 1 }]);
    expect(task(p, 'model.layers.0.self_attn.q_proj.weight').inputs).toHaveLength(3);
    expect(warnings.some((w) => w.includes('skipping wide'))).toBe(true);
  });

  it('gives each stage its own random keys and embeds stage tasks in the final graph', async () => {
    const p = await plan(`
name: lower
merge_method: dare_ties
base_model: base
slices:
  - sources:
      - {model: base, layer_range: [0, 2]}
      - {model: ft1, layer_range: [0, 2], parameters: {weight: 0.5, density: 0.5}}
---
name: upper
merge_method: slerp
base_model: ft1
slices:
  - sources: [{model: ft1, layer_range: [2, 4]}, {model: ft2, layer_range: [2, 4]}]
parameters: {t: 0.5}
---
merge_method: passthrough
slices:
  - sources: [{model: lower, layer_range: [0, 2]}]
  - sources: [{model: upper, layer_range: [0, 2]}]
`);
    expect(p.stages.map((s) => [s.name, s.tasks.length, s.outputConfig['num_hidden_layers']])).toEqual([
      ['lower', 21, 2],
      ['upper', 21, 2],
    ]);
    expect(p.outputConfig['num_hidden_layers']).toBe(4);
    const l3 = task(p, 'model.layers.3.self_attn.v_proj.weight');
    const input = l3.inputs[0];
    if (input?.kind !== 'stage') throw new Error('expected a stage input');
    expect(input.model).toBe('upper');
    expect(input.task.output).toBe('model.layers.1.self_attn.v_proj.weight');
    expect(input.task.inputs.map(fileInput).map((f) => f.tensor)).toEqual(['model.layers.3.self_attn.v_proj.weight', 'model.layers.3.self_attn.v_proj.weight']);
    const embedIn = task(p, 'model.embed_tokens.weight').inputs[0];
    expect(embedIn?.kind === 'stage' ? embedIn.task.randomKey : undefined).toEqual({ seed: 7, tensor: 'lower/model.embed_tokens.weight' });
    // The same object the stage lists: materialize can compute it once and share it.
    const lowerLayer0 = p.stages[0]?.tasks.find((t) => t.output === 'model.layers.0.mlp.up_proj.weight');
    const finalIn = task(p, 'model.layers.0.mlp.up_proj.weight').inputs[0];
    expect(finalIn?.kind === 'stage' ? finalIn.task : undefined).toBe(lowerLayer0);
    expect(p.tokenizerDir).toBe(path.join(dir, 'base'));
  });
});

describe('bad inputs fail before anything is written, with named errors', () => {
  it('names a missing model directory', async () => {
    let err: unknown;
    try {
      await plan('merge_method: linear\nmodels: [{model: ./nope, parameters: {weight: 1}}, {model: ./gone, parameters: {weight: 1}}]\n');
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('NOT_FOUND');
    expect(String((err as Error).message)).toMatch(/'\.\/nope'[\s\S]*'\.\/gone'/);
  });

  it.each([
    ['TENSOR_NOT_FOUND', /holey.*model\.layers\.1\.mlp\.up_proj\.weight/, 'merge_method: linear\nmodels: [{model: ft1, parameters: {weight: 1}}, {model: holey, parameters: {weight: 1}}]\n'],
    ['SHAPE_MISMATCH', /model\.layers\.0\.mlp\.up_proj\.weight: linear needs equal shapes/, 'merge_method: linear\nmodels: [{model: ft1, parameters: {weight: 1}}, {model: wide, parameters: {weight: 1}}]\n'],
    ['SHAPE_MISMATCH', /smallvocab smaller than the base/, 'merge_method: ties\nbase_model: base\nmodels: [{model: smallvocab, parameters: {weight: 1}}]\n'],
    // easy_define methods never rectify embeddings (semantics §1.4): a vocab mismatch is an error.
    ['SHAPE_MISMATCH', /model\.embed_tokens\.weight: sce needs equal shapes/, 'merge_method: sce\nbase_model: base\nmodels: [{model: smallvocab}]\n'],
    ['SHAPE_MISMATCH', /model\.embed_tokens\.weight: nearswap needs equal shapes/, 'merge_method: nearswap\nbase_model: base\nmodels: [{model: smallvocab}]\nparameters: {t: 0.01}\n'],
    ['LAYER_RANGE', /slices\[0\]\.sources\[1\]\.layer_range \[2, 6\] is outside model .*ft1.* 4 layers/, 'merge_method: linear\nslices: [{sources: [{model: deep, layer_range: [2, 6], parameters: {weight: 1}}, {model: ft1, layer_range: [2, 6], parameters: {weight: 1}}]}]\n'],
    ['SLICE_LENGTHS', /deep: 6 layers/, 'merge_method: linear\nmodels: [{model: deep, parameters: {weight: 1}}, {model: ft1, parameters: {weight: 1}}]\n'],
    ['MISSING_PARAMETER', /^.*Missing required parameter weight for ft2\.model\.layers\.0\.mlp\.up_proj\.weight$/m, 'merge_method: linear\nmodels: [{model: ft1, parameters: {weight: 1}}, {model: ft2, parameters: {weight: [{filter: self_attn, value: 1}]}}]\n'],
    ['MISSING_PARAMETER', /Missing required parameter t for model\.norm\.weight/, 'merge_method: slerp\nbase_model: base\nmodels: [{model: ft1}]\nparameters: {t: [{filter: layers, value: 0.5}]}\n'],
    ['DENSITY_TOO_SMALL', /density 0\.05 keeps int\(0\.05·16\) = 0 elements of model\.layers\.0\.input_layernorm\.weight for ft1/, 'merge_method: ties\nbase_model: base\nmodels: [{model: ft1, parameters: {weight: 1, density: 0.05}}]\n'],
    ['DELLA_WINDOW', /density 0\.1, epsilon 0\.15 for ft1\.model\.embed_tokens\.weight/, 'merge_method: della\nbase_model: base\nmodels: [{model: ft1, parameters: {weight: 1, density: 0.1}}]\n'],
    ['WEIGHTS_SUM_ZERO', /weights of model\.embed_tokens\.weight sum to 0/, 'merge_method: linear\nmodels: [{model: ft1, parameters: {weight: 0.5}}, {model: ft2, parameters: {weight: -0.5}}]\n'],
    ['WEIGHTS_SUM_ZERO', /multislerp: the weights of model\.\S+ sum to 0 with normalize_weights: true/, 'merge_method: multislerp\nbase_model: base\nmodels: [{model: ft1, parameters: {weight: 0.5}}, {model: ft2, parameters: {weight: -0.5}}]\n'],
    ['MISSING_PARAMETER', /Missing required parameter t for model\./, 'merge_method: nearswap\nbase_model: base\nmodels: [{model: ft1}]\n'],
    ['MISSING_PARAMETER', /Missing required parameter weight for ft2\.model\./, 'merge_method: multislerp\nmodels: [{model: ft1, parameters: {weight: 1}}, {model: ft2}]\n'],
  ])('%s', async (code, pattern, yaml) => {
    const err = await planError(yaml);
    expect(err).toBeInstanceOf(PlanError);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(pattern);
  });

  it('rejects config errors (slerp without a base) before opening any model', async () => {
    const err = await planError('merge_method: slerp\nmodels: [{model: ./nope}, {model: ./gone}]\nparameters: {t: 0.5}\n');
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('BASE_MODEL');
  });

  it('permutes embeddings into the tokenizer_source vocabulary when vocabularies differ', async () => {
    // base: 32 tokens <unk> <s> </s> tok3..tok31; bigvocab: the same plus tok32..tok39 (40 rows).
    const p = await plan('merge_method: linear\ntokenizer_source: base\nbase_model: base\nmodels: [{model: base, parameters: {weight: 1}}, {model: bigvocab, parameters: {weight: 1}}]\n');
    const embed = p.tasks.find((t) => t.output === 'model.embed_tokens.weight');
    expect(embed?.outShape).toEqual([32, 16]);
    expect(embed?.inputs.map((i) => i.kind)).toEqual(['permuted', 'permuted']);
    const big = embed?.inputs[1];
    if (big?.kind !== 'permuted') throw new Error('expected a permuted input');
    // Every base token is bigvocab's own row at the same id: rows 0..31 of its 40.
    expect([...big.rowOffsets]).toEqual(Array.from({ length: 33 }, (_x, r) => r));
    expect([...big.pairs]).toEqual(Array.from({ length: 32 }, (_x, r) => [1, r]).flat());
    expect(big.stats).toEqual({ own: 32, borrowed: 0, averaged: 0, zero: 0, overridden: 0, padded: 0 });
    expect(p.outputConfig['vocab_size']).toBe(32);
  });

  it('accepts tokenizer_source when every model shares the tokenizer', async () => {
    const p = await plan('merge_method: linear\ntokenizer_source: ft1\nmodels: [{model: ft1, parameters: {weight: 1}}, {model: ft2, parameters: {weight: 1}}]\n');
    expect(p.tokenizerDir).toBe(path.join(dir, 'ft1'));
  });

  it('writes nothing while planning', async () => {
    await writeFile(path.join(dir, 'marker'), '');
    const { readdir } = await import('node:fs/promises');
    const before = (await readdir(dir)).sort();
    await planError('merge_method: linear\nmodels: [{model: ft1, parameters: {weight: 1}}, {model: wide, parameters: {weight: 1}}]\n');
    expect((await readdir(dir)).sort()).toEqual(before);
  });
});
