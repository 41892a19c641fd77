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
 * fine-tunes. That is the separation task arithmetic assumes, made exact. Fresh attention heads
 * (widenHeads) can be owned too: their values read only P, so they output 0 on such a prompt too.
 */
import { UsageError } from '../errors.js';
import { RngStreams } from '../search/rng.js';
import { type LlamaTrainConfig, type LlamaWeights, checkTrainConfig, checkWeights, headDimOf } from './config.js';
import type { NeuronBlock } from './mlp-neurons.js';
import { padColumns } from './pad-columns.js';

/** A half-open range [start, end) of residual dimensions. */
export interface DimRange {
  readonly start: number;
  readonly end: number;
}

/** A half-open range [start, end) of query heads (their key/value heads too, when numKvHeads = numHeads). */
export interface HeadRange {
  readonly start: number;
  readonly end: number;
}

/** What one fine-tune owns. */
export interface PrivateParts {
  readonly dims: DimRange;
  /**
   * Its fresh attention heads, if any (widenHeads): their q/k rows read every dim but others',
   * their v rows only `dims`, and their o_proj columns write every dim but others'. With values
   * read from `dims` alone they output 0 wherever `dims` are 0, whatever they attend to.
   */
  readonly heads?: HeadRange;
  /** Heads owned by other fine-tunes: it never changes them. */
  readonly otherHeads?: readonly HeadRange[];
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
  for (const [name, w] of weights) {
    if (name.endsWith('norm.weight')) {
      const grown = new Float32Array(W).fill(1);
      for (let i = 0; i < H; i++) grown[i] = (w[i] ?? 0) * normScale;
      out.set(name, grown);
    } else if (/\.(o_proj|down_proj)\.weight$/.test(name)) {
      const grown = new Float32Array((w.length / H) * W);
      grown.set(w);
      out.set(name, grown);
    } else out.set(name, padColumns(w, w.length / H, H, W));
  }
  return { config: { ...config, hiddenSize: W, headDim: headDimOf(config), rmsEps: (config.rmsEps * H) / W }, weights: out };
}

/**
 * The model with `extra` fresh attention heads per layer (query and key/value heads, so
 * numKvHeads must equal numHeads) after the existing ones, of the same width: zero q/k/v rows and
 * zero o_proj columns, so it computes what it did. Fine-tunes own them through PrivateParts.heads.
 */
export function widenHeads(config: LlamaTrainConfig, weights: LlamaWeights, extra: number): { config: LlamaTrainConfig; weights: Map<string, Float32Array> } {
  checkTrainConfig(config);
  checkWeights(config, weights);
  if (!Number.isInteger(extra) || extra < 0) throw new UsageError(`widenHeads: extra heads must be a non-negative integer, got ${extra}`);
  if (extra > 0 && config.numKvHeads !== config.numHeads) throw new UsageError(`widenHeads: needs numKvHeads = numHeads (got ${config.numKvHeads} and ${config.numHeads}): a fresh head must not share another's keys and values`);
  const H = config.hiddenSize;
  const D = headDimOf(config);
  const before = config.numHeads * D;
  const after = (config.numHeads + extra) * D;
  const out = new Map<string, Float32Array>();
  for (const [name, w] of weights) {
    if (/\.self_attn\.[qkv]_proj\.weight$/.test(name)) {
      const grown = new Float32Array(after * H);
      grown.set(w);
      out.set(name, grown);
    } else if (/\.self_attn\.o_proj\.weight$/.test(name)) out.set(name, padColumns(w, H, before, after)); else out.set(name, new Float32Array(w));
  }
  return { config: { ...config, numHeads: config.numHeads + extra, numKvHeads: config.numKvHeads + extra, headDim: D }, weights: out };
}

