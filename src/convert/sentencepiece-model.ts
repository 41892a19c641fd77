import { EvoError } from '../errors.js';

/**
 * SentencePiece's `tokenizer.model` is a protobuf `ModelProto`. We read and write the few fields
 * a llama-style vocabulary needs with a hand-written wire codec (no protobuf dependency):
 *   ModelProto      1: repeated SentencePiece pieces, 2: TrainerSpec, 3: NormalizerSpec
 *   SentencePiece   1: piece (string), 2: score (float), 3: type (enum)
 *   TrainerSpec     3: model_type (1 unigram, 2 bpe), 4: vocab_size, 35: byte_fallback,
 *                   40: unk_id, 41: bos_id, 42: eos_id, 43: pad_id
 *   NormalizerSpec  1: name, 3: add_dummy_prefix, 4: remove_extra_whitespaces, 5: escape_whitespaces
 * Unknown fields are skipped on read, so real Llama/Mistral tokenizer.model files parse.
 */

/** SentencePiece piece types; the numbers are also GGUF's `tokenizer.ggml.token_type` values. */
export type PieceType = 'normal' | 'unknown' | 'control' | 'user_defined' | 'unused' | 'byte';

export const PIECE_TYPE_ID: Readonly<Record<PieceType, number>> = {
  normal: 1,
  unknown: 2,
  control: 3,
  user_defined: 4,
  unused: 5,
  byte: 6,
};

export interface SentencePiece {
  readonly piece: string;
  readonly score: number;
  readonly type: PieceType;
}

export interface SentencePieceModel {
  readonly pieces: readonly SentencePiece[];
  /** 'unigram' or 'bpe' (trainer_spec.model_type). Default: 'unigram' as in SentencePiece. */
  readonly modelType: 'unigram' | 'bpe' | 'word' | 'char';
  /** Special ids; -1 means absent (SentencePiece's convention). Defaults: unk 0, bos 1, eos 2, pad -1. */
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** Whether unknown characters fall back to <0xXX> byte pieces. Default: false. */
  readonly byteFallback: boolean;
  /** Prepend "▁" to the input (normalizer_spec.add_dummy_prefix). Default: true. */
  readonly addDummyPrefix: boolean;
  /** Collapse runs of whitespace (normalizer_spec.remove_extra_whitespaces). Default: true. */
  readonly removeExtraWhitespaces: boolean;
}

export class SentencePieceModelError extends EvoError {
  readonly file: string;
  constructor(code: string, file: string, message: string) {
    super(code, `${file}: ${message}`);
    this.name = 'SentencePieceModelError';
    this.file = file;
  }
}

const TYPE_BY_ID: ReadonlyMap<number, PieceType> = new Map(
  (Object.entries(PIECE_TYPE_ID) as [PieceType, number][]).map(([k, v]) => [v, k]),
);
const MODEL_TYPES = ['unigram', 'bpe', 'word', 'char'] as const;

interface Field {
  readonly field: number;
  readonly wire: number;
  /** Varint value (wire 0) or the raw bytes (wire 1, 2, 5). */
  readonly varint: bigint;
  readonly bytes: Uint8Array;
}

function* fields(buf: Uint8Array, file: string): Generator<Field> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new SentencePieceModelError('SPM_TRUNCATED', file, 'truncated varint');
      const b = buf[pos++] ?? 0;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new SentencePieceModelError('SPM_MALFORMED', file, 'varint longer than 10 bytes');
    }
  };
  const take = (n: number): Uint8Array => {
    if (n < 0 || pos + n > buf.length) throw new SentencePieceModelError('SPM_TRUNCATED', file, `field runs past the end (${n} bytes at ${pos})`);
    const out = buf.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  while (pos < buf.length) {
    const tag = varint();
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    switch (wire) {
      case 0:
        yield { field, wire, varint: varint(), bytes: new Uint8Array(0) };
        break;
      case 1:
        yield { field, wire, varint: 0n, bytes: take(8) };
        break;
      case 2: {
        const len = varint();
        if (len > BigInt(buf.length)) throw new SentencePieceModelError('SPM_TRUNCATED', file, `length ${len} exceeds the buffer`);
        yield { field, wire, varint: 0n, bytes: take(Number(len)) };
        break;
      }
      case 5:
        yield { field, wire, varint: 0n, bytes: take(4) };
        break;
      default:
        throw new SentencePieceModelError('SPM_MALFORMED', file, `unsupported protobuf wire type ${wire} (field ${field})`);
    }
  }
}

