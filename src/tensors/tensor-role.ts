/**
 * What a tensor is for, judged from its name alone. Covers the Llama family layout
 * (llama, mistral, mixtral, qwen2/3, gemma, phi3: `model.layers.N.self_attn.*`) and the older
 * layouts that mergekit also knows (`transformer.h.N.*` for gpt2/falcon, `gpt_neox.layers.N.*`).
 */
export type TensorRole =
  | { readonly kind: 'embedding' }
  | { readonly kind: 'lm_head' }
  | { readonly kind: 'final_norm' }
  | { readonly kind: 'layer'; readonly layer: number; readonly module: LayerModule }
  | { readonly kind: 'other' };

/** The part of a decoder layer a tensor belongs to. */
export type LayerModule = 'attention' | 'mlp' | 'norm' | 'other';

// The first `<container>.<N>.` run in a name is its decoder layer; `layers` (llama, neox),
// `h` (gpt2, falcon, bloom) and `blocks` (mpt) are the containers transformers uses.
const LAYER_PATTERN = /(^|\.)(layers|h|blocks)\.(\d+)\./;

const EMBEDDING_PARTS = new Set(['embed_tokens', 'wte', 'embed_in', 'word_embeddings', 'tok_embeddings']);
const LM_HEAD_PARTS = new Set(['lm_head', 'embed_out']);
const FINAL_NORM_PARTS = new Set(['norm', 'ln_f', 'final_layer_norm', 'final_layernorm', 'final_norm']);

/** Classifies a tensor name; names it does not recognise are `{ kind: 'other' }`. */
export function tensorRole(name: string): TensorRole {
  const match = LAYER_PATTERN.exec(name);
  if (match) {
    const layer = Number(match[3]);
    const rest = name.slice(match.index + match[0].length);
    return { kind: 'layer', layer, module: layerModule(rest) };
  }
  // The component before the trailing `.weight`/`.bias` names the module.
  const parts = name.split('.');
  const last = parts[parts.length - 1];
  const owner = last === 'weight' || last === 'bias' ? parts[parts.length - 2] : last;
  if (owner === undefined) return { kind: 'other' };
  if (EMBEDDING_PARTS.has(owner)) return { kind: 'embedding' };
  if (LM_HEAD_PARTS.has(owner)) return { kind: 'lm_head' };
  if (FINAL_NORM_PARTS.has(owner)) return { kind: 'final_norm' };
  return { kind: 'other' };
}

/**
 * The module of a layer tensor from the path after `layers.N.`: `post_attention_layernorm`
 * is a norm although it says "attention", and `self_attn.q_norm` is attention although it
 * says "norm", so the first component decides, norms first.
 */
function layerModule(rest: string): LayerModule {
  const first = rest.split('.')[0] ?? '';
  if (/(^|_)(layernorm|norm|ln)(_|\d|$)|^ln_/.test(first)) return 'norm';
  if (/attn|attention/.test(first)) return 'attention';
  if (/mlp|ffn|feed_forward|moe|experts/.test(first)) return 'mlp';
  return 'other';
}

/** A layer tensor name in three parts: `model.` + `layers.3.` + `mlp.up_proj.weight`. */
export interface LayerNameParts {
  /** Everything before the layer container, e.g. `model.` ('' when the name starts with it). */
  readonly prefix: string;
  /** The container and index with their dots, e.g. `layers.3.`. */
  readonly container: string;
  readonly layer: number;
  /** The path inside the layer, e.g. `mlp.up_proj.weight`. */
  readonly rest: string;
}

/** Splits a layer tensor name into its parts, or undefined for non-layer tensors. */
export function splitLayerName(name: string): LayerNameParts | undefined {
  const match = LAYER_PATTERN.exec(name);
  if (!match) return undefined;
  const lead = match[1] ?? '';
  const prefixEnd = match.index + lead.length;
  return {
    prefix: name.slice(0, prefixEnd),
    container: name.slice(prefixEnd, match.index + match[0].length),
    layer: Number(match[3]),
    rest: name.slice(match.index + match[0].length),
  };
}

/** The decoder layer index in a tensor name, or undefined for non-layer tensors. */
export function layerIndexOf(name: string): number | undefined {
  const match = LAYER_PATTERN.exec(name);
  return match ? Number(match[3]) : undefined;
}

/**
 * The same tensor name in another layer (frankenmerges copy layer i of a source to layer j of
 * the output). Throws a RangeError when the name has no layer index or the index is not a
 * non-negative integer: that is a programming error, not bad user input.
 */
export function layerTensorName(name: string, newLayer: number): string {
  if (!Number.isSafeInteger(newLayer) || newLayer < 0) {
    throw new RangeError(`layer index must be a non-negative integer, got ${newLayer}`);
  }
  const match = LAYER_PATTERN.exec(name);
  if (!match) throw new RangeError(`tensor name ${name} has no layer index`);
  const start = match.index + match[0].length - (match[3] ?? '').length - 1;
  return `${name.slice(0, start)}${newLayer}${name.slice(start + (match[3] ?? '').length)}`;
}

/**
 * Orders tensor names as a person reads a model: digit runs compare as numbers, so
 * `layers.2` sorts before `layers.10`. Ties fall back to plain code-unit order.
 */
export function compareTensorNames(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    // split() with a capture group puts digit runs at odd indices.
    if (i % 2 === 1) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    }
    return x < y ? -1 : 1;
  }
  if (pa.length !== pb.length) return pa.length - pb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
