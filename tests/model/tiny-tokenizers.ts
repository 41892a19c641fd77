import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { serializeSentencePieceModel } from '../../src/convert/sentencepiece-model.js';
import type { SentencePiece } from '../../src/convert/sentencepiece-model.js';

/**
 * Tiny but valid tokenizers that llama.cpp accepts, for random test models: a SentencePiece BPE
 * vocabulary (tokenizer.model, llama style: <unk> <s> </s>, 256 byte pieces, characters, merges)
 * and a byte-level BPE tokenizer.json (Qwen2 style: 256 byte symbols, merges, special tokens).
 * Both are built from the same merge list, so common English words become single tokens.
 */

/** Merges in priority order; "▁" is the word-start marker (SentencePiece) / "Ġ" in byte-level BPE. */
const MERGES: readonly (readonly [string, string])[] = [
  ['▁', 't'], ['h', 'e'], ['▁t', 'he'], ['▁', 'a'], ['i', 'n'], ['e', 'r'], ['a', 'n'], ['o', 'n'],
  ['▁', 's'], ['▁', 'w'], ['a', 's'], ['▁w', 'as'], ['▁a', 'n'], ['▁an', 'd'], ['▁', 'o'], ['▁', 'l'],
  ['i', 't'], ['▁', 'h'], ['e', 'd'], ['in', 'g'], ['▁', 'b'], ['o', 'u'], ['▁', 'p'], ['▁', 'f'],
  ['▁', 'c'], ['▁', 'd'], ['l', 'e'], ['▁', 'm'], ['r', 'e'], ['e', 'n'], ['a', 't'], ['o', 'r'],
  ['l', 'l'], ['i', 's'], ['▁t', 'o'], ['▁o', 'n'], ['▁s', 'he'], ['▁h', 'e'], ['▁', 'i'], ['▁i', 't'],
  ['▁', 'g'], ['a', 'y'], ['▁d', 'ay'], ['▁p', 'l'], ['▁pl', 'ay'], ['▁', 'n'], ['▁', 'r'], ['▁', 'y'],
  ['▁o', 'u'], ['▁ou', 't'], ['▁c', 'at'], ['▁d', 'og'], ['o', 'g'], ['▁s', 'a'], ['▁sa', 'w'], ['▁b', 'all'],
  ['a', 'll'], ['▁l', 'ittle'], ['i', 'tt'], ['t', 't'], ['tt', 'le'], ['itt', 'le'], ['▁', 'O'], ['▁O', 'n'],
  ['▁On', 'ce'], ['c', 'e'], ['▁u', 'p'], ['▁', 'u'],
];

const CHARS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'"-:;()'];

export interface TinySpmVocabulary {
  readonly pieces: readonly SentencePiece[];
  readonly size: number;
}

/** The SentencePiece vocabulary: ids 0–2 specials, 3–258 bytes, then characters and merges. */
export function tinySpmVocabulary(): TinySpmVocabulary {
  const pieces: SentencePiece[] = [
    { piece: '<unk>', score: 0, type: 'unknown' },
    { piece: '<s>', score: 0, type: 'control' },
    { piece: '</s>', score: 0, type: 'control' },
  ];
  for (let b = 0; b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: 'byte' });
  const seen = new Set(pieces.map((p) => p.piece));
  MERGES.forEach(([a, b], rank) => {
    const piece = a + b;
    if (!seen.has(piece)) {
      seen.add(piece);
      pieces.push({ piece, score: 0 - rank, type: 'normal' });
    }
  });
  ['▁', ...CHARS].forEach((c, i) => {
    if (!seen.has(c)) {
      seen.add(c);
      pieces.push({ piece: c, score: -1000 - i, type: 'normal' });
    }
  });
  return { pieces, size: pieces.length };
}

/** Writes tokenizer.model + tokenizer_config.json (and removes any tokenizer.json) in `dir`. */
export async function writeTinySpmTokenizer(dir: string): Promise<number> {
  const vocab = tinySpmVocabulary();
  const bytes = serializeSentencePieceModel({
    pieces: vocab.pieces,
    modelType: 'bpe',
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    byteFallback: true,
    addDummyPrefix: true,
    removeExtraWhitespaces: false,
  });
  await writeFile(path.join(dir, 'tokenizer.model'), bytes);
  await rm(path.join(dir, 'tokenizer.json'), { force: true });
  const config = { add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null, tokenizer_class: 'LlamaTokenizer' };
  await writeFile(path.join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return vocab.size;
}

/** GPT-2's reversible byte → printable character table used by byte-level BPE. */
export function byteLevelAlphabet(): string[] {
  const direct = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) table.push(String.fromCodePoint(direct(b) ? b : next++));
  return table;
}

export const QWEN2_PRE_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const BPE_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/** The byte-level BPE vocabulary in id order and its merges ("a b"). */
export function tinyBpeVocabulary(): { tokens: string[]; merges: string[] } {
  const tokens = byteLevelAlphabet();
  const seen = new Set(tokens);
  const g = (s: string): string => s.replaceAll('▁', 'Ġ');
  const merges: string[] = [];
  for (const [a, b] of MERGES) {
    const merged = g(a + b);
    if (seen.has(merged)) continue;
    seen.add(merged);
    tokens.push(merged);
    merges.push(`${g(a)} ${g(b)}`);
  }
  return { tokens, merges };
}

/** Writes a Qwen2-style tokenizer.json + tokenizer_config.json in `dir`; returns the vocabulary size. */
export async function writeTinyBpeTokenizer(dir: string): Promise<number> {
  const { tokens, merges } = tinyBpeVocabulary();
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const added = BPE_SPECIAL_TOKENS.map((content, i) => ({ id: tokens.length + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_PRE_REGEX }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  await writeFile(path.join(dir, 'tokenizer.json'), `${JSON.stringify(tokenizer)}\n`);
  await rm(path.join(dir, 'tokenizer.model'), { force: true });
  const config = { add_bos_token: false, add_prefix_space: false, bos_token: null, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: null, tokenizer_class: 'Qwen2Tokenizer' };
  await writeFile(path.join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return tokens.length + added.length;
}
