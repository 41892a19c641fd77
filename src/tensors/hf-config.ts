import { CheckpointError } from './checkpoint-error.js';

/**
 * The parts of a Hugging Face `config.json` that evomerge reads, checked and typed. `raw` keeps
 * the whole document so that merges can write it back with only the keys they change.
 */
export interface HfConfig {
  readonly raw: Readonly<Record<string, unknown>>;
  /** The file it was read from; undefined when it was inferred from the tensor names. */
  readonly file: string | undefined;
  /** `architectures[0]`, e.g. `LlamaForCausalLM`; '' when the config names none. */
  readonly architecture: string;
  /** `model_type`, e.g. `llama`; '' when absent. */
  readonly modelType: string;
  readonly numHiddenLayers: number;
  /**
   * Where the layer count lives, as a key path into `raw`: `['num_hidden_layers']`, an alias
   * such as `['n_layer']`, or `['text_config', 'num_hidden_layers']` for multimodal configs.
   */
  readonly layersKeyPath: readonly string[];
  readonly hiddenSize?: number;
  readonly intermediateSize?: number;
  readonly numAttentionHeads?: number;
  readonly numKeyValueHeads?: number;
  /** `head_dim` when given, else hidden_size / num_attention_heads when that divides. */
  readonly headDim?: number;
  readonly vocabSize?: number;
  /** `tie_word_embeddings`, or the transformers default for the model type when absent. */
  readonly tieWordEmbeddings: boolean;
  /** Whether `tie_word_embeddings` was written in the config (rather than defaulted). */
  readonly tieWordEmbeddingsExplicit: boolean;
  readonly rmsNormEps?: number;
  readonly ropeTheta?: number;
  readonly maxPositionEmbeddings?: number;
  /** `torch_dtype` (or `dtype`, its newer spelling), e.g. `bfloat16`. */
  readonly torchDtype?: string;
}

// Model types whose transformers config class defaults tie_word_embeddings to false; the base
// PretrainedConfig (and so every other type, e.g. gemma, gpt2) defaults it to true.
const UNTIED_BY_DEFAULT = new Set([
  'llama',
  'mistral',
  'mixtral',
  'qwen2',
  'qwen2_moe',
  'qwen3',
  'qwen3_moe',
  'phi3',
  'phi',
  'gpt_neox',
  'olmo',
  'olmo2',
  'stablelm',
  'starcoder2',
  'granite',
  'cohere',
  'deepseek_v2',
  'deepseek_v3',
]);

const LAYER_KEYS = ['num_hidden_layers', 'n_layer', 'num_layers', 'n_layers'] as const;

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks and types a parsed config.json. Multimodal configs that keep the language model's
 * keys under `text_config` are read from there. Throws CheckpointError CONFIG_INVALID for a
 * non-object or a wrongly typed known key, MISSING_LAYERS_KEY when no layer count is found.
 */
