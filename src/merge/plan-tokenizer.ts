import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { documentModelRefs, tokenizerSourceOf } from './config-validate.js';
import { overrideSourceToken, tokenSourcePath, type MergeDocument } from './config.js';
import type { PlanIssue } from './plan-error.js';
import type { VocabularyPlan } from './plan-permutation.js';
import type { PlanSource } from './plan-source.js';
import { stripUnusedTokens, type StrippedTokenizer } from './strip-tokenizer.js';
import { addedTokensJson, specialTokensIn, withAddedTokensDecoder } from './tokenizer-config.js';
import { addTokens, buildUnionTokenizer } from './union-tokenizer.js';
import { paddedRows, parseTokenizerJson, readTokenizerJson, tokensById, type ParsedTokenizer, type Vocabulary } from './vocab-permutation.js';

/** The output's tokenizer: files copied from `dir`, and with tokenizer_source the vocabulary embeddings are permuted into. */
export interface TokenizerPlan {
  readonly dir: string | null;
  readonly files: readonly string[];
  /** Set with `tokenizer_source`: the output vocabulary and every model's own (§1.5). */
  readonly vocabulary?: VocabularyPlan;
  /**
   * Files written instead of copying the donor's, by name: tokenizer.json when the vocabulary
   * changes (union, `tokenizer.tokens` adding tokens, the base stripped of ids past vocab_size),
   * with tokenizer_config.json to match.
   */
  readonly generated?: Readonly<Record<string, string>>;
}

/**
 * Which tokenizer files the output gets and, with `tokenizer_source`, the output vocabulary:
 * `base | <model>`: that model's tokenizer.json (model.vocab plus added_tokens); `union`: the
 * base's (else the first model's) with the other models' missing tokens appended
 * (union-tokenizer.ts); then `tokenizer.tokens` keys are added (addTokens) and `pad_to_multiple_of`
 * sets the row count. A `tokenizer:` block without `source` is union, as in mergekit. The base's
 * tokenizer is first stripped of its ids ≥ vocab_size (strip-tokenizer.ts), and a generated
 * tokenizer.json comes with a matching tokenizer_config.json (tokenizer-config.ts). Without the
 * option the files of the base model (else the first model) are copied, as mergekit does, and
 * nothing is permuted. Every model's tokenizer.json must then be readable: a missing or
 * unparsable one is an issue naming the file (mergekit would silently assume the base's vocabulary).
 */
export function planTokenizer(
  doc: MergeDocument,
  sources: ReadonlyMap<string, PlanSource>,
  donorRef: string,
  report: { readonly push: (i: PlanIssue) => void; readonly warn: (message: string) => void },
): TokenizerPlan {
  const { push, warn } = report;
  const requested = tokenizerSourceOf(doc);
  const ref = requested === undefined || requested === 'union' ? donorRef : requested === 'base' ? (doc.base_model ?? donorRef) : requested;
  const donor = sources.get(ref);
  // A stage's generated files go on with its directory, as mergekit's multimerge saves each stage's tokenizer.
  const result = { dir: donor?.tokenizerDir ?? null, files: donor?.tokenizerFiles ?? [], ...(donor?.tokenizerGenerated ? { generated: donor.tokenizerGenerated } : {}) };
  if (requested === undefined || !donor) return result;

  const parsed = new Map<string, ParsedTokenizer>();
  let ok = true;
  for (const model of [ref, ...documentModelRefs(doc)]) {
    const src = sources.get(model);
    if (!src || parsed.has(model)) continue;
    const tok = tokenizerOf(src, push);
    if (tok === undefined) ok = false;
    else parsed.set(model, tok);
  }
  if (!ok) return result;
  // mergekit strips the base's tokens past its vocab_size first; the stripped base is the output
  // for base and union, and the base's vocabulary for every permutation (a model named as
  // tokenizer_source is read as it is, even when it is the base).
  const original = parsed.get(ref);
  const stripped = stripBase(donorRef, parsed, sources, push);
  if (stripped === undefined || original === undefined) return result;
  if (stripped !== null) parsed.set(donorRef, stripped.tokenizer);
  const donorTok = requested === 'base' || requested === 'union' ? (parsed.get(ref) ?? original) : original;
  const vocabs = new Map<string, Vocabulary>([...parsed].map(([m, t]) => [m, t.vocab]));
  const base = doc.base_model !== undefined ? { base: doc.base_model } : {};
  let out: { readonly vocab: Vocabulary; readonly json?: string } = { vocab: donorTok.vocab, ...(stripped !== null && donorTok === stripped.tokenizer ? { json: stripped.text } : {}) };
  if (stripped !== null && out.json !== undefined) warn(`tokenizer_source ${requested}: ${original.file} has ${stripped.summary}, stripped from the output tokenizer as mergekit does`);
  if (requested === 'union') {
    // Ids past a model's vocab_size are not real rows (mergekit skips them too).
    const { text } = buildUnionTokenizer(donorTok, [...parsed].map(([m, t]) => ({ tokenizer: t, limit: vocabSizeOf(sources.get(m)) })));
    const union = parseTokenizerJson(text, `union of ${[...parsed.values()].map((t) => t.file).join(', ')}`);
    out = { vocab: union.vocab, json: text };
  }

  // tokenizer.tokens: mergekit adds every key to the output tokenizer, then overrides its rows.
  const tokens = doc.tokenizer?.tokens ?? [];
  if (tokens.length > 0) {
    const outTok = out.json === undefined ? donorTok : parseTokenizerJson(out.json, donorTok.file);
    const added = addTokens(outTok, tokens.map((o) => o.token));
    if (added !== null) out = { vocab: added.vocab, json: added.text };
  }
  let tokensOk = true;
  for (const o of tokens) {
    const { source } = o;
    if (source.kind === 'zero') continue;
    const token = overrideSourceToken(o);
    const tok = parsed.get(source.model);
    if (token === undefined || tok === undefined || tok.vocab.has(token)) continue;
    const key = `${tokenSourcePath(o.token)}${source.kind === 'model' ? '' : '.token'}`;
    push({ code: 'TOKEN_OVERRIDE', message: `${key}: ${source.model}'s tokenizer (${tok.file}) has no token ${JSON.stringify(token)}` });
    tokensOk = false;
  }
  if (!tokensOk) return result;

  const outTokens = tokensById(out.vocab);
  const overrides = tokens.map((o) => ({ ...o, outId: out.vocab.get(o.token) ?? -1 }));
  const vocabulary: VocabularyPlan = {
    outTokens,
    vocabs,
    ...base,
    ...(overrides.length > 0 ? { overrides } : {}),
    rows: paddedRows(outTokens.length, doc.tokenizer?.pad_to_multiple_of),
  };
  if (out.json === undefined) return { ...result, vocabulary };
  const config = tokenizerConfigFor(out.json, donor, stripped, warn, push);
  if (config === undefined) return result;
  const generated: Record<string, string> = { ...result.generated, 'tokenizer.json': out.json };
  if (config !== null) generated['tokenizer_config.json'] = config;
  // A donor's added_tokens.json (beside a sentencepiece model) would bring stale tokens back on a slow load.
  if (donor.tokenizerFiles.includes('added_tokens.json')) generated['added_tokens.json'] = addedTokensJson(JSON.parse(out.json) as Record<string, unknown>);
  return { ...result, vocabulary, generated };
}

