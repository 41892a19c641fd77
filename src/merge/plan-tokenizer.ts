import path from 'node:path';
import { EvoError } from '../errors.js';
import { documentModelRefs } from './config-validate.js';
import type { MergeDocument } from './config.js';
import type { PlanIssue } from './plan-error.js';
import type { VocabularyPlan } from './plan-permutation.js';
import type { PlanSource } from './plan-source.js';
import { readVocabulary, tokensById, type Vocabulary } from './vocab-permutation.js';

/** The output's tokenizer: files copied from `dir`, and with tokenizer_source the vocabulary embeddings are permuted into. */
export interface TokenizerPlan {
  readonly dir: string | null;
  readonly files: readonly string[];
  /** Set with `tokenizer_source`: the output vocabulary and every model's own (§1.5). */
  readonly vocabulary?: VocabularyPlan;
}

/**
 * Which tokenizer files the output gets and, with `tokenizer_source: base | <model>`, the output
 * vocabulary: that model's tokenizer.json (model.vocab plus added_tokens). Without the option the
 * files of the base model (else the first model) are copied, as mergekit does, and nothing is
 * permuted. Every model's tokenizer.json must then be readable: a missing or unparsable one is an
 * issue naming the file (mergekit would silently assume the base's vocabulary).
 */
export function planTokenizer(
  doc: MergeDocument,
  sources: ReadonlyMap<string, PlanSource>,
  donorRef: string,
  push: (i: PlanIssue) => void,
): TokenizerPlan {
  const requested = doc.tokenizer_source ?? doc.tokenizer?.source;
  const ref = requested === undefined ? donorRef : requested === 'base' ? (doc.base_model ?? donorRef) : requested;
  const donor = sources.get(ref);
  const result = { dir: donor?.tokenizerDir ?? null, files: donor?.tokenizerFiles ?? [] };
  if (requested === undefined || !donor) return result;

  const vocabs = new Map<string, Vocabulary>();
  let ok = true;
  for (const model of [ref, ...documentModelRefs(doc)]) {
    const src = sources.get(model);
    if (!src || vocabs.has(model)) continue;
    const vocab = vocabularyOf(src, push);
    if (vocab === undefined) ok = false;
    else vocabs.set(model, vocab);
  }
  const donorVocab = vocabs.get(ref);
  if (!ok || donorVocab === undefined) return result;
  const outTokens = tokensById(donorVocab);
  return { ...result, vocabulary: { outTokens, vocabs, ...(doc.base_model !== undefined ? { base: doc.base_model } : {}) } };
}

function vocabularyOf(src: PlanSource, push: (i: PlanIssue) => void): Vocabulary | undefined {
  if (src.tokenizerDir === null || !src.tokenizerFiles.includes('tokenizer.json')) {
    const where = src.tokenizerDir === null ? src.label : path.join(src.tokenizerDir, 'tokenizer.json');
    push({ code: 'TOKENIZER_INVALID', message: `tokenizer_source needs ${where}: model ${src.label} has no tokenizer.json (a Hugging Face tokenizers file with model.vocab)` });
    return undefined;
  }
  try {
    return readVocabulary(path.join(src.tokenizerDir, 'tokenizer.json'));
  } catch (err) {
    if (!(err instanceof EvoError)) throw err;
    push({ code: 'TOKENIZER_INVALID', message: `tokenizer_source: ${err.message}` });
    return undefined;
  }
}
