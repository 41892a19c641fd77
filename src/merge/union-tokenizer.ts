/**
 * `tokenizer_source: union` (semantics §1.5): the base's tokenizer.json with every token of the
 * other models that it lacks appended as added tokens. Pure: parsed files in, JSON text out.
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
 * Ids at or past a model's `limit` are ignored, as mergekit skips them.
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
      appended.push({ id: next++, content: token, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
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