function checkRange(r: DimRange | HeadRange, limit: number, what: string, units = 'residual dims'): void {
  if (!(Number.isInteger(r.start) && Number.isInteger(r.end) && r.start >= 0 && r.start < r.end && r.end <= limit)) throw new UsageError(`${what} [${r.start}, ${r.end}) must be a non-empty range inside the ${limit} ${units}`);
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
 * Small random values in a fine-tune's fresh heads: q/k rows (every dim but others') and v rows
 * (own dims only). Their o_proj columns stay zero, so the model's output does not change, and the
 * first gradient reaches them (with all four at zero none would).
 */
export function seedPrivateHeads(config: LlamaTrainConfig, weights: Map<string, Float32Array>, parts: PrivateParts, seed: number | string): void {
  const heads = parts.heads;
  if (heads === undefined) return;
  const H = config.hiddenSize;
  const D = headDimOf(config);
  checkRange(parts.dims, H, 'private dims');
  checkHeads(heads, config);
  const rng = new RngStreams(`private-heads/${seed}/${heads.start}-${heads.end}`);
  for (let l = 0; l < config.numLayers; l++) {
    for (const p of ['q', 'k', 'v'] as const) {
      const name = `model.layers.${l}.self_attn.${p}_proj.weight`;
      const w = weights.get(name);
      if (w === undefined) throw new UsageError(`seedPrivateHeads: no ${name}`);
      // Seeded exactly where the fine-tune may train (privatePartsMask), zero elsewhere.
      const mask = privatePartsMask(config, name, parts);
      const s = rng.stream(name);
      for (let i = heads.start * D * H; i < heads.end * D * H; i++) w[i] = mask[i] === 1 ? s.normal() * STD : 0;
    }
  }
}

function inAny(i: number, ranges: readonly { start: number; end: number }[] | undefined): boolean {
  return (ranges ?? []).some((r) => i >= r.start && i < r.end);
}

function checkHeads(heads: HeadRange, config: LlamaTrainConfig): void {
  checkRange(heads, config.numHeads, 'private heads', 'attention heads');
  if (config.numKvHeads !== config.numHeads) throw new UsageError(`private heads need numKvHeads = numHeads (got ${config.numKvHeads} and ${config.numHeads})`);
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
  if (parts.heads !== undefined) checkHeads(parts.heads, config);
  const columns = (rows: number): Uint8Array => {
    const mask = new Uint8Array(rows * H);
    for (let r = 0; r < rows; r++) mask.fill(1, r * H + dims.start, r * H + dims.end);
    return mask;
  };
  if (tensorName === 'model.embed_tokens.weight') return embeddingRowMask(config.vocabSize, H, parts.tokens, dims);
  if (tensorName.endsWith('norm.weight')) return new Uint8Array(H).fill(1, dims.start, dims.end);
  const headOf = (row: number): number => Math.floor(row / D);
  if (/\.self_attn\.[qkv]_proj\.weight$/.test(tensorName)) {
    const rows = (/\.q_proj\./.test(tensorName) ? config.numHeads : config.numKvHeads) * D;
    const mask = columns(rows);
    for (let r = 0; r < rows; r++) {
      const h = headOf(r);
      if (inAny(h, parts.otherHeads)) mask.fill(0, r * H, (r + 1) * H);
      else if (parts.heads !== undefined && inAny(h, [parts.heads]) && !tensorName.endsWith('v_proj.weight')) {
        // Its own heads' queries and keys may read anything: their values come from its dims only.
        for (let d = 0; d < H; d++) mask[r * H + d] = inAny(d, parts.others) ? 0 : 1;
      }
    }
    return mask;
  }
  if (tensorName.endsWith('o_proj.weight')) {
    const width = config.numHeads * D;
    const mask = new Uint8Array(H * width);
    const heads = parts.heads;
    if (heads === undefined) return mask;
    for (let r = 0; r < H; r++) if (!inAny(r, parts.others)) mask.fill(1, r * width + heads.start * D, r * width + heads.end * D);
    return mask;
  }
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
      if (inAny(r, parts.others)) continue;
      mask.fill(1, r * I + block.start, r * I + block.end);
    }
    return mask;
  }
  // lm_head stays as it is (as does o_proj outside its own heads: it writes every position's heads into the residual).
  return new Uint8Array(config.vocabSize * H);
}
