import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { EvoError } from '../errors.js';
import type { GgufMetadataEntry } from '../tensors/gguf.js';
import { PIECE_TYPE_ID, parseSentencePieceModel } from './sentencepiece-model.js';

/**
 * Tokenizer conversion for GGUF, done once per run and reused for every candidate (all
 * candidates of a merge share the base model's tokenizer). The result is plain JSON-able data.
 *
 * Two llama.cpp vocabulary kinds are produced:
 * - `llama` (SentencePiece): from `tokenizer.model`, or from a `tokenizer.json` BPE model with
 *   byte_fallback (the HF form of a SentencePiece BPE vocabulary). tokens, scores, token types.
 * - `gpt2` (byte-level BPE): from `tokenizer.json`; tokens, token types, merges and the
 *   pre-tokenizer name `tokenizer.ggml.pre`, which llama.cpp uses to pick its split regex.
 */

/** GGUF token types (`tokenizer.ggml.token_type`), the same numbers as SentencePiece's piece types. */
export const TOKEN_TYPE = PIECE_TYPE_ID;

export interface GgufTokenizerMetadata {
  readonly model: 'llama' | 'gpt2';
  /** llama.cpp pre-tokenizer name (`gpt2` vocabularies only), e.g. `gpt-2`, `llama-bpe`, `qwen2`. */
  readonly pre?: string;
  readonly tokens: readonly string[];
  /** Merge priorities (`llama` vocabularies only): higher merges first. */
  readonly scores?: readonly number[];
  readonly tokenTypes: readonly number[];
  /** `"left right"` pairs in priority order (`gpt2` vocabularies only). */
  readonly merges?: readonly string[];
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly unknownTokenId?: number;
  readonly paddingTokenId?: number;
  readonly addBosToken?: boolean;
  readonly addEosToken?: boolean;
  /** Prepend a space (SentencePiece's add_dummy_prefix); `llama` vocabularies only. */
  readonly addSpacePrefix?: boolean;
  readonly chatTemplate?: string;
}

export interface PrepareTokenizerOptions {
  /**
   * llama.cpp pre-tokenizer name for byte-level BPE vocabularies. Default: detected from
   * tokenizer.json's pre_tokenizer regex (GPT-2, Llama-3 and Qwen2 patterns are known).
   */
  readonly pre?: string;
}

export class TokenizerConversionError extends EvoError {
  readonly file: string;
  constructor(code: string, file: string, message: string) {
    super(code, `${file}: ${message}`);
    this.name = 'TokenizerConversionError';
    this.file = file;
  }
}

// Pre-tokenizer split regexes as they appear in tokenizer.json, mapped to llama.cpp's names for them.
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const KNOWN_PRE_REGEX: ReadonlyMap<string, string> = new Map([
  [GPT2_REGEX, 'gpt-2'],
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    'llama-bpe',
  ],
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    'qwen2',
  ],
]);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function readJson(file: string): Promise<JsonObject | undefined> {
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new TokenizerConversionError('TOKENIZER_BAD_JSON', file, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TokenizerConversionError('TOKENIZER_BAD_JSON', file, 'expected a JSON object');
  }
  return parsed as JsonObject;
}

