import { mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { writeFileAtomic } from '../tensors/atomic-file.js';
import { SafetensorsWriter } from '../tensors/safetensors-writer.js';
import { unpermuteRotaryRows } from './rotary-layout.js';
import { serializeSentencePieceModel } from './sentencepiece-model.js';
import type { PieceType, SentencePiece } from './sentencepiece-model.js';

/**
 * llama2.c checkpoints (Karpathy's tinyllamas, e.g. stories260K) → a Hugging Face Llama folder:
 * config.json, model.safetensors (F32), tokenizer.model (SentencePiece), tokenizer_config.json,
 * generation_config.json. The folder then goes through the ordinary HF → GGUF path.
 *
 * Legacy (version 0) checkpoint: 7 little-endian int32 — dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size (negative: a separate classifier follows), seq_len — then f32 arrays:
 * token embeddings [vocab, dim]; per-layer stacks of attention norms [L, dim], wq [L, dim, dim],
 * wk [L, kv, dim], wv [L, kv, dim], wo [L, dim, dim], ffn norms [L, dim], w1 [L, hidden, dim],
 * w2 [L, dim, hidden], w3 [L, hidden, dim]; the final norm [dim]; the RoPE tables
 * [seq_len, head/2] twice (skipped); and the classifier [vocab, dim] when not shared.
 * Matrices are [out, in] as in PyTorch. q/k rows are in Meta's adjacent-pairs RoPE layout and
 * are permuted to HF's rotate-half layout. llama2.c uses RMSNorm eps 1e-5 and RoPE theta 10000.
 *
 * Tokenizer (tok*.bin): int32 max token length, then per token f32 score, int32 byte length,
 * bytes. llama2.c's exporter wrote "▁" as a space and BOS/EOS as "\n<s>\n" / "\n</s>\n"; both
 * are undone here.
 */

export interface Llama2cParams {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly sharedClassifier: boolean;
}

export class Llama2cError extends EvoError {
  readonly file: string;
  constructor(code: string, file: string, message: string) {
    super(code, `${file}: ${message}`);
    this.name = 'Llama2cError';
    this.file = file;
  }
}

const HEADER_BYTES = 28;
const V1_MAGIC = 0x616b3432; // "ak42": the versioned llama2.c export formats

/** Reads and checks a legacy llama2.c header against the file size. */
export async function readLlama2cParams(file: string): Promise<Llama2cParams> {
  const fh = await open(file, 'r');
  let header: Buffer;
  let size: number;
  try {
    size = (await fh.stat()).size;
    header = Buffer.alloc(HEADER_BYTES);
    if (size < HEADER_BYTES) throw new Llama2cError('LLAMA2C_TRUNCATED', file, `${size} bytes is shorter than the 28-byte header`);
    await fh.read(header, 0, HEADER_BYTES, 0);
  } finally {
    await fh.close();
  }
  if (header.readUInt32LE(0) === V1_MAGIC) {
    throw new Llama2cError('LLAMA2C_UNSUPPORTED_VERSION', file, 'versioned llama2.c exports (magic "ak42") are not supported; export with --version 0 (legacy)');
  }
  const v = [0, 1, 2, 3, 4, 5, 6].map((i) => header.readInt32LE(i * 4));
  const [dim = 0, hiddenDim = 0, nLayers = 0, nHeads = 0, nKvHeads = 0, vocab = 0, seqLen = 0] = v;
  const params: Llama2cParams = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedClassifier: vocab > 0 };
  for (const [k, x] of Object.entries({ dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab: Math.abs(vocab), seqLen })) {
    if (x <= 0) throw new Llama2cError('LLAMA2C_BAD_HEADER', file, `${k} must be positive, got ${x}`);
  }
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0 || (dim / nHeads) % 2 !== 0) {
    throw new Llama2cError('LLAMA2C_BAD_HEADER', file, `dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads} do not give whole, even heads`);
  }
  const expected = HEADER_BYTES + 4 * layoutElements(params);
  if (size !== expected) {
    throw new Llama2cError('LLAMA2C_SIZE_MISMATCH', file, `${size} bytes, but the header (${JSON.stringify(params)}) implies ${expected}`);
  }
  return params;
}

interface Segment {
  /** HF tensor name, or undefined for data that is skipped (RoPE tables). */
  readonly name: string | undefined;
  readonly shape: readonly number[];
  /** Heads of this tensor when its rows need the rotary permutation. */
  readonly rotaryHeads?: number;
}

/** The tensors of a legacy checkpoint in file order, split per layer. */
function layout(p: Llama2cParams): Segment[] {
  const head = p.dim / p.nHeads;
  const kv = p.nKvHeads * head;
  const perLayer = (suffix: string, shape: number[], rotaryHeads?: number): Segment[] =>
    Array.from({ length: p.nLayers }, (_, i) => ({ name: `model.layers.${i}.${suffix}`, shape, ...(rotaryHeads === undefined ? {} : { rotaryHeads }) }));
  const segments: Segment[] = [
    { name: 'model.embed_tokens.weight', shape: [p.vocabSize, p.dim] },
    ...perLayer('input_layernorm.weight', [p.dim]),
    ...perLayer('self_attn.q_proj.weight', [p.dim, p.dim], p.nHeads),
    ...perLayer('self_attn.k_proj.weight', [kv, p.dim], p.nKvHeads),
    ...perLayer('self_attn.v_proj.weight', [kv, p.dim]),
    ...perLayer('self_attn.o_proj.weight', [p.dim, p.dim]),
    ...perLayer('post_attention_layernorm.weight', [p.dim]),
    ...perLayer('mlp.gate_proj.weight', [p.hiddenDim, p.dim]),
    ...perLayer('mlp.down_proj.weight', [p.dim, p.hiddenDim]),
    ...perLayer('mlp.up_proj.weight', [p.hiddenDim, p.dim]),
    { name: 'model.norm.weight', shape: [p.dim] },
    { name: undefined, shape: [2, p.seqLen, head / 2] },
  ];
  if (!p.sharedClassifier) segments.push({ name: 'lm_head.weight', shape: [p.vocabSize, p.dim] });
  return segments;
}

