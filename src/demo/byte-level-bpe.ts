import path from 'node:path';
import { writeFileAtomic } from '../tensors/atomic-file.js';

/**
 * A byte-level BPE tokenizer trained on the demo's generated corpus, in the Hugging Face
 * tokenizer.json form that src/convert/tokenizer-gguf.ts converts (a Split pre-tokenizer with the
 * Qwen2 regex, so llama.cpp's `qwen2` pre-tokenizer splits text the same way). The Qwen2 regex
 * isolates every digit, so no merge ever joins digits and arithmetic is seen digit by digit.
 * Training is a pure function of the texts; encoding matches llama.cpp's BPE (lowest merge rank
 * first, leftmost on ties), which tests/demo/tokenizer-llamacpp.test.ts checks.
 */

/** The Qwen2 split regex as written in tokenizer.json (llama.cpp names it `qwen2`). */
export const QWEN2_SPLIT_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The same regex in JavaScript syntax: (?i:…) spelled out, since Node 20 lacks inline modifiers.
const SPLIT = /'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

export const BOS_TOKEN = '<|bos|>';
export const EOS_TOKEN = '<|endoftext|>';

/** GPT-2's reversible byte → printable character table. */
function byteAlphabet(): string[] {
  const direct = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) table.push(String.fromCodePoint(direct(b) ? b : next++));
  return table;
}

const ALPHABET = byteAlphabet();

/** Splits text into pre-tokens, each as its byte-level string. */
export function preTokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(SPLIT)) {
    let s = '';
    for (const b of Buffer.from(m[0], 'utf8')) s += ALPHABET[b] ?? '';
    out.push(s);
  }
  return out;
}

export interface BpeVocabulary {
  /** Token strings by id: 256 byte symbols, merges in rank order, then BOS and EOS. */
  readonly tokens: readonly string[];
  /** "left right" in rank order. */
  readonly merges: readonly string[];
  readonly bosId: number;
  readonly eosId: number;
}

/**
 * Learns up to `vocabSize − 258` merges from `texts`: each step merges the most frequent adjacent
 * pair (ties: the lexicographically smallest), skipping pairs whose result is already a token.
 */
