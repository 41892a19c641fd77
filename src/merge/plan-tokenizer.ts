import path from 'node:path';
import { EvoError } from '../errors.js';
import { documentModelRefs, tokenizerSourceOf } from './config-validate.js';
import { overrideSourceToken, tokenSourcePath, type MergeDocument } from './config.js';
import type { PlanIssue } from './plan-error.js';
import type { VocabularyPlan } from './plan-permutation.js';
import type { PlanSource } from './plan-source.js';
import { addTokens, buildUnionTokenizer } from './union-tokenizer.js';
import { paddedRows, parseTokenizerJson, readTokenizerJson, tokensById, type ParsedTokenizer, type Vocabulary } from './vocab-permutation.js';

/** The output's tokenizer: files copied from `dir`, and with tokenizer_source the vocabulary embeddings are permuted into. */
export interface TokenizerPlan {
  readonly dir: string | null;
  readonly files: readonly string[];
  /** Set with `tokenizer_source`: the output vocabulary and every model's own (§1.5). */
  readonly vocabulary?: VocabularyPlan;
  /** `tokenizer_source: union`, or `tokenizer.tokens` adding tokens: the tokenizer.json written instead of copying the donor's. */
  readonly tokenizerJson?: string;
}

/**
 * Which tokenizer files the output gets and, with `tokenizer_source`, the output vocabulary:
 * `base | <model>`: that model's tokenizer.json (model.vocab plus added_tokens); `union`: the
 * base's (else the first model's) with the other models' missing tokens appended
 * (union-tokenizer.ts); then `tokenizer.tokens` keys are added (addTokens) and `pad_to_multiple_of`
 * sets the row count. A `tokenizer:` block without `source` is union, as in mergekit. Without the
 * option the files of the base model (else the first model) are copied, as mergekit does, and nothing is permuted. Every model's tokenizer.json must then be readable: a missing or unparsable one is an
 * issue naming the file (mergekit would silently assume the base's vocabulary).
 */
export function planTokenizer(
  doc: MergeDocument,
  sources: ReadonlyMap<string, PlanSource>,
  donorRef: string,
  push: (i: PlanIssue) => void,
): TokenizerPlan {
  const requested = tokenizerSourceOf(doc);
  const ref = requested === undefined || requested === 'union' ? donorRef : requested === 'base' ? (doc.base_model ?? donorRef) : requested;
  const donor = sources.get(ref);
  const result = { dir: donor?.tokenizerDir ?? null, files: donor?.tokenizerFiles ?? [] };
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
  const donorTok = parsed.get(ref);
  if (!ok || donorTok === undefined) return result;
  const vocabs = new Map<string, Vocabulary>([...parsed].map(([m, t]) => [m, t.vocab]));
  const base = doc.base_model !== undefined ? { base: doc.base_model } : {};
  let out: { readonly vocab: Vocabulary; readonly json?: string } = { vocab: donorTok.vocab };
  if (requested === 'union') {
    // union: ids past a model's vocab_size are not real rows (mergekit skips them too).
    const limitOf = (model: string): number => {
      const v = sources.get(model)?.rawConfig['vocab_size'];
      return typeof v === 'number' && Number.isInteger(v) ? v : Number.POSITIVE_INFINITY;
    };
    const beyond = [...donorTok.vocab.values()].filter((id) => id >= limitOf(ref)).length;
    if (beyond > 0) {
      // mergekit strips such tokens (and their BPE merges) from the base tokenizer first; not done here.
      push({ code: 'UNSUPPORTED', message: `tokenizer_source union: ${donorTok.file} has ${beyond} token(s) at ids ≥ vocab_size ${limitOf(ref)} of ${donor.label}; stripping them from the base tokenizer is not supported` });
      return result;
    }
    const { text } = buildUnionTokenizer(donorTok, [...parsed].map(([m, t]) => ({ tokenizer: t, limit: limitOf(m) })));
    const union = parseTokenizerJson(text, `union of ${[...parsed.values()].map((t) => t.file).join(', ')}`);
    out = { vocab: union.vocab, json: text };
  }

  // tokenizer.tokens: mergekit adds every key to the output tokenizer, then overrides its rows.
  const tokens = doc.tokenizer?.tokens ?? [];
  if (tokens.length > 0) {
    const outTok = out.json === undefined ? donorTok : parseTokenizerJson(out.json, donorTok.file);
    const added = addTokens(outTok, tokens.map((o) => o.token));
    if (added !== null) {
      if (doc.name !== undefined) {
        // As with union: a stage hands later documents its tokenizer directory, and a generated file has none yet.
        push({ code: 'UNSUPPORTED', message: `tokenizer.tokens: adding tokens to the vocabulary (${tokens.filter((o) => !outTok.added.has(o.token)).map((o) => JSON.stringify(o.token)).join(', ')}) is supported only in the final (unnamed) document` });
        return result;
      }
      out = { vocab: added.vocab, json: added.text };
    }
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
  return { ...result, vocabulary, ...(out.json !== undefined ? { tokenizerJson: out.json } : {}) };
}

function tokenizerOf(src: PlanSource, push: (i: PlanIssue) => void): ParsedTokenizer | undefined {
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
