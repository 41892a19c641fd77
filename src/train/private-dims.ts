/**
 * Private residual dimensions: widening a trained Llama's residual stream by dimensions it never
 * uses, and the update masks that confine a fine-tune to parameters that read its own ones.
 *
 * A new dimension starts at zero in every embedding row, and no tensor writes to it (zero o_proj
 * and down_proj rows) or reads it (zero q/k/v/gate/up columns), so the widened model computes what
 * it did (the norms' weights and ε are rescaled for the mean over more dimensions). A fine-tune
 * that owns dims P may then change only: the P entries of the embedding rows of its own tokens,
 * the P entries of the norms, the P columns of q/k/v/gate/up, and its fresh neurons (gate rows that
 * read only P, up rows, down_proj columns that do not write another fine-tune's dims). On a prompt
 * without its tokens the P entries of the residual stay exactly 0 at every position, so every
 * changed weight multiplies a zero (silu(0) = 0 closes the gate of its neurons): the prompt is
 * computed exactly as without the fine-tune, in the fine-tune alone and in any sum of such
 * fine-tunes. That is the separation task arithmetic assumes, made exact.
 */
import { UsageError } from '../errors.js';
import { RngStreams } from '../search/rng.js';
import { type LlamaTrainConfig, type LlamaWeights, checkTrainConfig, checkWeights, headDimOf } from './config.js';
import type { NeuronBlock } from './mlp-neurons.js';

/** A half-open range [start, end) of residual dimensions. */
export interface DimRange {
  readonly start: number;
  readonly end: number;
}

/** What one fine-tune owns. */
export interface PrivateParts {
  readonly dims: DimRange;
  /** Token ids whose embedding rows it may change (in `dims` only). */
  readonly tokens: readonly number[];
  /** Its fresh MLP neurons, if any. */
  readonly neurons?: NeuronBlock;
  /** Dims owned by other fine-tunes: its neurons never write there. */
  readonly others: readonly DimRange[];
}

const STD = 0.02;

/** The model with `extra` zero residual dims at [hiddenSize, hiddenSize + extra); heads keep their width. */
export function widenResidual(config: LlamaTrainConfig, weights: LlamaWeights, extra: number): { config: LlamaTrainConfig; weights: Map<string, Float32Array> } {
  checkTrainConfig(config);
  checkWeights(config, weights);
  if (!Number.isInteger(extra) || extra < 0) throw new UsageError(`widenResidual: extra dims must be a non-negative integer, got ${extra}`);
  const H = config.hiddenSize;
  const W = H + extra;
  // The norms divide by √(Σx²/W + ε′) instead of √(Σx²/H + ε) = √(W/H)·√(Σx²/W + ε·H/W): with
  // ε′ = ε·H/W and the weights scaled by √(H/W) they give what they gave.
  const normScale = Math.sqrt(H / W);
  const out = new Map<string, Float32Array>();
  const widenColumns = (w: Float32Array, rows: number): Float32Array => {
    const grown = new Float32Array(rows * W);
    for (let r = 0; r < rows; r++) grown.set(w.subarray(r * H, (r + 1) * H), r * W);
    return grown;
  };
  for (const [name, w] of weights) {
    if (name.endsWith('norm.weight')) {
      const grown = new Float32Array(W).fill(1);
      for (let i = 0; i < H; i++) grown[i] = (w[i] ?? 0) * normScale;
      out.set(name, grown);
    } else if (/\.(o_proj|down_proj)\.weight$/.test(name)) {
      const grown = new Float32Array((w.length / H) * W);
      grown.set(w);
      out.set(name, grown);
    } else out.set(name, widenColumns(w, w.length / H));
  }
  return { config: { ...config, hiddenSize: W, headDim: headDimOf(config), rmsEps: (config.rmsEps * H) / W }, weights: out };
}

function checkRange(r: DimRange, H: number, what: string): void {
  if (!(Number.isInteger(r.start) && Number.isInteger(r.end) && r.start >= 0 && r.start < r.end && r.end <= H)) throw new UsageError(`${what} [${r.start}, ${r.end}) must be a non-empty range inside the ${H} residual dims`);
}

/**
 * Fresh neurons that may only open on `dims`: their gate rows become zero outside `dims` and
 * N(0, 0.02²) inside (drawn from streams named by seed and tensor). Their down_proj columns must
 * already be zero (mlp-neurons.ts), so the model's output does not change.
 */
