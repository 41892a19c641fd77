import { copyFile, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvoError } from '../../src/errors.js';
import { openCheckpoint, parameterCount, type ModelCheckpoint } from '../../src/tensors/checkpoint.js';
import { CheckpointError } from '../../src/tensors/checkpoint-error.js';
import { decodeToF32, encodeFromF32 } from '../../src/tensors/dtype.js';
import { SafetensorsError } from '../../src/tensors/safetensors.js';
import { writeSafetensors } from '../../src/tensors/safetensors-writer.js';
import { describeWithShared } from '../shared-dir.js';
import { writeTinyLlama, type TinyLlamaInfo } from '../fixtures/tiny-llama.js';

let root: string;
let counter = 0;
/** A fresh folder under the suite's temp root. */
function fresh(name: string): string {
  return path.join(root, `${++counter}-${name}`);
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'evo-checkpoint-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function readValues(checkpoint: ModelCheckpoint, name: string): Promise<Float32Array> {
  const t = checkpoint.tensors.get(name);
  if (t === undefined) throw new Error(`no tensor ${name}`);
  const fh = await open(t.file, 'r');
  try {
    const bytes = new Uint8Array(t.byteLength);
    await fh.read(bytes, 0, t.byteLength, t.byteOffset);
    return decodeToF32(t.dtype, bytes);
  } finally {
    await fh.close();
  }
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<CheckpointError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).code).toBe(code);
    // one line, naming a file
    expect((err as Error).message).not.toContain('\n');
    expect((err as Error).message).toContain(root);
    return err as CheckpointError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

async function editJson(file: string, edit: (json: Record<string, unknown>) => void): Promise<void> {
  const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  await writeFile(file, JSON.stringify(json));
}

describe('openCheckpoint on a single-file directory', () => {
  let info: TinyLlamaInfo;
  let ckpt: ModelCheckpoint;
  beforeAll(async () => {
    info = await writeTinyLlama(fresh('single'), { layers: 3, hidden: 8, intermediate: 12, vocab: 10, heads: 2, kvHeads: 1, dtype: 'BF16', seed: 7 });
    ckpt = await openCheckpoint(info.dir);
  });

  it('reads config, files and tensor table', () => {
    expect(ckpt.dir).toBe(info.dir);
    expect(ckpt.ref).toBe(info.dir);
    expect(ckpt.source).toEqual({ kind: 'local' });
    expect(ckpt.config).toMatchObject({ architecture: 'LlamaForCausalLM', modelType: 'llama', numHiddenLayers: 3, hiddenSize: 8, numKeyValueHeads: 1, vocabSize: 10 });
    expect(ckpt.shardFiles).toEqual([path.join(info.dir, 'model.safetensors')]);
    expect(ckpt.indexFile).toBeUndefined();
    expect(ckpt.tokenizerFiles).toEqual(['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']);
    expect(ckpt.generationConfigFile).toBe('generation_config.json');
    expect(ckpt.tiedEmbeddings).toBe(false);
    expect(ckpt.problems).toEqual([]);
    // 1 embedding + 3 × 9 layer tensors + norm + lm_head
    expect(ckpt.tensors.size).toBe(30);
    expect(new Set(ckpt.tensors.keys())).toEqual(new Set(info.tensorNames));
  });

  it('orders tensors with layer numbers compared as numbers', async () => {
    const big = await openCheckpoint((await writeTinyLlama(fresh('eleven'), { layers: 11, hidden: 4, intermediate: 4, vocab: 4, heads: 1 })).dir);
    const layerOrder = [...big.tensors.keys()].filter((n) => n.endsWith('input_layernorm.weight')).map((n) => n.split('.')[2]);
    expect(layerOrder).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
  });

  it('locates every tensor by absolute byte offset', async () => {
    for (const [name, t] of ckpt.tensors) {
      expect(t.dtype).toBe('BF16');
      expect(t.shape).toEqual(info.shapes.get(name));
      expect(t.byteLength).toBe(t.shape.reduce((a, b) => a * b, 1) * 2);
      expect(await readValues(ckpt, name)).toEqual(info.values.get(name));
    }
    expect(ckpt.tensors.get('model.layers.1.self_attn.k_proj.weight')?.shape).toEqual([4, 8]);
  });

  it('counts parameters', () => {
    expect(parameterCount(ckpt)).toBe(info.parameterCount);
    expect(parameterCount(ckpt)).toBe(2 * 10 * 8 + 3 * (8 + 8 * 8 + 4 * 8 * 2 + 8 * 8 + 8 + 3 * 12 * 8) + 8);
  });

  it('resolves relative paths against baseDir and accepts a lone .safetensors file', async () => {
    const rel = await openCheckpoint(path.basename(info.dir), { baseDir: path.dirname(info.dir) });
    expect(rel.dir).toBe(info.dir);
    expect(rel.ref).toBe(path.basename(info.dir));
    const file = await openCheckpoint(path.join(info.dir, 'model.safetensors'));
    expect(file.config.numHiddenLayers).toBe(3);
    expect(file.config.file).toBe(path.join(info.dir, 'config.json'));
    expect(file.tensors.size).toBe(30);
    expect(file.problems).toEqual([]);
  });

  it('infers the layer count for a lone file without config.json', async () => {
    const dir = fresh('no-config');
    await mkdir(dir);
    await copyFile(path.join(info.dir, 'model.safetensors'), path.join(dir, 'weights.safetensors'));
    const file = await openCheckpoint(path.join(dir, 'weights.safetensors'));
    expect(file.config.numHiddenLayers).toBe(3);
    expect(file.config.file).toBeUndefined();
    expect(file.tokenizerFiles).toEqual([]);
    expect(file.problems).toEqual(['no config.json beside weights.safetensors: layer count 3 inferred from tensor names']);
  });
});