/**
 * The donor's tokenizer_config.json with added_tokens_decoder matching the generated tokenizer.json
 * (tokenizer-config.ts); null when the donor has none; undefined after recording an issue. A
 * special token it names that was stripped is warned about.
 */
function tokenizerConfigFor(
  json: string,
  donor: PlanSource,
  stripped: StrippedTokenizer | null,
  warn: (message: string) => void,
  push: (i: PlanIssue) => void,
): string | null | undefined {
  if (donor.tokenizerDir === null || !donor.tokenizerFiles.includes('tokenizer_config.json')) return null;
  const generated = donor.tokenizerGenerated?.['tokenizer_config.json'];
  const file = generated === undefined ? path.join(donor.tokenizerDir, 'tokenizer_config.json') : `${donor.label}'s generated tokenizer_config.json`;
  try {
    const text = generated ?? readFileSync(file, 'utf8');
    const added = (JSON.parse(json) as { added_tokens?: unknown }).added_tokens;
    if (stripped !== null) {
      const lost = specialTokensIn(text, file, new Set(stripped.removed));
      if (lost.length > 0) warn(`${file}: ${lost.join(', ')} ${lost.length === 1 ? 'was' : 'were'} stripped (id ≥ vocab_size) but stay${lost.length === 1 ? 's' : ''} named there, as in mergekit; transformers adds such a token back at a new id when it loads the tokenizer`);
    }
    return withAddedTokensDecoder(text, file, Array.isArray(added) ? added : []);
  } catch (err) {
    if (err instanceof EvoError) {
      push({ code: 'TOKENIZER_INVALID', message: `tokenizer_source: ${err.message}` });
      return undefined;
    }
    push({ code: 'TOKENIZER_INVALID', message: `tokenizer_source: cannot read ${file} (${err instanceof Error ? err.message : String(err)})` });
    return undefined;
  }
}

/** A model's config vocab_size (mergekit's get_vocab_size), or +∞ when it has none: then nothing is past it. */
function vocabSizeOf(src: PlanSource | undefined): number {
  const v = src?.rawConfig['vocab_size'];
  return typeof v === 'number' && Number.isInteger(v) ? v : Number.POSITIVE_INFINITY;
}

/** The base's tokenizer stripped of its ids ≥ vocab_size (null: nothing to strip); undefined after recording an issue. */
function stripBase(ref: string, parsed: ReadonlyMap<string, ParsedTokenizer>, sources: ReadonlyMap<string, PlanSource>, push: (i: PlanIssue) => void): StrippedTokenizer | null | undefined {
  const tok = parsed.get(ref);
  if (tok === undefined) return null;
  try {
    return stripUnusedTokens(tok, vocabSizeOf(sources.get(ref)));
  } catch (err) {
    if (!(err instanceof EvoError)) throw err;
    push({ code: err.code === 'UNSUPPORTED' ? 'UNSUPPORTED' : 'TOKENIZER_INVALID', message: `tokenizer_source: ${err.message}` });
    return undefined;
  }
}

function tokenizerOf(src: PlanSource, push: (i: PlanIssue) => void): ParsedTokenizer | undefined {
  const generated = src.tokenizerGenerated?.['tokenizer.json'];
  // A stage's generated file was parsed when it was made; it parses again.
  if (generated !== undefined) return parseTokenizerJson(generated, `${src.label}'s generated tokenizer.json`);
  if (src.tokenizerDir === null || !src.tokenizerFiles.includes('tokenizer.json')) {
    const where = src.tokenizerDir === null ? src.label : path.join(src.tokenizerDir, 'tokenizer.json');
    push({ code: 'TOKENIZER_INVALID', message: `tokenizer_source needs ${where}: model ${src.label} has no tokenizer.json (a Hugging Face tokenizers file with model.vocab)` });
    return undefined;
  }
  try {
    return readTokenizerJson(path.join(src.tokenizerDir, 'tokenizer.json'));
  } catch (err) {
    if (!(err instanceof EvoError)) throw err;
    push({ code: 'TOKENIZER_INVALID', message: `tokenizer_source: ${err.message}` });
    return undefined;
  }
}