function layoutElements(p: Llama2cParams): number {
  return layout(p).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
}

/** Reads a llama2.c tokenizer file into SentencePiece pieces (spaces back to "▁", specials renamed). */
export async function readLlama2cTokenizer(file: string, vocabSize: number): Promise<SentencePiece[]> {
  const buf = await readFile(file);
  let pos = 4; // max_token_length, not needed
  const pieces: SentencePiece[] = [];
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  for (let id = 0; id < vocabSize; id++) {
    if (pos + 8 > buf.length) throw new Llama2cError('LLAMA2C_TRUNCATED', file, `ends after ${id} of ${vocabSize} tokens`);
    const score = buf.readFloatLE(pos);
    const len = buf.readInt32LE(pos + 4);
    pos += 8;
    if (len < 0 || pos + len > buf.length) throw new Llama2cError('LLAMA2C_TRUNCATED', file, `token ${id} has a bad length ${len}`);
    let text: string;
    try {
      text = utf8.decode(buf.subarray(pos, pos + len));
    } catch {
      throw new Llama2cError('LLAMA2C_BAD_TOKEN', file, `token ${id} is not valid UTF-8`);
    }
    pos += len;
    let type: PieceType = 'normal';
    let piece = text.replaceAll(' ', '▁');
    if (id === 0 && text === '<unk>') type = 'unknown';
    else if (id === 1 && text.trim() === '<s>') [type, piece] = ['control', '<s>'];
    else if (id === 2 && text.trim() === '</s>') [type, piece] = ['control', '</s>'];
    else if (/^<0x[0-9A-F]{2}>$/.test(text)) type = 'byte';
    pieces.push({ piece, score, type });
  }
  if (pos !== buf.length) throw new Llama2cError('LLAMA2C_SIZE_MISMATCH', file, `${buf.length - pos} bytes left after ${vocabSize} tokens (wrong vocabulary?)`);
  return pieces;
}

export interface ConvertLlama2cOptions {
  /** `max_position_embeddings`. Default: the checkpoint's seq_len. */
  readonly maxPositionEmbeddings?: number;
}

/**
 * Converts a llama2.c checkpoint and its tokenizer into an HF Llama folder at `outDir` (created
 * if needed). Reads one tensor at a time; every file is written atomically.
 */
export async function convertLlama2cToHf(checkpointFile: string, tokenizerFile: string, outDir: string, options: ConvertLlama2cOptions = {}): Promise<Llama2cParams> {
  const p = await readLlama2cParams(checkpointFile);
  const pieces = await readLlama2cTokenizer(tokenizerFile, p.vocabSize);
  const segments = layout(p);
  await mkdir(outDir, { recursive: true });
  if (!(await stat(outDir)).isDirectory()) throw new Llama2cError('LLAMA2C_BAD_OUTPUT', outDir, 'not a directory');

  const tensors = segments.flatMap((s) => (s.name === undefined ? [] : [{ name: s.name, dtype: 'F32' as const, shape: s.shape }]));
  const writer = await SafetensorsWriter.create(path.join(outDir, 'model.safetensors'), tensors, { format: 'pt' });
  const fh = await open(checkpointFile, 'r');
  try {
    let offset = HEADER_BYTES;
    for (const s of segments) {
      const elements = s.shape.reduce((a, b) => a * b, 1);
      if (s.name !== undefined) {
        const bytes = new Uint8Array(elements * 4);
        const { bytesRead } = await fh.read(bytes, 0, bytes.length, offset);
        if (bytesRead !== bytes.length) throw new Llama2cError('LLAMA2C_TRUNCATED', checkpointFile, `${s.name} runs past the end of the file`);
        let values: Float32Array = new Float32Array(bytes.buffer, 0, elements);
        if (s.rotaryHeads !== undefined) values = unpermuteRotaryRows(values, p.dim / p.nHeads, p.dim);
        await writer.writeTensor(s.name, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      }
      offset += elements * 4;
    }
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    await fh.close();
  }

  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: p.dim,
    intermediate_size: p.hiddenDim,
    num_hidden_layers: p.nLayers,
    num_attention_heads: p.nHeads,
    num_key_value_heads: p.nKvHeads,
    vocab_size: p.vocabSize,
    max_position_embeddings: options.maxPositionEmbeddings ?? p.seqLen,
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: p.sharedClassifier,
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
  const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;
  await writeFileAtomic(path.join(outDir, 'config.json'), json(config));
  await writeFileAtomic(path.join(outDir, 'generation_config.json'), json({ bos_token_id: 1, eos_token_id: 2 }));
  const model = serializeSentencePieceModel({
    pieces,
    modelType: 'bpe',
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    byteFallback: pieces.some((x) => x.type === 'byte'),
    addDummyPrefix: true,
    removeExtraWhitespaces: false,
  });
  await writeFileAtomic(path.join(outDir, 'tokenizer.model'), model);
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    model_max_length: config.max_position_embeddings,
    tokenizer_class: 'LlamaTokenizer',
  };
  await writeFileAtomic(path.join(outDir, 'tokenizer_config.json'), json(tokenizerConfig));
  return p;
}