/** A special token in tokenizer_config.json: a string or an AddedToken object `{content: …}`. */
function specialTokenText(v: Json | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

interface AddedToken {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
}

function addedTokens(tokenizerJson: JsonObject | undefined, file: string): AddedToken[] {
  const list = tokenizerJson?.added_tokens;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new TokenizerConversionError('TOKENIZER_BAD_JSON', file, 'added_tokens must be an array');
  return list.map((t, i) => {
    if (!isObject(t) || typeof t.id !== 'number' || typeof t.content !== 'string') {
      throw new TokenizerConversionError('TOKENIZER_BAD_JSON', file, `added_tokens[${i}] needs a numeric id and a string content`);
    }
    return { id: t.id, content: t.content, special: t.special === true };
  });
}

interface SpecialIds {
  bosTokenId?: number;
  eosTokenId?: number;
  unknownTokenId?: number;
  paddingTokenId?: number;
  addBosToken?: boolean;
  addEosToken?: boolean;
  chatTemplate?: string;
}

/** Special ids and flags from tokenizer_config.json, tokenizer.json's post-processor and config.json. */
function specialIds(
  tokenIds: ReadonlyMap<string, number>,
  tokenizerConfig: JsonObject | undefined,
  tokenizerJson: JsonObject | undefined,
  modelConfig: JsonObject | undefined,
): SpecialIds {
  const out: SpecialIds = {};
  const byName = (key: string): number | undefined => {
    const text = specialTokenText(tokenizerConfig?.[key]);
    return text === undefined ? undefined : tokenIds.get(text);
  };
  const configId = (key: string): number | undefined => {
    const v = modelConfig?.[key];
    if (typeof v === 'number') return v;
    if (Array.isArray(v) && typeof v[0] === 'number') return v[0];
    return undefined;
  };
  const bos = byName('bos_token') ?? configId('bos_token_id');
  const eos = byName('eos_token') ?? configId('eos_token_id');
  const unk = byName('unk_token');
  const pad = byName('pad_token') ?? configId('pad_token_id');
  if (bos !== undefined) out.bosTokenId = bos;
  if (eos !== undefined) out.eosTokenId = eos;
  if (unk !== undefined) out.unknownTokenId = unk;
  if (pad !== undefined) out.paddingTokenId = pad;

  // add_bos/add_eos: explicit flags win; else read them off a TemplateProcessing post-processor.
  if (typeof tokenizerConfig?.add_bos_token === 'boolean') out.addBosToken = tokenizerConfig.add_bos_token;
  if (typeof tokenizerConfig?.add_eos_token === 'boolean') out.addEosToken = tokenizerConfig.add_eos_token;
  const post = tokenizerJson?.post_processor;
  const templates = isObject(post) && post.type === 'Sequence' && Array.isArray(post.processors) ? post.processors : [post];
  for (const p of templates) {
    if (!isObject(p) || p.type !== 'TemplateProcessing' || !Array.isArray(p.single)) continue;
    const first = p.single[0];
    const last = p.single[p.single.length - 1];
    const specialId = (item: Json | undefined): number | undefined => {
      if (!isObject(item) || !isObject(item.SpecialToken) || typeof item.SpecialToken.id !== 'string') return undefined;
      return tokenIds.get(item.SpecialToken.id);
    };
    const firstId = specialId(first);
    const lastId = specialId(last);
    if (out.addBosToken === undefined) out.addBosToken = firstId !== undefined;
    if (out.addEosToken === undefined) out.addEosToken = lastId !== undefined && p.single.length > 1;
    if (firstId !== undefined && out.bosTokenId === undefined) out.bosTokenId = firstId;
  }
  const template = tokenizerConfig?.chat_template;
  if (typeof template === 'string') out.chatTemplate = template;
  else if (Array.isArray(template)) {
    const def = template.find((t) => isObject(t) && t.name === 'default');
    if (isObject(def) && typeof def.template === 'string') out.chatTemplate = def.template;
  }
  return out;
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Fills gaps in an id → token table with `[PAD<id>]` unused tokens, as llama.cpp's converter does. */
function denseTokens(byId: Map<number, { text: string; type: number; score: number }>, file: string) {
  let max = -1;
  for (const id of byId.keys()) {
    if (!Number.isSafeInteger(id) || id < 0) throw new TokenizerConversionError('TOKENIZER_BAD_ID', file, `token id ${id} is not a non-negative integer`);
    max = Math.max(max, id);
  }
  const tokens: string[] = [];
  const types: number[] = [];
  const scores: number[] = [];
  for (let id = 0; id <= max; id++) {
    const t = byId.get(id);
    tokens.push(t?.text ?? `[PAD${id}]`);
    types.push(t?.type ?? TOKEN_TYPE.unused);
    scores.push(t?.score ?? 0);
  }
  return { tokens, types, scores };
}

function tokenMap(tokens: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (!m.has(t)) m.set(t, i);
  });
  return m;
}

