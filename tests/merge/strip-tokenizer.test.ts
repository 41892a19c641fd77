/**
 * mergekit's stripping of the base tokenizer's ids ≥ vocab_size (strip-tokenizer.ts), on
 * hand-written tokenizer.json documents.
 */
import { describe, expect, it } from 'vitest';
import { stripUnusedTokens } from '../../src/merge/strip-tokenizer.js';
import { parseTokenizerJson } from '../../src/merge/vocab-permutation.js';

function bpe(vocab: Record<string, number>, merges: unknown[], added: { id: number; content: string }[] = []): ReturnType<typeof parseTokenizerJson> {
  return parseTokenizerJson(JSON.stringify({ version: '1.0', added_tokens: added, model: { type: 'BPE', vocab, merges } }), 'tok.json');
}

describe('stripUnusedTokens', () => {
  it('is null when every id is below vocab_size', () => {
    expect(stripUnusedTokens(bpe({ a: 0, b: 1 }, []), 2)).toBeNull();
  });

  it('drops pair-form merges with a stripped part and keeps the rest in order', () => {
    const tok = bpe({ a: 0, b: 1, c: 2, ab: 3, bc: 4, ca: 5, cab: 6 }, [['a', 'b'], ['ca', 'b'], ['b', 'c']], [{ id: 7, content: '<x>' }]);
    const out = stripUnusedTokens(tok, 5);
    const json = JSON.parse(out?.text ?? '{}') as { model: { vocab: unknown; merges: unknown }; added_tokens: unknown[] };
    expect(json.model.vocab).toEqual({ a: 0, b: 1, c: 2, ab: 3, bc: 4 });
    expect(json.model.merges).toEqual([['a', 'b'], ['b', 'c']]);
    expect(json.added_tokens).toEqual([]);
    expect(out?.removed).toEqual(['ca', 'cab', '<x>']);
    expect(out?.summary).toBe('3 token(s) at ids ≥ vocab_size 5 ("ca" 5, "cab" 6, "<x>" 7)');
    expect([...(out?.tokenizer.vocab ?? [])]).toEqual([['a', 0], ['b', 1], ['c', 2], ['ab', 3], ['bc', 4]]);
  });

  it('counts a token by its added id: an added token past vocab_size leaves model.vocab too', () => {
    // tokenizers' get_vocab puts added tokens over model.vocab; mergekit then deletes the string from model.vocab.
    const out = stripUnusedTokens(bpe({ a: 0, b: 1 }, [], [{ id: 7, content: 'b' }]), 2);
    expect((JSON.parse(out?.text ?? '{}') as { model: { vocab: unknown } }).model.vocab).toEqual({ a: 0 });
  });

  it('strips the continuing-subword prefix when it names a merge result', () => {
    const tok = parseTokenizerJson(JSON.stringify({ model: { type: 'BPE', continuing_subword_prefix: '##', vocab: { a: 0, '##b': 1, ab: 2 }, merges: ['a ##b'] } }), 'tok.json');
    expect(() => stripUnusedTokens(tok, 2)).toThrow(/model\.merges\[0\] "a ##b" makes "ab"/);
  });
});
