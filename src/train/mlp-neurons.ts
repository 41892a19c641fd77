/**
 * Blocks of MLP neurons: growing a trained Llama by fresh neurons without changing what it
 * computes, and the update masks that confine a fine-tune to one block.
 *
 * A neuron j of a SwiGLU MLP is row j of gate_proj and up_proj and column j of down_proj. A new
 * neuron with a zero down_proj column adds silu(g)·u·0 = 0 to every output, so the grown model
 * gives the same logits; fine-tuning only that neuron's three slices then starts from the base
 * exactly and writes its skill into parameters no other block touches (like a zero-initialised
 * adapter, but in the model's own tensors, so llama.cpp and every merge method see a plain Llama).
 */
import { UsageError } from '../errors.js';
import { RngStreams } from '../search/rng.js';
import { padColumns } from './pad-columns.js';
import { type LlamaTrainConfig, type LlamaWeights, checkTrainConfig, checkWeights } from './config.js';

/** gate/up rows drawn as init.ts draws a fresh matrix. */
const STD = 0.02;

/** A half-open range [start, end) of MLP neuron indices. */
export interface NeuronBlock {
  readonly start: number;
  readonly end: number;
}

/**
 * The model with `extra` more MLP neurons per layer at indices [intermediateSize, intermediateSize
 * + extra): gate/up rows N(0, 0.02²) from streams named by (seed, tensor), down_proj columns zero.
 */
export function widenMlp(config: LlamaTrainConfig, weights: LlamaWeights, extra: number, seed: number | string): { config: LlamaTrainConfig; weights: Map<string, Float32Array> } {
  checkTrainConfig(config);
  checkWeights(config, weights);
  if (!Number.isInteger(extra) || extra < 0) throw new UsageError(`widenMlp: extra neurons must be a non-negative integer, got ${extra}`);
  const I = config.intermediateSize;
  const E = config.hiddenSize;
  const wider = I + extra;
  const rng = new RngStreams(`widen-mlp/${seed}/${I}+${extra}`);
  const out = new Map<string, Float32Array>();
  for (const [name, w] of weights) {
    if (/\.mlp\.(gate|up)_proj\.weight$/.test(name)) {
      const grown = new Float32Array(wider * E);
      grown.set(w);
      const s = rng.stream(name);
      for (let i = I * E; i < grown.length; i++) grown[i] = s.normal() * STD;
      out.set(name, grown);
    } else if (/\.mlp\.down_proj\.weight$/.test(name)) out.set(name, padColumns(w, E, I, wider)); else out.set(name, new Float32Array(w));
  }
  return { config: { ...config, intermediateSize: wider }, weights: out };
}

/**
 * The update mask (1: trainable) of `tensorName` that confines training to the neurons of
 * `block`: their gate/up rows and down_proj columns. Tensors outside the MLP get undefined.
 */
export function neuronBlockMask(config: LlamaTrainConfig, tensorName: string, block: NeuronBlock): Uint8Array | undefined {
  const I = config.intermediateSize;
  const E = config.hiddenSize;
  if (!(Number.isInteger(block.start) && Number.isInteger(block.end) && block.start >= 0 && block.start < block.end && block.end <= I)) {
    throw new UsageError(`neuron block [${block.start}, ${block.end}) must be a non-empty range inside the ${I} MLP neurons`);
  }
  if (/\.mlp\.(gate|up)_proj\.weight$/.test(tensorName)) {
    const mask = new Uint8Array(I * E);
    mask.fill(1, block.start * E, block.end * E);
    return mask;
  }
  if (/\.mlp\.down_proj\.weight$/.test(tensorName)) {
    const mask = new Uint8Array(E * I);
    for (let r = 0; r < E; r++) mask.fill(1, r * I + block.start, r * I + block.end);
    return mask;
  }
  return undefined;
}