function fromSentencePiece(bytes: Uint8Array, file: string, tokenizerJson: JsonObject | undefined, jsonFile: string) {
  const spm = parseSentencePieceModel(bytes, file);
  const byId = new Map<number, { text: string; type: number; score: number }>();
  spm.pieces.forEach((p, id) => byId.set(id, { text: p.piece, type: PIECE_TYPE_ID[p.type], score: p.score }));
  // Tokens added on top of the SentencePiece vocabulary (chat markers, etc.).
  for (const a of addedTokens(tokenizerJson, jsonFile)) {
    const existing = byId.get(a.id);
    if (existing !== undefined) {
      if (existing.text !== a.content) {
        throw new TokenizerConversionError('TOKENIZER_CONFLICT', jsonFile, `added token ${a.id} ${JSON.stringify(a.content)} differs from tokenizer.model's ${JSON.stringify(existing.text)}`);
      }
      continue;
    }
    byId.set(a.id, { text: a.content, type: a.special ? TOKEN_TYPE.control : TOKEN_TYPE.user_defined, score: -1000 });
  }
  const dense = denseTokens(byId, file);
  const defaults: SpecialIds = { addBosToken: true, addEosToken: false };
  if (spm.bosId >= 0) defaults.bosTokenId = spm.bosId;
  if (spm.eosId >= 0) defaults.eosTokenId = spm.eosId;
  if (spm.unkId >= 0) defaults.unknownTokenId = spm.unkId;
  if (spm.padId >= 0) defaults.paddingTokenId = spm.padId;
  return { dense, defaults, addSpacePrefix: spm.addDummyPrefix };
}

function mergesOf(model: JsonObject, file: string): string[] {
  const merges = model.merges ?? [];
  if (!Array.isArray(merges)) throw new TokenizerConversionError('TOKENIZER_BAD_JSON', file, 'model.merges must be an array');
  return merges.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return `${m[0]} ${m[1]}`;
    throw new TokenizerConversionError('TOKENIZER_BAD_JSON', file, `model.merges[${i}] must be "a b" or ["a", "b"]`);
  });
}

function vocabOf(model: JsonObject, file: string): Map<number, string> {
  const vocab = model.vocab;
  if (!isObject(vocab)) throw new TokenizerConversionError('TOKENIZER_BAD_JSON', file, 'model.vocab must be an object of token → id');
  const byId = new Map<number, string>();
  for (const [text, id] of Object.entries(vocab)) {
    if (typeof id !== 'number') throw new TokenizerConversionError('TOKENIZER_BAD_JSON', file, `model.vocab[${JSON.stringify(text)}] is not a number`);
    if (byId.has(id)) throw new TokenizerConversionError('TOKENIZER_BAD_ID', file, `token id ${id} is used twice`);
    byId.set(id, text);
  }
  return byId;
}

/** Finds llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer.json. */
function detectPre(tokenizerJson: JsonObject, file: string): string {
  const pre = tokenizerJson.pre_tokenizer;
  const steps = isObject(pre) && pre.type === 'Sequence' && Array.isArray(pre.pretokenizers) ? pre.pretokenizers : [pre];
  let regex: string | undefined;
  for (const s of steps) {
    if (!isObject(s)) continue;
    if (s.type === 'Split' && isObject(s.pattern) && typeof s.pattern.Regex === 'string') regex ??= s.pattern.Regex;
    if (s.type === 'ByteLevel' && s.use_regex !== false) regex ??= GPT2_REGEX;
  }
  if (regex === undefined) throw new TokenizerConversionError('TOKENIZER_UNKNOWN_PRE', file, 'no pre-tokenizer split regex found; pass the llama.cpp pre-tokenizer name explicitly');
  const name = KNOWN_PRE_REGEX.get(regex);
  if (name === undefined) {
    throw new TokenizerConversionError('TOKENIZER_UNKNOWN_PRE', file, `pre-tokenizer regex ${JSON.stringify(regex)} is not one we know; pass the llama.cpp pre-tokenizer name explicitly`);
  }
  return name;
}

function addsSpacePrefix(tokenizerJson: JsonObject): boolean {
  const seq = (v: Json | undefined, key: string): Json[] => (isObject(v) && v.type === 'Sequence' && Array.isArray(v[key]) ? (v[key] as Json[]) : [v ?? null]);
  for (const n of seq(tokenizerJson.normalizer, 'normalizers')) if (isObject(n) && n.type === 'Prepend' && n.prepend === '▁') return true;
  for (const p of seq(tokenizerJson.pre_tokenizer, 'pretokenizers')) {
    if (isObject(p) && p.type === 'Metaspace') return p.prepend_scheme === 'first' || p.prepend_scheme === 'always' || p.add_prefix_space === true;
  }
  return false;
}

