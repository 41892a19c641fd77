/**
 * mergekit's stripped base tokenizer (semantics §1.5; mergekit/tokenizer/build.py,
 * get_stripped_tokenizer): before the output vocabulary is built, tokens of the base whose id is
 * at or past its config's vocab_size (no embedding row) are removed. Pure: a parsed file in, JSON text out.
 */
import { EvoError } from '../errors.js';
import { parseTokenizerJson, type ParsedTokenizer } from './vocab-permutation.js';

/** The base tokenizer without its tokens at ids ≥ vocab_size. */
export interface StrippedTokenizer {
  readonly tokenizer: ParsedTokenizer;
  /** The tokenizer.json text written for it. */
  readonly text: string;
  /** The removed tokens, by ascending id. */
  readonly removed: readonly string[];
  /** For messages: `N token(s) at ids ≥ vocab_size V ("tok" id, …)`. */
  readonly summary: string;
}

/**
 * Strips the tokens at ids ≥ `vocabSize` as mergekit does, or returns null when there are none
 * (the file is then used as it is). A token counts by its id in the whole vocabulary (model.vocab
 * with added_tokens over it, as tokenizers' get_vocab). Then: added_tokens keeps the entries with
 * id < vocabSize; each removed token is deleted from model.vocab; every merge (`"a b"` or
 * `["a", "b"]`) with a removed part is dropped. Everything else is kept as written.
 *
 * Refused with an EvoError naming the file (mergekit fails too, so a recipe stays runnable there):
 * a model other than BPE ("only BPE is currently supported"), a merge in neither form, and a merge
 * that survives but makes a removed token (mergekit keeps it, and tokenizers then refuses to load
 * the file: the merged token is out of the vocabulary).
 */
export function stripUnusedTokens(tok: ParsedTokenizer, vocabSize: number): StrippedTokenizer | null {
  const removed = [...tok.vocab].filter(([, id]) => id >= vocabSize).sort((a, b) => a[1] - b[1]);
  if (removed.length === 0) return null;
  const gone = new Set(removed.map(([token]) => token));
  const summary = `${removed.length} token(s) at ids ≥ vocab_size ${vocabSize} (${removed.slice(0, 5).map(([t, id]) => `${JSON.stringify(t)} ${id}`).join(', ')}${removed.length > 5 ? ', …' : ''})`;
  const bad = (what: string): EvoError => new EvoError('TOKENIZER_INVALID', `${tok.file}: ${what}`);
  const model = tok.json['model'] as Record<string, unknown>;
  if (model['type'] !== 'BPE') {
    throw new EvoError('UNSUPPORTED', `${tok.file}: has ${summary}, which must be stripped from the base tokenizer; mergekit strips only BPE tokenizers and model.type is ${JSON.stringify(model['type'] ?? null)}`);
  }
  const vocab = model['vocab'];
  if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab)) throw bad('model.vocab: a BPE vocabulary must be an object of token → id');
  const keptVocab = Object.fromEntries(Object.entries(vocab).filter(([token]) => !gone.has(token)));
  const merges = model['merges'] ?? [];
  if (!Array.isArray(merges)) throw bad('model.merges: expected a list of "a b" strings or ["a", "b"] pairs');
  const prefix = typeof model['continuing_subword_prefix'] === 'string' ? model['continuing_subword_prefix'] : '';
  const keptMerges = merges.filter((m: unknown, i) => {
    const parts = mergeParts(m);
    if (parts === null) throw bad(`model.merges[${i}]: expected "a b" (one space) or ["a", "b"], got ${JSON.stringify(m)}`);
    if (parts.some((p) => gone.has(p))) return false;
    // tokenizers names a merge's result a + b without b's continuing-subword prefix.
    const made = `${parts[0] ?? ''}${(parts[1] ?? '').slice(prefix.length)}`;
    if (gone.has(made)) {
      throw new EvoError('UNSUPPORTED', `${tok.file}: model.merges[${i}] ${JSON.stringify(m)} makes ${JSON.stringify(made)}, one of the ${summary} stripped from the base tokenizer; mergekit keeps the merge and then cannot load the stripped tokenizer`);
    }
    return true;
  });
  const added = Array.isArray(tok.json['added_tokens']) ? (tok.json['added_tokens'] as { id?: unknown }[]) : [];
  const json = {
    ...tok.json,
    added_tokens: added.filter((e) => typeof e.id === 'number' && e.id < vocabSize),
    model: { ...model, vocab: keptVocab, merges: keptMerges },
  };
  const text = `${JSON.stringify(json, null, 2)}\n`;
  return { tokenizer: parseTokenizerJson(text, tok.file), text, removed: removed.map(([token]) => token), summary };
}

/** The two tokens of a merge, or null when it is in neither of tokenizers' forms. */
function mergeParts(m: unknown): readonly string[] | null {
  if (typeof m === 'string') {
    const parts = m.split(' ');
    return parts.length === 2 ? parts : null;
  }
  return Array.isArray(m) && m.length === 2 && m.every((p) => typeof p === 'string') ? (m as string[]) : null;
}
