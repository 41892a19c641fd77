/**
 * Output tokenizer.json files built by adding tokens (semantics §1.5): `tokenizer_source: union`,
 * the base's with every token of the other models that it lacks appended as added tokens, and
 * the keys of `tokenizer.tokens` added as mergekit's add_tokens does. Pure: parsed files in, JSON text out.
 */
import type { ParsedTokenizer } from './vocab-permutation.js';

/** One model's tokenizer and how many of its ids are real rows (its config's vocab_size). */
export interface UnionInput {
  readonly tokenizer: ParsedTokenizer;
  readonly limit: number;
}

/**
 * Builds the union tokenizer.json. Appended ids start after the base's largest id, in this
 * deterministic order (mergekit's follows Python dict iteration over Rust hash maps, which no other
 * implementation can reproduce, so the ids of appended tokens may differ from mergekit's; the
 * embedding row each token gets does not): first the regular vocabulary tokens of each model in
 * `inputs` order, by ascending id, then their added_tokens likewise, each token once. A regular
 * token becomes a non-special added token (as transformers' `add_tokens` makes it); an added
 * token keeps its flags (lstrip, rstrip, normalized, special, ...) from the first model listing it.
 * Ids at or past a model's `limit` are ignored, as mergekit skips them; `base` is the base
 * already stripped of such ids (strip-tokenizer.ts).
 */
export function buildUnionTokenizer(base: ParsedTokenizer, inputs: readonly UnionInput[]): { readonly text: string; readonly appended: number } {
  const have = new Set(base.vocab.keys());
  let next = 0;
  for (const id of base.vocab.values()) next = Math.max(next, id + 1);
  const appended: Record<string, unknown>[] = [];
  const byId = (t: ParsedTokenizer, limit: number): [string, number][] => [...t.vocab].filter(([, id]) => id < limit).sort((a, b) => a[1] - b[1]);
  for (const { tokenizer, limit } of inputs) {
    for (const [token] of byId(tokenizer, limit)) {
      if (have.has(token) || tokenizer.added.has(token)) continue;
      have.add(token);
      appended.push(plainAddedToken(next++, token));
    }
  }
  for (const { tokenizer, limit } of inputs) {
    for (const [token] of byId(tokenizer, limit)) {
      const entry = tokenizer.added.get(token);
      if (entry === undefined || have.has(token)) continue;
      have.add(token);
      appended.push({ ...entry, id: next++, content: token });
    }
  }
  const baseAdded = Array.isArray(base.json['added_tokens']) ? (base.json['added_tokens'] as unknown[]) : [];
  const json = { ...base.json, added_tokens: [...baseAdded, ...appended] };
  return { text: `${JSON.stringify(json, null, 2)}\n`, appended: appended.length };
}

/** An added_tokens entry as transformers' `add_tokens("tok")` makes it: not special, normalized. */
function plainAddedToken(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false };
}

/**
 * The output tokenizer after mergekit's `add_tokens` of every `tokenizer.tokens` key, in order
 * (tokenizers' AddedVocabulary.add_tokens): an added token already present is left alone; a
 * regular vocabulary token becomes an added token at its own id; any other token is appended at
 * the next id. added_tokens are written sorted by id, as tokenizers serializes them. null when
 * nothing changes (the file is then copied, not rewritten).
 */
export function addTokens(tok: ParsedTokenizer, tokens: readonly string[]): { readonly text: string; readonly vocab: Map<string, number> } | null {
  const vocab = new Map(tok.vocab);
  const added = new Set(tok.added.keys());
  let next = 0;
  for (const id of vocab.values()) next = Math.max(next, id + 1);
  const entries: Record<string, unknown>[] = [];
  for (const token of tokens) {
    if (token === '' || added.has(token)) continue;
    added.add(token);
    const id = vocab.get(token) ?? next++;
    vocab.set(token, id);
    entries.push(plainAddedToken(id, token));
  }
  if (entries.length === 0) return null;
  const before = Array.isArray(tok.json['added_tokens']) ? (tok.json['added_tokens'] as unknown[]) : [];
  const idOf = (e: unknown): number => {
    const id = (e as { id?: unknown } | null)?.id;
    return typeof id === 'number' ? id : 0;
  };
  const all = [...before, ...entries].map((e, i) => ({ e, i })).sort((a, b) => idOf(a.e) - idOf(b.e) || a.i - b.i).map((x) => x.e);
  return { text: `${JSON.stringify({ ...tok.json, added_tokens: all }, null, 2)}\n`, vocab };
}