export function trainBpe(texts: Iterable<string>, vocabSize: number): BpeVocabulary {
  const maxMerges = vocabSize - 256 - 2;
  if (maxMerges < 0) throw new RangeError(`trainBpe: vocabSize must be at least 258, got ${vocabSize}`);
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of preTokenize(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([w, n]) => ({ symbols: [...w], n }));
  const tokens = [...ALPHABET];
  const known = new Set(tokens);
  const merges: string[] = [];
  while (merges.length < maxMerges) {
    const pairs = new Map<string, number>();
    for (const { symbols, n } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const a = symbols[i] ?? '';
        const b = symbols[i + 1] ?? '';
        if (known.has(a + b)) continue;
        const key = `${a} ${b}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestCount = 1; // a pair seen once is not worth a token
    for (const [key, n] of pairs) if (n > bestCount || (n === bestCount && best !== undefined && key < best)) [best, bestCount] = [key, n];
    if (best === undefined) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push(best);
    tokens.push(a + b);
    known.add(a + b);
    for (const w of words) w.symbols = mergePair(w.symbols, a, b);
  }
  tokens.push(BOS_TOKEN, EOS_TOKEN);
  return { tokens, merges, bosId: tokens.length - 2, eosId: tokens.length - 1 };
}

function mergePair(symbols: readonly string[], a: string, b: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (symbols[i] === a && symbols[i + 1] === b) {
      out.push(a + b);
      i++;
    } else out.push(symbols[i] ?? '');
  }
  return out;
}

/** Encodes text (no special tokens) as llama.cpp does with this vocabulary. */
export class BpeEncoder {
  readonly vocabulary: BpeVocabulary;
  readonly #ids: ReadonlyMap<string, number>;
  readonly #rank: ReadonlyMap<string, number>;
  readonly #cache = new Map<string, readonly number[]>();

  constructor(vocabulary: BpeVocabulary) {
    this.vocabulary = vocabulary;
    this.#ids = new Map(vocabulary.tokens.map((t, i) => [t, i]));
    this.#rank = new Map(vocabulary.merges.map((m, i) => [m, i]));
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const w of preTokenize(text)) out.push(...this.#word(w));
    return out;
  }

  #word(w: string): readonly number[] {
    const hit = this.#cache.get(w);
    if (hit !== undefined) return hit;
    let symbols = [...w];
    for (;;) {
      let bestRank = Infinity;
      let at = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = this.#rank.get(`${symbols[i] ?? ''} ${symbols[i + 1] ?? ''}`);
        if (r !== undefined && r < bestRank) [bestRank, at] = [r, i];
      }
      if (at < 0) break;
      symbols = mergePair(symbols, symbols[at] ?? '', symbols[at + 1] ?? '');
    }
    const ids = symbols.map((s) => {
      const id = this.#ids.get(s);
      if (id === undefined) throw new RangeError(`BpeEncoder: symbol ${JSON.stringify(s)} is not in the vocabulary`);
      return id;
    });
    this.#cache.set(w, ids);
    return ids;
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const t = this.vocabulary.tokens[id];
      if (t === undefined || id === this.vocabulary.bosId || id === this.vocabulary.eosId) continue;
      for (const ch of t) bytes.push(ALPHABET.indexOf(ch));
    }
    return Buffer.from(bytes).toString('utf8');
  }
}

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** tokenizer.json (Hugging Face tokenizers format) for the vocabulary. */
export function tokenizerJson(v: BpeVocabulary): JsonValue {
  const vocab: Record<string, number> = {};
  v.tokens.forEach((t, i) => {
    if (i < v.bosId) vocab[t] = i;
  });
  const special = (id: number, content: string): JsonValue => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(v.bosId, BOS_TOKEN), special(v.eosId, EOS_TOKEN)],
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_SPLIT_REGEX }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: BOS_TOKEN, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: BOS_TOKEN, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [BOS_TOKEN]: { id: BOS_TOKEN, ids: [v.bosId], tokens: [BOS_TOKEN] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [...v.merges] },
  };
}

/** tokenizer_config.json: BOS added in front of every text, as the family was trained. */
export function tokenizerConfigJson(): JsonValue {
  return { add_bos_token: true, add_eos_token: false, add_prefix_space: false, bos_token: BOS_TOKEN, eos_token: EOS_TOKEN, pad_token: EOS_TOKEN, unk_token: null, model_max_length: 256, tokenizer_class: 'PreTrainedTokenizerFast' };
}

/** Reads a vocabulary back from tokenizer.json text (the committed family's). */
export function vocabularyFromTokenizerJson(text: string, file: string): BpeVocabulary {
  const j = JSON.parse(text) as { model?: { vocab?: Record<string, number>; merges?: unknown[] }; added_tokens?: { id: number; content: string }[] };
  const vocab = j.model?.vocab;
  const merges = j.model?.merges;
  if (vocab === undefined || !Array.isArray(merges)) throw new RangeError(`${file}: model.vocab and model.merges expected`);
  const tokens: string[] = [];
  for (const [t, id] of Object.entries(vocab)) tokens[id] = t;
  const bos = j.added_tokens?.find((a) => a.content === BOS_TOKEN);
  const eos = j.added_tokens?.find((a) => a.content === EOS_TOKEN);
  if (bos === undefined || eos === undefined) throw new RangeError(`${file}: added_tokens must hold ${BOS_TOKEN} and ${EOS_TOKEN}`);
  tokens[bos.id] = BOS_TOKEN;
  tokens[eos.id] = EOS_TOKEN;
  return { tokens, merges: merges.map((m) => (Array.isArray(m) ? m.join(' ') : String(m))), bosId: bos.id, eosId: eos.id };
}

/** Writes dir/tokenizer.json and dir/tokenizer_config.json atomically. */
export async function writeTokenizerFiles(dir: string, v: BpeVocabulary): Promise<void> {
  await writeFileAtomic(path.join(dir, 'tokenizer.json'), `${JSON.stringify(tokenizerJson(v))}\n`);
  await writeFileAtomic(path.join(dir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfigJson(), null, 2)}\n`);
}