export function gateNeuronsOn(config: LlamaTrainConfig, weights: Map<string, Float32Array>, block: NeuronBlock, dims: DimRange, seed: number | string): void {
  const H = config.hiddenSize;
  checkRange(dims, H, 'gateNeuronsOn dims');
  const rng = new RngStreams(`private-gates/${seed}/${block.start}-${block.end}/${dims.start}-${dims.end}`);
  for (let l = 0; l < config.numLayers; l++) {
    const name = `model.layers.${l}.mlp.gate_proj.weight`;
    const gate = weights.get(name);
    if (gate === undefined) throw new UsageError(`gateNeuronsOn: no ${name}`);
    const s = rng.stream(name);
    for (let j = block.start; j < block.end; j++) {
      gate.fill(0, j * H, (j + 1) * H);
      for (let d = dims.start; d < dims.end; d++) gate[j * H + d] = s.normal() * STD;
    }
  }
}

/** Small random values in the `dims` entries of the embedding rows of `tokens`: without them no gradient reaches the private parts (all start at zero). */
export function seedPrivateEmbeddings(config: LlamaTrainConfig, weights: Map<string, Float32Array>, parts: PrivateParts, seed: number | string): void {
  const H = config.hiddenSize;
  checkRange(parts.dims, H, 'private dims');
  const embed = weights.get('model.embed_tokens.weight');
  if (embed === undefined) throw new UsageError('seedPrivateEmbeddings: no model.embed_tokens.weight');
  const s = new RngStreams(`private-embeddings/${seed}/${parts.dims.start}-${parts.dims.end}`).stream('embed_tokens');
  for (const t of parts.tokens) for (let d = parts.dims.start; d < parts.dims.end; d++) embed[t * H + d] = s.normal() * STD;
}

/**
 * The update mask of a [vocab, hidden] embedding matrix that lets only the rows of `tokens` change,
 * in `columns` only when given (a fine-tune's private dims) and whole otherwise.
 */
export function embeddingRowMask(vocabSize: number, hiddenSize: number, tokens: readonly number[], columns: DimRange = { start: 0, end: hiddenSize }): Uint8Array {
  const mask = new Uint8Array(vocabSize * hiddenSize);
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw new RangeError(`embedding row mask: token id ${t} is outside the vocabulary of ${vocabSize}`);
    mask.fill(1, t * hiddenSize + columns.start, t * hiddenSize + columns.end);
  }
  return mask;
}

/** The update mask (1: may change) of `tensorName` for a fine-tune that owns `parts`. */
export function privatePartsMask(config: LlamaTrainConfig, tensorName: string, parts: PrivateParts): Uint8Array {
  const H = config.hiddenSize;
  const I = config.intermediateSize;
  const D = headDimOf(config);
  const { dims } = parts;
  checkRange(dims, H, 'private dims');
  const columns = (rows: number): Uint8Array => {
    const mask = new Uint8Array(rows * H);
    for (let r = 0; r < rows; r++) mask.fill(1, r * H + dims.start, r * H + dims.end);
    return mask;
  };
  if (tensorName === 'model.embed_tokens.weight') return embeddingRowMask(config.vocabSize, H, parts.tokens, dims);
  if (tensorName.endsWith('norm.weight')) return new Uint8Array(H).fill(1, dims.start, dims.end);
  if (/\.self_attn\.[qkv]_proj\.weight$/.test(tensorName)) return columns((/\.q_proj\./.test(tensorName) ? config.numHeads : config.numKvHeads) * D);
  if (/\.mlp\.(gate|up)_proj\.weight$/.test(tensorName)) {
    const mask = columns(I);
    // Its own neurons' up rows read every dim (their gate, on `dims` only, keeps them shut elsewhere).
    if (parts.neurons !== undefined && tensorName.endsWith('up_proj.weight')) mask.fill(1, parts.neurons.start * H, parts.neurons.end * H);
    return mask;
  }
  if (/\.mlp\.down_proj\.weight$/.test(tensorName)) {
    const mask = new Uint8Array(H * I);
    const block = parts.neurons;
    if (block === undefined) return mask;
    for (let r = 0; r < H; r++) {
      if (parts.others.some((o) => r >= o.start && r < o.end)) continue;
      mask.fill(1, r * I + block.start, r * I + block.end);
    }
    return mask;
  }
  // o_proj (it writes every position's heads into the residual) and lm_head stay as they are.
  return new Uint8Array(tensorName.endsWith('o_proj.weight') ? H * config.numHeads * D : config.vocabSize * H);
}