function fromTokenizerJson(tokenizerJson: JsonObject, file: string, options: PrepareTokenizerOptions) {
  const model = tokenizerJson.model;
  if (!isObject(model) || model.type !== 'BPE') {
    const type = isObject(model) ? String(model.type) : 'missing';
    throw new TokenizerConversionError('TOKENIZER_UNSUPPORTED', file, `model.type ${type} is not supported (BPE only; a tokenizer.model is needed for SentencePiece unigram)`);
  }
  const vocab = vocabOf(model, file);
  const merges = mergesOf(model, file);
  const added = addedTokens(tokenizerJson, file);
  const addedById = new Map(added.map((a) => [a.id, a]));
  const byteFallback = model.byte_fallback === true;
  const unk = typeof model.unk_token === 'string' ? model.unk_token : undefined;
  const byId = new Map<number, { text: string; type: number; score: number }>();
  // SentencePiece-style BPE ranks merges by the score of the merged token: score = -(merge rank).
  const mergeRank = new Map<string, number>();
  if (byteFallback) {
    merges.forEach((m, rank) => {
      const merged = m.replace(' ', '');
      if (!mergeRank.has(merged)) mergeRank.set(merged, rank);
    });
  }
  for (const [id, text] of vocab) {
    let type: number = TOKEN_TYPE.normal;
    if (byteFallback && /^<0x[0-9A-Fa-f]{2}>$/.test(text)) type = TOKEN_TYPE.byte;
    if (text === unk) type = TOKEN_TYPE.unknown;
    const a = addedById.get(id);
    if (a !== undefined) type = a.special ? TOKEN_TYPE.control : TOKEN_TYPE.user_defined;
    const rank = mergeRank.get(text);
    const score = rank !== undefined ? 0 - rank : [...text].length > 1 && type === TOKEN_TYPE.normal ? -(merges.length + id) : 0;
    byId.set(id, { text, type, score });
  }
  for (const a of added) {
    if (byId.has(a.id)) continue;
    byId.set(a.id, { text: a.content, type: a.special ? TOKEN_TYPE.control : TOKEN_TYPE.user_defined, score: 0 });
  }
  const dense = denseTokens(byId, file);
  if (byteFallback) return { kind: 'llama' as const, dense, addSpacePrefix: addsSpacePrefix(tokenizerJson) };
  return { kind: 'gpt2' as const, dense, merges, pre: options.pre ?? detectPre(tokenizerJson, file) };
}

/**
 * Reads an HF model folder's tokenizer (tokenizer.model preferred, else tokenizer.json, plus
 * tokenizer_config.json and config.json for special tokens) into GGUF tokenizer metadata.
 */
export async function prepareTokenizerMetadata(hfDir: string, options: PrepareTokenizerOptions = {}): Promise<GgufTokenizerMetadata> {
  const spmFile = path.join(hfDir, 'tokenizer.model');
  const jsonFile = path.join(hfDir, 'tokenizer.json');
  const tokenizerJson = await readJson(jsonFile);
  const tokenizerConfig = await readJson(path.join(hfDir, 'tokenizer_config.json'));
  const modelConfig = await readJson(path.join(hfDir, 'config.json'));

  if (existsSync(spmFile)) {
    const { dense, defaults, addSpacePrefix } = fromSentencePiece(await readFile(spmFile), spmFile, tokenizerJson, jsonFile);
    const ids = specialIds(tokenMap(dense.tokens), tokenizerConfig, tokenizerJson, modelConfig);
    return withoutUndefined({
      model: 'llama',
      tokens: dense.tokens,
      scores: dense.scores,
      tokenTypes: dense.types,
      ...defaults,
      ...withoutUndefined(ids),
      addSpacePrefix,
    });
  }
  if (tokenizerJson === undefined) {
    throw new TokenizerConversionError('TOKENIZER_MISSING', hfDir, 'no tokenizer.model or tokenizer.json');
  }
  const conv = fromTokenizerJson(tokenizerJson, jsonFile, options);
  const ids = withoutUndefined(specialIds(tokenMap(conv.dense.tokens), tokenizerConfig, tokenizerJson, modelConfig));
  if (conv.kind === 'llama') {
    return withoutUndefined({
      model: 'llama',
      tokens: conv.dense.tokens,
      scores: conv.dense.scores,
      tokenTypes: conv.dense.types,
      addBosToken: true,
      addEosToken: false,
      ...ids,
      addSpacePrefix: conv.addSpacePrefix,
    });
  }
  return withoutUndefined({
    model: 'gpt2',
    pre: conv.pre,
    tokens: conv.dense.tokens,
    tokenTypes: conv.dense.types,
    merges: conv.merges,
    ...ids,
  });
}