/** Protobuf int32 fields carry negative values as 64-bit two's complement varints. */
function toInt32(v: bigint): number {
  return Number(BigInt.asIntN(32, v));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses the bytes of a SentencePiece `tokenizer.model`. `file` names it in errors. */
export function parseSentencePieceModel(buf: Uint8Array, file: string): SentencePieceModel {
  const pieces: SentencePiece[] = [];
  let modelType: SentencePieceModel['modelType'] = 'unigram';
  let unkId = 0;
  let bosId = 1;
  let eosId = 2;
  let padId = -1;
  let byteFallback = false;
  let addDummyPrefix = true;
  let removeExtraWhitespaces = true;
  for (const f of fields(buf, file)) {
    if (f.field === 1 && f.wire === 2) {
      let piece: string | undefined;
      let score = 0;
      let type: PieceType = 'normal';
      for (const p of fields(f.bytes, file)) {
        if (p.field === 1 && p.wire === 2) {
          try {
            piece = utf8.decode(p.bytes);
          } catch {
            throw new SentencePieceModelError('SPM_MALFORMED', file, `piece ${pieces.length} is not valid UTF-8`);
          }
        } else if (p.field === 2 && p.wire === 5) {
          score = new DataView(p.bytes.buffer, p.bytes.byteOffset, 4).getFloat32(0, true);
        } else if (p.field === 3 && p.wire === 0) {
          const t = TYPE_BY_ID.get(toInt32(p.varint));
          if (t === undefined) throw new SentencePieceModelError('SPM_MALFORMED', file, `piece ${pieces.length} has unknown type ${p.varint}`);
          type = t;
        }
      }
      if (piece === undefined) throw new SentencePieceModelError('SPM_MALFORMED', file, `piece ${pieces.length} has no text`);
      pieces.push({ piece, score, type });
    } else if (f.field === 2 && f.wire === 2) {
      for (const t of fields(f.bytes, file)) {
        if (t.wire !== 0) continue;
        if (t.field === 3) {
          const m = MODEL_TYPES[toInt32(t.varint) - 1];
          if (m === undefined) throw new SentencePieceModelError('SPM_MALFORMED', file, `unknown model_type ${t.varint}`);
          modelType = m;
        } else if (t.field === 35) byteFallback = t.varint !== 0n;
        else if (t.field === 40) unkId = toInt32(t.varint);
        else if (t.field === 41) bosId = toInt32(t.varint);
        else if (t.field === 42) eosId = toInt32(t.varint);
        else if (t.field === 43) padId = toInt32(t.varint);
      }
    } else if (f.field === 3 && f.wire === 2) {
      for (const n of fields(f.bytes, file)) {
        if (n.wire !== 0) continue;
        if (n.field === 3) addDummyPrefix = n.varint !== 0n;
        else if (n.field === 4) removeExtraWhitespaces = n.varint !== 0n;
      }
    }
  }
  if (pieces.length === 0) throw new SentencePieceModelError('SPM_EMPTY', file, 'no pieces: not a SentencePiece model');
  return { pieces, modelType, unkId, bosId, eosId, padId, byteFallback, addDummyPrefix, removeExtraWhitespaces };
}

class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    const out: number[] = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      out.push(b);
    } while (x !== 0n);
    this.parts.push(Uint8Array.from(out));
  }
  private tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  int(field: number, v: number | boolean): this {
    this.tag(field, 0);
    this.varint(BigInt(typeof v === 'boolean' ? (v ? 1 : 0) : v));
    return this;
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(b);
    return this;
  }
  bytes(field: number, v: Uint8Array): this {
    this.tag(field, 2);
    this.varint(BigInt(v.length));
    this.parts.push(v);
    return this;
  }
  string(field: number, v: string): this {
    return this.bytes(field, new TextEncoder().encode(v));
  }
  finish(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

/** Serialises a model to `tokenizer.model` bytes that SentencePiece (and our parser) load. */
export function serializeSentencePieceModel(model: SentencePieceModel): Uint8Array {
  const root = new ProtoWriter();
  for (const p of model.pieces) {
    root.bytes(1, new ProtoWriter().string(1, p.piece).float(2, p.score).int(3, PIECE_TYPE_ID[p.type]).finish());
  }
  const trainer = new ProtoWriter()
    .int(3, MODEL_TYPES.indexOf(model.modelType) + 1)
    .int(4, model.pieces.length)
    .int(35, model.byteFallback)
    .int(40, model.unkId)
    .int(41, model.bosId)
    .int(42, model.eosId)
    .int(43, model.padId);
  root.bytes(2, trainer.finish());
  const normalizer = new ProtoWriter()
    .string(1, 'identity')
    .int(3, model.addDummyPrefix)
    .int(4, model.removeExtraWhitespaces)
    .int(5, true);
  root.bytes(3, normalizer.finish());
  return root.finish();
}
