/**
 * The shape of a trainable Llama (transformers' LlamaForCausalLM) and the names and shapes of its
 * weights, in Hugging Face layout. One definition: init, checkpoints and the model read it here.
 */
import { UsageError } from '../errors.js';

export interface LlamaTrainConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly maxSeqLen: number;
  readonly rmsEps: number;
  readonly ropeTheta: number;
  readonly tieEmbeddings: boolean;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  /** Per-head width when it is not hiddenSize / numHeads (a residual widened by private-dims.ts). */
  readonly headDim?: number;
}

/** Weights by Hugging Face tensor name, row-major f32. */
export type LlamaWeights = ReadonlyMap<string, Float32Array>;

export function headDimOf(c: LlamaTrainConfig): number {
  return c.headDim ?? c.hiddenSize / c.numHeads;
}

/** Throws a UsageError naming the first key that does not describe a Llama we can train. */
export function checkTrainConfig(c: LlamaTrainConfig, where = 'model config'): void {
  const positive = ['vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'maxSeqLen'] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new UsageError(`${where}: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.headDim !== undefined && (!Number.isInteger(c.headDim) || c.headDim < 1)) throw new UsageError(`${where}: headDim must be a positive integer, got ${c.headDim}`);
  if (c.headDim === undefined && c.hiddenSize % c.numHeads !== 0) throw new UsageError(`${where}: hiddenSize ${c.hiddenSize} is not a multiple of numHeads ${c.numHeads}`);
  if (headDimOf(c) % 2 !== 0) throw new UsageError(`${where}: the head dimension ${headDimOf(c)} must be even for RoPE`);
  if (c.numHeads % c.numKvHeads !== 0) throw new UsageError(`${where}: numHeads ${c.numHeads} is not a multiple of numKvHeads ${c.numKvHeads}`);
  if (!(c.rmsEps > 0)) throw new UsageError(`${where}: rmsEps must be positive, got ${c.rmsEps}`);
  if (!(c.ropeTheta > 0)) throw new UsageError(`${where}: ropeTheta must be positive, got ${c.ropeTheta}`);
  for (const k of ['bosTokenId', 'eosTokenId'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0 || c[k] >= c.vocabSize) throw new UsageError(`${where}: ${k} ${c[k]} is not an id of the vocabulary of ${c.vocabSize}`);
  }
}

/** Every weight's name and [rows, cols] (vectors as [1, n]), in checkpoint order. */
export function llamaWeightShapes(c: LlamaTrainConfig): Map<string, readonly [number, number]> {
  const E = c.hiddenSize;
  const D = headDimOf(c);
  const shapes = new Map<string, readonly [number, number]>();
  shapes.set('model.embed_tokens.weight', [c.vocabSize, E]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    shapes.set(`${p}.input_layernorm.weight`, [1, E]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [c.numHeads * D, E]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [c.numKvHeads * D, E]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [c.numKvHeads * D, E]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [E, c.numHeads * D]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [1, E]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, E]);
    shapes.set(`${p}.mlp.up_proj.weight`, [c.intermediateSize, E]);
    shapes.set(`${p}.mlp.down_proj.weight`, [E, c.intermediateSize]);
  }
  shapes.set('model.norm.weight', [1, E]);
  if (!c.tieEmbeddings) shapes.set('lm_head.weight', [c.vocabSize, E]);
  return shapes;
}

/** Throws naming the first weight that is missing or has the wrong number of values. */
export function checkWeights(c: LlamaTrainConfig, weights: LlamaWeights, where = 'weights'): void {
  for (const [name, [rows, cols]] of llamaWeightShapes(c)) {
    const w = weights.get(name);
    if (w === undefined) throw new UsageError(`${where}: missing tensor ${name}`);
    if (w.length !== rows * cols) throw new UsageError(`${where}: ${name} holds ${w.length} values, expected ${rows} × ${cols}`);
  }
}