/**
 * GGUF metadata entries for a tokenizer. `vocabRows` is the embedding's row count: when the
 * model pads its vocabulary past the tokenizer's size, the token list is padded with unused
 * `[PAD<id>]` tokens so that llama.cpp's token count matches the embedding.
 */
export function tokenizerMetadataEntries(meta: GgufTokenizerMetadata, vocabRows: number): GgufMetadataEntry[] {
  if (meta.tokens.length > vocabRows) {
    throw new TokenizerConversionError('TOKENIZER_TOO_LARGE', 'tokenizer', `${meta.tokens.length} tokens but the embedding has only ${vocabRows} rows`);
  }
  if (meta.tokenTypes.length !== meta.tokens.length || (meta.scores !== undefined && meta.scores.length !== meta.tokens.length)) {
    throw new TokenizerConversionError('TOKENIZER_BAD_METADATA', 'tokenizer', 'tokens, token types and scores must have the same length');
  }
  const tokens = [...meta.tokens];
  const types = [...meta.tokenTypes];
  const scores = meta.scores === undefined ? undefined : [...meta.scores];
  for (let id = tokens.length; id < vocabRows; id++) {
    tokens.push(`[PAD${id}]`);
    types.push(TOKEN_TYPE.unused);
    scores?.push(0);
  }
  const out: GgufMetadataEntry[] = [{ key: 'tokenizer.ggml.model', value: { type: 'string', value: meta.model } }];
  if (meta.pre !== undefined) out.push({ key: 'tokenizer.ggml.pre', value: { type: 'string', value: meta.pre } });
  else if (meta.model === 'llama') out.push({ key: 'tokenizer.ggml.pre', value: { type: 'string', value: 'default' } });
  out.push({ key: 'tokenizer.ggml.tokens', value: { type: 'array', itemType: 'string', value: tokens } });
  if (scores !== undefined) out.push({ key: 'tokenizer.ggml.scores', value: { type: 'array', itemType: 'float32', value: scores } });
  out.push({ key: 'tokenizer.ggml.token_type', value: { type: 'array', itemType: 'int32', value: types } });
  if (meta.merges !== undefined) out.push({ key: 'tokenizer.ggml.merges', value: { type: 'array', itemType: 'string', value: meta.merges } });
  const id = (key: string, v: number | undefined): void => {
    if (v === undefined) return;
    if (!Number.isSafeInteger(v) || v < 0 || v >= vocabRows) {
      throw new TokenizerConversionError('TOKENIZER_BAD_ID', 'tokenizer', `${key} ${v} is outside the vocabulary of ${vocabRows}`);
    }
    out.push({ key, value: { type: 'uint32', value: v } });
  };
  id('tokenizer.ggml.bos_token_id', meta.bosTokenId);
  id('tokenizer.ggml.eos_token_id', meta.eosTokenId);
  id('tokenizer.ggml.unknown_token_id', meta.unknownTokenId);
  id('tokenizer.ggml.padding_token_id', meta.paddingTokenId);
  if (meta.addBosToken !== undefined) out.push({ key: 'tokenizer.ggml.add_bos_token', value: { type: 'bool', value: meta.addBosToken } });
  if (meta.addEosToken !== undefined) out.push({ key: 'tokenizer.ggml.add_eos_token', value: { type: 'bool', value: meta.addEosToken } });
  if (meta.addSpacePrefix !== undefined) out.push({ key: 'tokenizer.ggml.add_space_prefix', value: { type: 'bool', value: meta.addSpacePrefix } });
  if (meta.chatTemplate !== undefined) out.push({ key: 'tokenizer.chat_template', value: { type: 'string', value: meta.chatTemplate } });
  return out;
}
