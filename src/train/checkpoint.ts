/**
 * Trained models in and out as Hugging Face Llama directories: config.json with transformers'
 * keys and model.safetensors (f32, f16 or bf16), both written atomically. Reading goes through the
 * project's checkpoint reader, so any dtype and sharding it knows loads into f32.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../tensors/atomic-file.js';
import { openCheckpoint, readCheckpointTensorF32 } from '../tensors/checkpoint.js';
import { encodeFromF32 } from '../tensors/dtype.js';
import { writeSafetensors } from '../tensors/safetensors-writer.js';
import { type LlamaTrainConfig, type LlamaWeights, checkTrainConfig, checkWeights, headDimOf, llamaWeightShapes } from './config.js';

const DTYPES = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;

/** transformers' LlamaConfig keys for `c`. */
export function llamaConfigJson(c: LlamaTrainConfig, dtype: keyof typeof DTYPES = 'f32'): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: headDimOf(c),
    vocab_size: c.vocabSize,
    hidden_act: 'silu',
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.rmsEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tieEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    torch_dtype: { f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[dtype],
    attention_bias: false,
    mlp_bias: false,
    pretraining_tp: 1,
  };
}

export async function saveLlamaCheckpoint(dir: string, config: LlamaTrainConfig, weights: LlamaWeights, options: { dtype?: keyof typeof DTYPES } = {}): Promise<void> {
  const dtype = options.dtype ?? 'f32';
  checkTrainConfig(config, dir);
  checkWeights(config, weights, dir);
  await mkdir(dir, { recursive: true });
  const tensors = [...llamaWeightShapes(config)].map(([name, [rows, cols]]) => {
    const values = weights.get(name) ?? new Float32Array(0);
    return { name, dtype: DTYPES[dtype], shape: rows === 1 && name.endsWith('norm.weight') ? [cols] : [rows, cols], data: encodeFromF32(DTYPES[dtype], values) };
  });
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFileAtomic(path.join(dir, 'config.json'), `${JSON.stringify(llamaConfigJson(config, dtype), null, 2)}\n`);
}

function numberKey(raw: Readonly<Record<string, unknown>>, key: string, file: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new UsageError(`${file}: ${key} must be a number`);
  return v;
}

export async function loadLlamaCheckpoint(dir: string): Promise<{ config: LlamaTrainConfig; weights: Map<string, Float32Array> }> {
  const ckpt = await openCheckpoint(dir);
  const raw = ckpt.config.raw;
  const file = ckpt.config.file ?? path.join(dir, 'config.json');
  if (ckpt.config.modelType !== 'llama') throw new UsageError(`${file}: model_type '${ckpt.config.modelType}', only llama can be trained`);
  const hiddenSize = numberKey(raw, 'hidden_size', file);
  const numHeads = numberKey(raw, 'num_attention_heads', file);
  const headDim = raw.head_dim === undefined || raw.head_dim === null ? hiddenSize / numHeads : numberKey(raw, 'head_dim', file);
  const embed = ckpt.tensors.get('model.embed_tokens.weight');
  if (embed === undefined) throw new UsageError(`${dir}: no tensor model.embed_tokens.weight`);
  const config: LlamaTrainConfig = {
    vocabSize: embed.shape[0] ?? 0,
    hiddenSize,
    intermediateSize: numberKey(raw, 'intermediate_size', file),
    numLayers: numberKey(raw, 'num_hidden_layers', file),
    numHeads,
    numKvHeads: numberKey(raw, 'num_key_value_heads', file, numHeads),
    maxSeqLen: numberKey(raw, 'max_position_embeddings', file),
    rmsEps: numberKey(raw, 'rms_norm_eps', file),
    ropeTheta: numberKey(raw, 'rope_theta', file, 10000),
    tieEmbeddings: ckpt.tiedEmbeddings,
    bosTokenId: numberKey(raw, 'bos_token_id', file),
    eosTokenId: numberKey(raw, 'eos_token_id', file),
    ...(headDim === hiddenSize / numHeads ? {} : { headDim }),
  };
  checkTrainConfig(config, file);
  const weights = new Map<string, Float32Array>();
  for (const name of llamaWeightShapes(config).keys()) {
    const t = ckpt.tensors.get(name);
    if (t === undefined) throw new UsageError(`${dir}: missing tensor ${name}`);
    weights.set(name, await readCheckpointTensorF32(t));
  }
  checkWeights(config, weights, dir);
  return { config, weights };
}