describe('sharded checkpoints', () => {
  it('reads every shard through the index', async () => {
    const info = await writeTinyLlama(fresh('sharded'), { layers: 4, dtype: 'F32', shardBytes: 4096, seed: 3 });
    expect(info.weightFiles.length).toBeGreaterThan(2);
    const ckpt = await openCheckpoint(info.dir);
    expect(ckpt.indexFile).toBe(path.join(info.dir, 'model.safetensors.index.json'));
    expect(ckpt.shardFiles).toEqual(info.weightFiles.map((f) => path.join(info.dir, f)));
    const index = JSON.parse(await readFile(path.join(info.dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    for (const [name, t] of ckpt.tensors) {
      expect(t.file).toBe(path.join(info.dir, index.weight_map[name] ?? '?'));
      expect(await readValues(ckpt, name)).toEqual(info.values.get(name));
    }
    expect(ckpt.problems).toEqual([]);
  });

  it('reports tensors missing from the index and a wrong total_size', async () => {
    const info = await writeTinyLlama(fresh('unlisted'), { layers: 2, shardBytes: 4096 });
    await editJson(path.join(info.dir, 'model.safetensors.index.json'), (json) => {
      const map = json.weight_map as Record<string, string>;
      delete map['model.norm.weight'];
      (json.metadata as Record<string, unknown>).total_size = 5;
    });
    const ckpt = await openCheckpoint(info.dir);
    expect(ckpt.tensors.has('model.norm.weight')).toBe(true);
    expect(ckpt.problems).toEqual([
      '1 tensor(s) in the shards are not in model.safetensors.index.json: model.norm.weight',
      `model.safetensors.index.json metadata.total_size is 5 but the tensors hold ${info.totalBytes} bytes`,
    ]);
  });

  it('reads several safetensors files without an index', async () => {
    const info = await writeTinyLlama(fresh('no-index'), { layers: 2, shardBytes: 4096 });
    await unlink(path.join(info.dir, 'model.safetensors.index.json'));
    const ckpt = await openCheckpoint(info.dir);
    expect(ckpt.tensors.size).toBe(info.tensorNames.length);
    expect(ckpt.indexFile).toBeUndefined();
    expect(ckpt.problems).toEqual([`${info.weightFiles.length} safetensors files and no model.safetensors.index.json; read them all`]);
  });
});

describe('tied embeddings', () => {
  it('tie_word_embeddings true and no lm_head', async () => {
    const info = await writeTinyLlama(fresh('tied'), { tied: true });
    const ckpt = await openCheckpoint(info.dir);
    expect(ckpt.config.tieWordEmbeddings).toBe(true);
    expect(ckpt.tensors.has('lm_head.weight')).toBe(false);
    expect(ckpt.tiedEmbeddings).toBe(true);
    expect(ckpt.problems).toEqual([]);
  });

  it('lm_head missing although tie_word_embeddings is false', async () => {
    const info = await writeTinyLlama(fresh('headless'), { tied: false, omit: ['lm_head.weight'] });
    const ckpt = await openCheckpoint(info.dir);
    expect(ckpt.config.tieWordEmbeddings).toBe(false);
    expect(ckpt.tiedEmbeddings).toBe(true);
    expect(ckpt.problems).toEqual(['no lm_head tensor although tie_word_embeddings is false: the output layer is taken to be the input embeddings']);
  });

  it('says when false is only the model type default', async () => {
    const info = await writeTinyLlama(fresh('headless-default'), { omit: ['lm_head.weight'] });
    await editJson(path.join(info.dir, 'config.json'), (json) => {
      delete json.tie_word_embeddings;
    });
    const ckpt = await openCheckpoint(info.dir);
    expect(ckpt.problems).toEqual([
      'no lm_head tensor although tie_word_embeddings defaults to false for model_type llama: the output layer is taken to be the input embeddings',
    ]);
  });

  it('tie flag true with an lm_head stored anyway', async () => {
    const info = await writeTinyLlama(fresh('tied-with-head'));
    await editJson(path.join(info.dir, 'config.json'), (json) => {
      json.tie_word_embeddings = true;
    });
    const ckpt = await openCheckpoint(info.dir);
    expect(ckpt.tensors.has('lm_head.weight')).toBe(true);
    expect(ckpt.tiedEmbeddings).toBe(true);
  });
});

describe('problems', () => {
  it('layers missing from the numbering and beyond num_hidden_layers', async () => {
    const info = await writeTinyLlama(fresh('layers'), { layers: 3 });
    await editJson(path.join(info.dir, 'config.json'), (json) => {
      json.num_hidden_layers = 5;
    });
    expect((await openCheckpoint(info.dir)).problems).toEqual(['layer(s) 3, 4 of num_hidden_layers 5 have no tensors']);
    await editJson(path.join(info.dir, 'config.json'), (json) => {
      json.num_hidden_layers = 2;
    });
    expect((await openCheckpoint(info.dir)).problems).toEqual(['tensors for layer(s) 2 beyond num_hidden_layers 2']);
  });

  it('a layer lacking a tensor the others have', async () => {
    const info = await writeTinyLlama(fresh('uneven'), { layers: 3, omit: ['model.layers.1.mlp.up_proj.weight'] });
    expect((await openCheckpoint(info.dir)).problems).toEqual(['layers differ in their tensors: layer 1 lacks mlp.up_proj.weight']);
  });

  it('tensors that disagree with the config dimensions', async () => {
    const info = await writeTinyLlama(fresh('dims'), { layers: 1, hidden: 8, intermediate: 12, vocab: 10 });
    await editJson(path.join(info.dir, 'config.json'), (json) => {
      json.intermediate_size = 16;
      json.vocab_size = 11;
    });
    expect((await openCheckpoint(info.dir)).problems).toEqual([
      'lm_head.weight is [10, 8], config implies [11, 8] (vocab_size × hidden_size)',
      'model.embed_tokens.weight is [10, 8], config implies [11, 8] (vocab_size × hidden_size)',
      'model.layers.0.mlp.down_proj.weight is [8, 12], config implies [8, 16] (hidden_size × intermediate_size)',
      '… and 2 more tensors whose shape disagrees with config.json',
    ]);
  });

  it('mixed dtypes and a torch_dtype that differs from the stored one', async () => {
    const info = await writeTinyLlama(fresh('mixed'), { layers: 1, dtype: 'F32' });
    await editJson(path.join(info.dir, 'config.json'), (json) => {
      json.torch_dtype = 'bfloat16';
    });
    expect((await openCheckpoint(info.dir)).problems).toEqual(['config torch_dtype is bfloat16 but the tensors are stored as F32']);
    // Rewrite the norms as BF16.
    const tensors = info.tensorNames.map((name) => {
      const dtype = name.includes('norm') ? ('BF16' as const) : ('F32' as const);
      return { name, dtype, shape: info.shapes.get(name) ?? [], data: encodeFromF32(dtype, info.values.get(name) ?? new Float32Array()) };
    });
    await writeSafetensors(path.join(info.dir, 'model.safetensors'), tensors);
    expect((await openCheckpoint(info.dir)).problems).toEqual(['mixed dtypes: 9 F32, 3 BF16']);
  });

  it('the qwen2 layout with biases has no problems', async () => {
    const info = await writeTinyLlama(fresh('qwen2'), { architecture: 'qwen2', layers: 2, heads: 4, kvHeads: 2 });
    const ckpt = await openCheckpoint(info.dir);
    expect(ckpt.config.architecture).toBe('Qwen2ForCausalLM');
    expect(ckpt.tensors.get('model.layers.0.self_attn.k_proj.bias')?.shape).toEqual([8]);
    expect(ckpt.problems).toEqual([]);
  });
});

describe('errors', () => {
  it('NOT_FOUND for a missing path', async () => {
    const missing = path.join(root, 'does-not-exist');
    const err = await expectCode(openCheckpoint(missing), 'NOT_FOUND');
    expect(err.message).toBe(`${missing}: no such file or directory`);
    await expectCode(openCheckpoint('./nope', { baseDir: root }), 'NOT_FOUND');
  });

  it('CONFIG_MISSING when config.json is absent', async () => {
    const info = await writeTinyLlama(fresh('no-config-dir'));
    await unlink(path.join(info.dir, 'config.json'));
    const err = await expectCode(openCheckpoint(info.dir), 'CONFIG_MISSING');
    expect(err.file).toBe(info.dir);
  });

  it('CONFIG_INVALID for broken JSON or a non-object', async () => {
    const info = await writeTinyLlama(fresh('bad-json'));
    await writeFile(path.join(info.dir, 'config.json'), '{"num_hidden_layers": 2,');
    const err = await expectCode(openCheckpoint(info.dir), 'CONFIG_INVALID');
    expect(err.file).toBe(path.join(info.dir, 'config.json'));
    await writeFile(path.join(info.dir, 'config.json'), '[2]');
    await expectCode(openCheckpoint(info.dir), 'CONFIG_INVALID');
  });

  it('MISSING_LAYERS_KEY without num_hidden_layers', async () => {
    const info = await writeTinyLlama(fresh('no-layers'));
    await editJson(path.join(info.dir, 'config.json'), (json) => {
      delete json.num_hidden_layers;
    });
    const err = await expectCode(openCheckpoint(info.dir), 'MISSING_LAYERS_KEY');
    expect(err.message).toBe(`${path.join(info.dir, 'config.json')}: no num_hidden_layers (the number of decoder layers)`);
  });

  it('NO_WEIGHTS, UNSUPPORTED_WEIGHTS and ADAPTER_NOT_SUPPORTED', async () => {
    const info = await writeTinyLlama(fresh('weights'));
    await unlink(path.join(info.dir, 'model.safetensors'));
    await expectCode(openCheckpoint(info.dir), 'NO_WEIGHTS');
    await writeFile(path.join(info.dir, 'pytorch_model.bin'), 'not really');
    const err = await expectCode(openCheckpoint(info.dir), 'UNSUPPORTED_WEIGHTS');
    expect(err.message).toContain('only safetensors weights are supported, found pytorch_model.bin');
    await expectCode(openCheckpoint(path.join(info.dir, 'pytorch_model.bin')), 'UNSUPPORTED_WEIGHTS');
    await unlink(path.join(info.dir, 'pytorch_model.bin'));
    await writeFile(path.join(info.dir, 'adapter_config.json'), '{}');
    await writeFile(path.join(info.dir, 'adapter_model.safetensors'), 'x');
    await expectCode(openCheckpoint(info.dir), 'ADAPTER_NOT_SUPPORTED');
  });

  it('SHARD_MISSING when the index names an absent shard', async () => {
    const info = await writeTinyLlama(fresh('shard-missing'), { shardBytes: 4096 });
    const gone = info.weightFiles[1] ?? '';
    await unlink(path.join(info.dir, gone));
    const err = await expectCode(openCheckpoint(info.dir), 'SHARD_MISSING');
    expect(err.file).toBe(path.join(info.dir, 'model.safetensors.index.json'));
    expect(err.message).toContain(`names shard ${gone}`);
  });

  it('SHARD_MISSING even when the index lacks total_size', async () => {
    const info = await writeTinyLlama(fresh('shard-missing-no-size'), { shardBytes: 4096 });
    await editJson(path.join(info.dir, 'model.safetensors.index.json'), (json) => {
      delete json.metadata;
    });
    await unlink(path.join(info.dir, info.weightFiles[0] ?? ''));
    await expectCode(openCheckpoint(info.dir), 'SHARD_MISSING');
  });

  it('TENSOR_IN_TWO_SHARDS, with and without an index', async () => {
    const info = await writeTinyLlama(fresh('two-shards'), { shardBytes: 4096 });
    const last = info.weightFiles[info.weightFiles.length - 1] ?? '';
    // The last shard also gets a copy of the embedding, which the index places in the first shard.
    const extra = { name: 'model.embed_tokens.weight', dtype: 'F32' as const, shape: info.shapes.get('model.embed_tokens.weight') ?? [], data: encodeFromF32('F32', info.values.get('model.embed_tokens.weight') ?? new Float32Array()) };
    const lastTensors = Object.entries(JSON.parse(await readFile(path.join(info.dir, 'model.safetensors.index.json'), 'utf8')).weight_map as Record<string, string>)
      .filter(([, f]) => f === last)
      .map(([name]) => ({ name, dtype: 'F32' as const, shape: info.shapes.get(name) ?? [], data: encodeFromF32('F32', info.values.get(name) ?? new Float32Array()) }));
    await writeSafetensors(path.join(info.dir, last), [...lastTensors, extra]);
    const err = await expectCode(openCheckpoint(info.dir), 'TENSOR_IN_TWO_SHARDS');
    expect(err.tensor).toBe('model.embed_tokens.weight');
    await unlink(path.join(info.dir, 'model.safetensors.index.json'));
    await expectCode(openCheckpoint(info.dir), 'TENSOR_IN_TWO_SHARDS');
  });

  it('INDEX_MISMATCH when the index maps a tensor to a shard that lacks it', async () => {
    const info = await writeTinyLlama(fresh('mismatch'), { shardBytes: 4096 });
    const indexFile = path.join(info.dir, 'model.safetensors.index.json');
    const original = await readFile(indexFile, 'utf8');
    await editJson(indexFile, (json) => {
      (json.weight_map as Record<string, string>)['model.norm.weight'] = info.weightFiles[0] ?? '';
    });
    const err = await expectCode(openCheckpoint(info.dir), 'INDEX_MISMATCH');
    expect(err.tensor).toBe('model.norm.weight');
    expect(err.message).toContain(`maps tensor model.norm.weight to ${info.weightFiles[0]}, but it is in `);
    await writeFile(indexFile, original);
    await editJson(indexFile, (json) => {
      (json.weight_map as Record<string, string>)['model.ghost.weight'] = info.weightFiles[0] ?? '';
    });
    const ghost = await expectCode(openCheckpoint(info.dir), 'INDEX_MISMATCH');
    expect(ghost.message).toContain(`maps tensor model.ghost.weight to ${info.weightFiles[0]}, which does not hold it`);
  });

  it('a corrupt safetensors file is reported by the safetensors reader', async () => {
    const info = await writeTinyLlama(fresh('corrupt'));
    await writeFile(path.join(info.dir, 'model.safetensors'), new Uint8Array([1, 2, 3]));
    await expect(openCheckpoint(info.dir)).rejects.toBeInstanceOf(SafetensorsError);
    await expect(openCheckpoint(info.dir)).rejects.toBeInstanceOf(EvoError);
  });
});

describe('fixture: fine-tunes as base + delta', () => {
  it('perturbFrom a seed or a directory gives base + scale × init-scale × noise', async () => {
    const dims = { layers: 2, hidden: 8, intermediate: 8, vocab: 8, heads: 2 } as const;
    const base = await writeTinyLlama(fresh('base'), { ...dims, seed: 1 });
    const bySeed = await writeTinyLlama(fresh('ft-seed'), { ...dims, seed: 2, perturbFrom: { seed: 1, scale: 0.05 } });
    const byDir = await writeTinyLlama(fresh('ft-dir'), { ...dims, seed: 2, perturbFrom: { dir: base.dir, scale: 0.05 } });
    const name = 'model.layers.1.mlp.up_proj.weight';
    const b = base.values.get(name) ?? new Float32Array();
    const s = bySeed.values.get(name) ?? new Float32Array();
    expect(byDir.values.get(name)).toEqual(s); // F32 base read back equals the regenerated base
    let maxDelta = 0;
    for (let i = 0; i < b.length; i++) maxDelta = Math.max(maxDelta, Math.abs((s[i] ?? 0) - (b[i] ?? 0)));
    // |delta| ≤ 0.05 / √fan_in = 0.05 / √8, and not zero
    expect(maxDelta).toBeGreaterThan(0);
    expect(maxDelta).toBeLessThanOrEqual(0.05 / Math.sqrt(8) + 1e-7);
  });

  it('is deterministic and independent of the layer count', async () => {
    const a = await writeTinyLlama(fresh('det-a'), { layers: 2, seed: 9 });
    const b = await writeTinyLlama(fresh('det-b'), { layers: 4, seed: 9 });
    expect(await readFile(path.join(a.dir, 'config.json'), 'utf8')).toContain('"num_hidden_layers": 2');
    expect(b.values.get('model.layers.1.self_attn.q_proj.weight')).toEqual(a.values.get('model.layers.1.self_attn.q_proj.weight'));
    const again = await writeTinyLlama(fresh('det-a2'), { layers: 2, seed: 9 });
    expect(await readFile(path.join(again.dir, 'model.safetensors'))).toEqual(await readFile(path.join(a.dir, 'model.safetensors')));
  });
});

describeWithShared('mergekit golden inputs', (shared) => {
  const inputs = path.join(shared, 'mergekit-golden', 'inputs');
  it.each(['f32', 'bf16'])('%s models open with 39 tensors and 11,920 parameters', async (kind) => {
    for (const model of ['base', 'ft1', 'ft2', 'ft3']) {
      const ckpt = await openCheckpoint(path.join(inputs, kind, model));
      expect(ckpt.tensors.size).toBe(39);
      expect(parameterCount(ckpt)).toBe(11920);
      expect(ckpt.config.numHiddenLayers).toBe(4);
      expect(ckpt.tiedEmbeddings).toBe(false);
      expect(new Set([...ckpt.tensors.values()].map((t) => t.dtype))).toEqual(new Set([kind === 'f32' ? 'F32' : 'BF16']));
    }
  });
});
