import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { decodeToF32, dtypeByteSize } from '../tensors/dtype.js';
import type { DType } from '../tensors/dtype.js';
import { writeGgufFile } from '../tensors/gguf.js';
import type { GgmlType, GgufMetadataEntry, GgufTensorSpec, GgufWriteSummary } from '../tensors/gguf.js';
import { openCheckpoint } from '../tensors/checkpoint.js';
import type { HfConfig } from '../tensors/hf-config.js';
import { permuteRotaryRows } from './rotary-layout.js';
import { prepareTokenizerMetadata, tokenizerMetadataEntries } from './tokenizer-gguf.js';
import type { GgufTokenizerMetadata, PrepareTokenizerOptions } from './tokenizer-gguf.js';

/**
 * Hugging Face checkpoint → GGUF for llama.cpp, for the llama family (LlamaForCausalLM,
 * MistralForCausalLM → GGUF arch `llama`) and Qwen2ForCausalLM (`qwen2`). Tensor names and
 * hyper-parameter keys follow llama.cpp's converter; the code is ours.
 *
 * Two facts shape the tensor data:
 * - llama.cpp's `llama` graph applies RoPE to adjacent element pairs (Meta's original layout),
 *   while HF checkpoints rotate the two halves of each head. So q and k rows (and biases) are
 *   permuted per head: GGUF row h·D + 2i + j ← HF row h·D + j·D/2 + i. `qwen2` uses the
 *   rotate-half (NeoX) RoPE in llama.cpp and needs no permutation.
 * - With tied embeddings no `output.weight` is written; llama.cpp then reuses `token_embd`.
 */

/**
 * Output tensor type for matrices (1-D tensors such as norms and biases are always F32, as
 * llama.cpp's converter does). `auto` keeps the checkpoint's float type (BF16 → BF16,
 * F16 → F16, F32 → F32), which is lossless. Q8_0 falls back to F16 for rows not divisible by 32.
 */
export type GgufOutType = 'auto' | 'f32' | 'f16' | 'bf16' | 'q8_0';
export const GGUF_OUT_TYPES: readonly GgufOutType[] = ['auto', 'f32', 'f16', 'bf16', 'q8_0'];

/** GGUF architectures this converter writes. */
export type GgufArchitecture = 'llama' | 'qwen2';

const HF_ARCHITECTURES: Readonly<Record<string, GgufArchitecture>> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
};

/** `general.file_type` values (llama.h `llama_ftype`). */
const FILE_TYPE: Readonly<Record<Exclude<GgufOutType, 'auto'>, number>> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };

/** One stored tensor of the source checkpoint, located down to its bytes. */
export interface SourceTensor {
  /** Absolute path of the safetensors file. */
  readonly file: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in `file`. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** What the converter needs from an opened HF checkpoint (src/tensors/checkpoint.ts provides it). */
export interface GgufSourceCheckpoint {
  readonly config: HfConfig;
  readonly tensors: ReadonlyMap<string, SourceTensor>;
  readonly tiedEmbeddings: boolean;
}

export interface WriteGgufOptions {
  /** Matrix tensor type. Default: 'auto'. */
  readonly outType?: GgufOutType;
  /** `general.name`. Default: the output file's base name without extension. */
  readonly name?: string;
  /** Values per read from the source; bounds memory per tensor. Default: 4 Mi elements (16 MB of f32). */
  readonly chunkElements?: number;
}

export class GgufConversionError extends EvoError {
  readonly tensor: string | undefined;
  constructor(code: string, message: string, tensor?: string) {
    super(code, message);
    this.name = 'GgufConversionError';
    this.tensor = tensor;
  }
}

/** Model hyper-parameters, checked, as the GGUF needs them. */
export interface GgufHyperparameters {
  readonly arch: GgufArchitecture;
  readonly contextLength: number;
  readonly embeddingLength: number;
  readonly blockCount: number;
  readonly feedForwardLength: number;
  readonly headCount: number;
  readonly headCountKv: number;
  readonly headDim: number;
  readonly rmsEps: number;
  readonly ropeFreqBase: number;
  readonly ropeScaling?: { readonly type: 'linear' | 'yarn'; readonly factor: number; readonly originalContextLength?: number };
}

function configNumber(raw: Readonly<Record<string, unknown>>, key: string, file: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new GgufConversionError('CONFIG_MISSING_KEY', `${file}: ${key} must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function positiveInt(raw: Readonly<Record<string, unknown>>, key: string, file: string, fallback?: number): number {
  const v = configNumber(raw, key, file, fallback);
  if (!Number.isSafeInteger(v) || v <= 0) throw new GgufConversionError('CONFIG_MISSING_KEY', `${file}: ${key} must be a positive integer, got ${v}`);
  return v;
}

/** Reads and checks the hyper-parameters of a llama / mistral / qwen2 config.json. */
export function ggufHyperparameters(config: HfConfig): GgufHyperparameters {
  const file = config.file ?? 'config.json';
  const arch = HF_ARCHITECTURES[config.architecture];
  if (arch === undefined) {
    throw new GgufConversionError(
      'UNSUPPORTED_ARCHITECTURE',
      `${file}: architecture ${JSON.stringify(config.architecture)} is not supported for GGUF (supported: ${Object.keys(HF_ARCHITECTURES).join(', ')})`,
    );
  }
  const raw = config.raw;
  const embeddingLength = positiveInt(raw, 'hidden_size', file);
  const headCount = positiveInt(raw, 'num_attention_heads', file);
  const headCountKv = positiveInt(raw, 'num_key_value_heads', file, headCount);
  if (headCount % headCountKv !== 0) {
    throw new GgufConversionError('CONFIG_INVALID', `${file}: num_attention_heads ${headCount} is not a multiple of num_key_value_heads ${headCountKv}`);
  }
  const headDim = raw.head_dim === undefined || raw.head_dim === null ? embeddingLength / headCount : positiveInt(raw, 'head_dim', file);
  if (!Number.isSafeInteger(headDim) || headDim % 2 !== 0) {
    throw new GgufConversionError('CONFIG_INVALID', `${file}: head dimension must be an even integer, got ${headDim}`);
  }
  let ropeScaling: GgufHyperparameters['ropeScaling'];
  const rs = raw.rope_scaling;
  if (rs !== undefined && rs !== null) {
    const r = rs as Record<string, unknown>;
    const type = r.rope_type ?? r.type;
    if (type === 'default') ropeScaling = undefined;
    else if (type === 'linear' || type === 'yarn') {
      const factor = configNumber(r, 'factor', `${file} rope_scaling`);
      ropeScaling =
        type === 'yarn' && typeof r.original_max_position_embeddings === 'number'
          ? { type, factor, originalContextLength: r.original_max_position_embeddings }
          : { type, factor };
    } else {
      throw new GgufConversionError('UNSUPPORTED_CONFIG', `${file}: rope_scaling type ${JSON.stringify(type)} is not supported (linear, yarn)`);
    }
  }
  const hp: GgufHyperparameters = {
    arch,
    contextLength: positiveInt(raw, 'max_position_embeddings', file),
    embeddingLength,
    blockCount: positiveInt(raw, 'num_hidden_layers', file),
    feedForwardLength: positiveInt(raw, 'intermediate_size', file),
    headCount,
    headCountKv,
    headDim,
    rmsEps: configNumber(raw, 'rms_norm_eps', file, 1e-6),
    ropeFreqBase: configNumber(raw, 'rope_theta', file, arch === 'qwen2' ? 1_000_000 : 10_000),
  };
  return ropeScaling === undefined ? hp : { ...hp, ropeScaling };
}

/** One GGUF tensor and where its data comes from. */
export interface GgufTensorPlan {
  readonly ggufName: string;
  readonly hfName: string;
  /** Row-major shape (same in HF and GGUF order; GGUF's `ne` is this reversed). */
  readonly shape: readonly number[];
  readonly type: GgmlType;
  /** For q/k of the llama graph: permute rows within blocks of this many heads' rows. */
  readonly permuteHeads?: number;
}

const LAYER_TENSORS: readonly [hf: string, gguf: string][] = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'],
  ['self_attn.q_proj.bias', 'attn_q.bias'],
  ['self_attn.k_proj.weight', 'attn_k.weight'],
  ['self_attn.k_proj.bias', 'attn_k.bias'],
  ['self_attn.v_proj.weight', 'attn_v.weight'],
  ['self_attn.v_proj.bias', 'attn_v.bias'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
];
const LAYER_MAP = new Map(LAYER_TENSORS);
/** Tensors a checkpoint may hold that llama.cpp does not need. */
const IGNORED = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

function matrixType(outType: GgufOutType, stored: DType, rowLength: number): GgmlType {
  switch (outType) {
    case 'auto':
      return stored === 'BF16' ? 'BF16' : stored === 'F16' ? 'F16' : 'F32';
    case 'f32':
      return 'F32';
    case 'f16':
      return 'F16';
    case 'bf16':
      return 'BF16';
    case 'q8_0':
      return rowLength % 32 === 0 ? 'Q8_0' : 'F16';
    default: {
      const never: never = outType;
      throw new Error(`unknown out type ${String(never)}`);
    }
  }
}

/** The `general.file_type` an out type amounts to for this checkpoint. */
export function resolveOutType(outType: GgufOutType, tensors: ReadonlyMap<string, SourceTensor>): Exclude<GgufOutType, 'auto'> {
  if (outType !== 'auto') return outType;
  const embed = tensors.get('model.embed_tokens.weight');
  return embed?.dtype === 'BF16' ? 'bf16' : embed?.dtype === 'F16' ? 'f16' : 'f32';
}

/**
 * Maps every checkpoint tensor to its GGUF name, shape check and type, in llama.cpp's usual
 * order (token_embd, blocks in order, output_norm, output). Throws before anything is written
 * when a tensor is unknown, missing or misshapen.
 */
export function planGgufTensors(checkpoint: GgufSourceCheckpoint, hp: GgufHyperparameters, outType: GgufOutType): GgufTensorPlan[] {
  const { tensors } = checkpoint;
  const plans: GgufTensorPlan[] = [];
  const used = new Set<string>();
  const qRows = hp.headCount * hp.headDim;
  const kvRows = hp.headCountKv * hp.headDim;
  const embed = tensors.get('model.embed_tokens.weight');
  if (embed === undefined) throw new GgufConversionError('MISSING_TENSOR', 'checkpoint has no model.embed_tokens.weight', 'model.embed_tokens.weight');
  const vocab = embed.shape[0] ?? 0;
  const E = hp.embeddingLength;
  const F = hp.feedForwardLength;
  const expected: Record<string, readonly number[]> = {
    'input_layernorm.weight': [E],
    'post_attention_layernorm.weight': [E],
    'self_attn.q_proj.weight': [qRows, E],
    'self_attn.q_proj.bias': [qRows],
    'self_attn.k_proj.weight': [kvRows, E],
    'self_attn.k_proj.bias': [kvRows],
    'self_attn.v_proj.weight': [kvRows, E],
    'self_attn.v_proj.bias': [kvRows],
    'self_attn.o_proj.weight': [E, qRows],
    'mlp.gate_proj.weight': [F, E],
    'mlp.up_proj.weight': [F, E],
    'mlp.down_proj.weight': [E, F],
  };
  const add = (hfName: string, ggufName: string, shape: readonly number[], permuteHeads?: number): void => {
    const t = tensors.get(hfName);
    if (t === undefined) throw new GgufConversionError('MISSING_TENSOR', `checkpoint has no ${hfName}`, hfName);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new GgufConversionError('SHAPE_MISMATCH', `${hfName} has shape [${t.shape.join(', ')}], config implies [${shape.join(', ')}]`, hfName);
    }
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new GgufConversionError('UNSUPPORTED_DTYPE', `${hfName} is stored as ${t.dtype}; F32, F16 or BF16 expected`, hfName);
    }
    used.add(hfName);
    const type = shape.length === 1 ? 'F32' : matrixType(outType, t.dtype, shape[shape.length - 1] ?? 0);
    plans.push(permuteHeads === undefined ? { ggufName, hfName, shape, type } : { ggufName, hfName, shape, type, permuteHeads });
  };
  add('model.embed_tokens.weight', 'token_embd.weight', [vocab, E]);
  const hasBias = (i: number, proj: string): boolean => tensors.has(`model.layers.${i}.self_attn.${proj}.bias`);
  for (let i = 0; i < hp.blockCount; i++) {
    for (const [suffix, ggufSuffix] of LAYER_TENSORS) {
      if (suffix.endsWith('.bias') && !hasBias(i, suffix.split('.')[1] ?? '')) continue;
      const shape = expected[suffix];
      if (shape === undefined) continue;
      let permute: number | undefined;
      if (hp.arch === 'llama' && suffix.startsWith('self_attn.q_proj')) permute = hp.headCount;
      if (hp.arch === 'llama' && suffix.startsWith('self_attn.k_proj')) permute = hp.headCountKv;
      add(`model.layers.${i}.${suffix}`, `blk.${i}.${ggufSuffix}`, shape, permute);
    }
  }
  add('model.norm.weight', 'output_norm.weight', [E]);
  if (!checkpoint.tiedEmbeddings) {
    if (!tensors.has('lm_head.weight')) {
      throw new GgufConversionError('MISSING_TENSOR', 'checkpoint has no lm_head.weight and its embeddings are not tied', 'lm_head.weight');
    }
    add('lm_head.weight', 'output.weight', [vocab, E]);
  } else {
    used.add('lm_head.weight');
  }
  for (const name of tensors.keys()) {
    if (used.has(name) || IGNORED.test(name)) continue;
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
    const why = m && LAYER_MAP.has(m[2] ?? '') ? `layer ${m[1]} is beyond num_hidden_layers ${hp.blockCount}` : 'no llama.cpp tensor for it';
    throw new GgufConversionError('UNMAPPED_TENSOR', `cannot convert ${name}: ${why}`, name);
  }
  return plans;
}

/** The ggml type that stores a safetensors dtype bit for bit, if any. */
const SAME_BITS: Partial<Record<DType, GgmlType>> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };

/**
 * Streams a source tensor in chunks of whole rows (whole heads when permuting). When the output
 * type stores the source dtype bit for bit, raw bytes go through (permuted at the byte level);
 * otherwise chunks are decoded to f32 for the writer to encode.
 */
function tensorChunks(
  source: SourceTensor,
  plan: GgufTensorPlan,
  headDim: number,
  chunkElements: number,
  handle: (file: string) => Promise<FileHandle>,
): () => AsyncIterable<Float32Array | Uint8Array> {
  return async function* () {
    const vector = plan.shape.length === 1;
    const rowLength = vector ? (plan.shape[0] ?? 1) : (plan.shape[plan.shape.length - 1] ?? 1);
    const rows = vector ? 1 : (plan.shape[0] ?? 1);
    const unit = plan.permuteHeads !== undefined && !vector ? headDim : 1;
    const rowsPerChunk = Math.max(unit, Math.floor(chunkElements / rowLength / unit) * unit);
    const elementBytes = dtypeByteSize(source.dtype);
    const raw = SAME_BITS[source.dtype] === plan.type;
    const fh = await handle(source.file);
    for (let r = 0; r < rows; r += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, rows - r);
      const bytes = new Uint8Array(n * rowLength * elementBytes);
      let off = 0;
      const start = source.byteOffset + r * rowLength * elementBytes;
      while (off < bytes.length) {
        const { bytesRead } = await fh.read(bytes, off, bytes.length - off, start + off);
        if (bytesRead === 0) throw new GgufConversionError('TRUNCATED_SOURCE', `${source.file}: ${plan.hfName} runs past the end of the file`, plan.hfName);
        off += bytesRead;
      }
      // A 1-D bias permutes as headDim-row blocks of one element.
      const permuteRow = vector ? 1 : rowLength;
      if (raw) {
        yield plan.permuteHeads === undefined ? bytes : permuteRotaryRows(bytes, headDim, permuteRow * elementBytes);
      } else {
        const values = decodeToF32(source.dtype, bytes);
        yield plan.permuteHeads === undefined ? values : permuteRotaryRows(values, headDim, permuteRow);
      }
    }
  };
}

function hyperparameterEntries(hp: GgufHyperparameters, vocabRows: number): GgufMetadataEntry[] {
  const a = hp.arch;
  const u32 = (key: string, value: number): GgufMetadataEntry => ({ key: `${a}.${key}`, value: { type: 'uint32', value } });
  const f32 = (key: string, value: number): GgufMetadataEntry => ({ key: `${a}.${key}`, value: { type: 'float32', value } });
  const out = [
    u32('context_length', hp.contextLength),
    u32('embedding_length', hp.embeddingLength),
    u32('block_count', hp.blockCount),
    u32('feed_forward_length', hp.feedForwardLength),
    u32('attention.head_count', hp.headCount),
    u32('attention.head_count_kv', hp.headCountKv),
    f32('attention.layer_norm_rms_epsilon', hp.rmsEps),
    f32('rope.freq_base', hp.ropeFreqBase),
    u32('rope.dimension_count', hp.headDim),
    u32('vocab_size', vocabRows),
  ];
  if (hp.headDim * hp.headCount !== hp.embeddingLength) {
    out.push(u32('attention.key_length', hp.headDim), u32('attention.value_length', hp.headDim));
  }
  if (hp.ropeScaling !== undefined) {
    out.push({ key: `${a}.rope.scaling.type`, value: { type: 'string', value: hp.ropeScaling.type } });
    out.push(f32('rope.scaling.factor', hp.ropeScaling.factor));
    if (hp.ropeScaling.originalContextLength !== undefined) out.push(u32('rope.scaling.original_context_length', hp.ropeScaling.originalContextLength));
  }
  return out;
}

/**
 * Writes one checkpoint as a GGUF file, tensor by tensor (memory: one chunk at a time), with
 * tokenizer metadata prepared once by `prepareTokenizerMetadata`. Every check runs before the
 * output file is created; the file appears atomically (temp name, fsync, rename).
 */
export async function writeGguf(
  checkpoint: GgufSourceCheckpoint,
  tokenizer: GgufTokenizerMetadata,
  outFile: string,
  options: WriteGgufOptions = {},
): Promise<GgufWriteSummary> {
  const outType = options.outType ?? 'auto';
  if (!GGUF_OUT_TYPES.includes(outType)) throw new GgufConversionError('BAD_OUT_TYPE', `outType must be one of ${GGUF_OUT_TYPES.join(', ')}, got ${String(outType)}`);
  const chunkElements = options.chunkElements ?? 4 << 20;
  const hp = ggufHyperparameters(checkpoint.config);
  const plans = planGgufTensors(checkpoint, hp, outType);
  const vocabRows = plans[0]?.shape[0] ?? 0;
  const fileType = resolveOutType(outType, checkpoint.tensors);
  const name = options.name ?? path.basename(outFile).replace(/\.gguf$/i, '');
  const metadata: GgufMetadataEntry[] = [
    { key: 'general.architecture', value: { type: 'string', value: hp.arch } },
    { key: 'general.type', value: { type: 'string', value: 'model' } },
    { key: 'general.name', value: { type: 'string', value: name } },
    ...hyperparameterEntries(hp, vocabRows),
    { key: 'general.file_type', value: { type: 'uint32', value: FILE_TYPE[fileType] } },
    { key: 'general.quantization_version', value: { type: 'uint32', value: 2 } },
    ...tokenizerMetadataEntries(tokenizer, vocabRows),
  ];
  const handles = new Map<string, Promise<FileHandle>>();
  const handle = (file: string): Promise<FileHandle> => {
    let h = handles.get(file);
    if (h === undefined) {
      h = open(file, 'r');
      handles.set(file, h);
    }
    return h;
  };
  const specs: GgufTensorSpec[] = plans.map((p) => {
    const source = checkpoint.tensors.get(p.hfName);
    if (source === undefined) throw new GgufConversionError('MISSING_TENSOR', `checkpoint has no ${p.hfName}`, p.hfName);
    return { name: p.ggufName, shape: p.shape, type: p.type, data: tensorChunks(source, p, hp.headDim, chunkElements, handle) };
  });
  try {
    return await writeGgufFile(outFile, metadata, specs);
  } finally {
    for (const h of handles.values()) await (await h.catch(() => undefined))?.close();
  }
}

/**
 * One-shot conversion of an HF model folder: opens the checkpoint, converts its tokenizer and
 * writes the GGUF. A search converts the tokenizer once and calls `writeGguf` per candidate.
 */
export async function convertHfToGguf(
  hfDir: string,
  outFile: string,
  options: WriteGgufOptions & PrepareTokenizerOptions = {},
): Promise<GgufWriteSummary> {
  const checkpoint = await openCheckpoint(hfDir);
  const tokenizer = await prepareTokenizerMetadata(checkpoint.dir, options.pre === undefined ? {} : { pre: options.pre });
  return writeGguf(checkpoint, tokenizer, outFile, options);
}