export function parseHfConfig(raw: unknown, file: string): HfConfig {
  if (!isObject(raw)) {
    throw new CheckpointError('CONFIG_INVALID', file, `${file}: config must be a JSON object, got ${describe(raw)}`);
  }
  const text = isObject(raw.text_config) ? raw.text_config : undefined;
  let layersKeyPath: string[] | undefined;
  for (const key of LAYER_KEYS) {
    if (raw[key] !== undefined && raw[key] !== null) {
      layersKeyPath = [key];
      break;
    }
  }
  if (layersKeyPath === undefined && text !== undefined) {
    for (const key of LAYER_KEYS) {
      if (text[key] !== undefined && text[key] !== null) {
        layersKeyPath = ['text_config', key];
        break;
      }
    }
  }
  if (layersKeyPath === undefined) {
    throw new CheckpointError('MISSING_LAYERS_KEY', file, `${file}: no num_hidden_layers (the number of decoder layers)`);
  }
  // Dimensions come from the same object as the layer count.
  const source = layersKeyPath.length === 2 && text !== undefined ? text : raw;
  const prefix = source === raw ? '' : 'text_config.';
  const int = (keys: readonly string[], min: number): number | undefined => {
    for (const key of keys) {
      const v = source[key];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
        throw new CheckpointError('CONFIG_INVALID', file, `${file}: ${prefix}${key} must be an integer ≥ ${min}, got ${describe(v)}`);
      }
      return v;
    }
    return undefined;
  };
  const num = (keys: readonly string[], from: JsonObject = source): number | undefined => {
    for (const key of keys) {
      const v = from[key];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new CheckpointError('CONFIG_INVALID', file, `${file}: ${prefix}${key} must be a number, got ${describe(v)}`);
      }
      return v;
    }
    return undefined;
  };
  const str = (key: string, from: JsonObject): string | undefined => {
    const v = from[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new CheckpointError('CONFIG_INVALID', file, `${file}: ${key} must be a string, got ${describe(v)}`);
    return v;
  };

  const numHiddenLayers = int([layersKeyPath[layersKeyPath.length - 1] ?? 'num_hidden_layers'], 0) ?? 0;
  let architecture = '';
  if (raw.architectures !== undefined && raw.architectures !== null) {
    if (!Array.isArray(raw.architectures) || !raw.architectures.every((a) => typeof a === 'string')) {
      throw new CheckpointError('CONFIG_INVALID', file, `${file}: architectures must be a list of strings, got ${describe(raw.architectures)}`);
    }
    architecture = (raw.architectures as string[])[0] ?? '';
  }
  const modelType = str('model_type', raw) ?? '';
  const tieSource = raw.tie_word_embeddings !== undefined ? raw : text?.tie_word_embeddings !== undefined ? text : undefined;
  let tieWordEmbeddings = !UNTIED_BY_DEFAULT.has(modelType);
  if (tieSource !== undefined) {
    const v = tieSource.tie_word_embeddings;
    if (typeof v !== 'boolean') {
      throw new CheckpointError('CONFIG_INVALID', file, `${file}: tie_word_embeddings must be true or false, got ${describe(v)}`);
    }
    tieWordEmbeddings = v;
  }

  const hiddenSize = int(['hidden_size', 'n_embd', 'd_model'], 1);
  const numAttentionHeads = int(['num_attention_heads', 'n_head'], 1);
  const explicitHeadDim = int(['head_dim'], 1);
  const headDim =
    explicitHeadDim ??
    (hiddenSize !== undefined && numAttentionHeads !== undefined && hiddenSize % numAttentionHeads === 0
      ? hiddenSize / numAttentionHeads
      : undefined);
  const ropeParameters = isObject(source.rope_parameters) ? source.rope_parameters : undefined;
  const torchDtype = str('torch_dtype', raw) ?? str('dtype', raw) ?? (text ? (str('torch_dtype', text) ?? str('dtype', text)) : undefined);

  return withoutUndefined({
    raw,
    file,
    architecture,
    modelType,
    numHiddenLayers,
    layersKeyPath,
    hiddenSize,
    intermediateSize: int(['intermediate_size', 'n_inner', 'ffn_dim'], 1),
    numAttentionHeads,
    // transformers falls back to num_attention_heads (plain multi-head attention).
    numKeyValueHeads: int(['num_key_value_heads'], 1) ?? numAttentionHeads,
    headDim,
    vocabSize: int(['vocab_size'], 1),
    tieWordEmbeddings,
    tieWordEmbeddingsExplicit: tieSource !== undefined,
    rmsNormEps: num(['rms_norm_eps', 'layer_norm_eps', 'layer_norm_epsilon']),
    ropeTheta: num(['rope_theta']) ?? (ropeParameters ? num(['rope_theta'], ropeParameters) : undefined),
    maxPositionEmbeddings: int(['max_position_embeddings', 'n_positions'], 1),
    torchDtype,
  });
}

/**
 * A copy of `raw` with the decoder layer count set to `n` wherever the config keeps it (the key
 * path found by parseHfConfig, and `text_config` for multimodal configs). When `sourceLayers`
 * is given (output layer i was source layer sourceLayers[i]), per-layer lists such as
 * `layer_types` are re-indexed to match, so transformers' length check still passes.
 */
export function withNumHiddenLayers(
  raw: Readonly<Record<string, unknown>>,
  n: number,
  sourceLayers?: readonly number[],
): Record<string, unknown> {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`layer count must be a non-negative integer, got ${n}`);
  if (sourceLayers !== undefined && sourceLayers.length !== n) {
    throw new RangeError(`sourceLayers has ${sourceLayers.length} entries for ${n} layers`);
  }
  const copy = structuredClone(raw) as JsonObject;
  const patch = (obj: JsonObject, force: boolean): boolean => {
    let found = false;
    let oldCount: number | undefined;
    for (const key of LAYER_KEYS) {
      if (obj[key] !== undefined) {
        if (typeof obj[key] === 'number') oldCount = obj[key];
        obj[key] = n;
        found = true;
      }
    }
    if (!found && force) obj.num_hidden_layers = n;
    const types = obj.layer_types;
    if (Array.isArray(types)) {
      if (sourceLayers !== undefined && types.length === oldCount) {
        obj.layer_types = sourceLayers.map((i) => {
          if (!Number.isSafeInteger(i) || i < 0 || i >= types.length) throw new RangeError(`source layer ${i} is not in 0..${types.length - 1}`);
          return types[i];
        });
      } else if (types.length !== n && types.length > 0) {
        // Without a mapping, keep the pattern by cycling the existing list.
        obj.layer_types = Array.from({ length: n }, (_, i) => types[i % types.length]);
      }
    }
    return found;
  };
  const top = patch(copy, false);
  const text = copy.text_config;
  const nested = isObject(text) ? patch(text, false) : false;
  if (!top && !nested) patch(copy, true);
  return copy;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json === undefined ? String(value) : json.length > 40 ? `${json.slice(0, 37)}...` : json;
}

/** Drops keys whose value is undefined so that optional fields are truly absent. */
function withoutUndefined<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return Object.freeze(value);
}
