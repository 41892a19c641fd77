/**
 * Tokens a fine-tune owns: those in its own training documents and never in the other
 * fine-tune's. An embedding row of such a token (tied: its input vector and its output row) is
 * read only by prompts that contain the token, so a fine-tune confined to its owned rows leaves
 * every prompt of the other task computed exactly as the base computes it, in any merge.
 */
import type { EncodedDocument } from './corpus.js';

/** Ids in `own` documents and in none of `other`'s, ascending (BOS and EOS are in both). */
export function ownedTokens(own: readonly EncodedDocument[], other: readonly EncodedDocument[]): number[] {
  const seen = (docs: readonly EncodedDocument[]): Set<number> => {
    const s = new Set<number>();
    for (const d of docs) for (const t of d.tokens) s.add(t);
    return s;
  };
  const theirs = seen(other);
  return [...seen(own)].filter((t) => !theirs.has(t)).sort((a, b) => a - b);
}
