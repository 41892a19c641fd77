/**
 * tokenizer_config.json's added_tokens_decoder rewritten in place (tokenizer-config.ts): the member
 * is replaced or appended, every other byte of the file is kept, and the entries carry the flags
 * transformers' save_pretrained writes, in its key order.
 */
import { describe, expect, it } from 'vitest';
import { addedTokensJson, specialTokensIn, withAddedTokensDecoder } from '../../src/merge/tokenizer-config.js';

const added = [
  { id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  { id: 12, content: 'x', special: false },
];
const entry0 = '{"content":"<unk>","lstrip":false,"normalized":false,"rstrip":false,"single_word":false,"special":true}';
const entry12 = '{"content":"x","lstrip":false,"normalized":true,"rstrip":false,"single_word":false,"special":false}';

describe('withAddedTokensDecoder', () => {
  it('replaces the member in place, past strings holding braces, quotes and escapes', () => {
    const text = '{\n  "chat_template": "{% if \\"}\\" %}[]{{ x }}",\n  "added_tokens_decoder": {\n    "5": {"content": "old"}\n  },\n  "model_max_length": 1000000000000000019884624838656\n}\n';
    const out = withAddedTokensDecoder(text, 'tc.json', added);
    const value = JSON.stringify({ 0: JSON.parse(entry0), 12: JSON.parse(entry12) }, null, 2).replaceAll('\n', '\n  ');
    expect(out).toBe(text.replace('{\n    "5": {"content": "old"}\n  }', value));
    expect(out).toContain('"model_max_length": 1000000000000000019884624838656');
    // Keys in transformers' sorted order.
    expect(Object.keys((JSON.parse(out) as { added_tokens_decoder: Record<string, object> }).added_tokens_decoder['0'] ?? {})).toEqual(['content', 'lstrip', 'normalized', 'rstrip', 'single_word', 'special']);
  });

  it('appends the member to a one-line file, compactly', () => {
    expect(withAddedTokensDecoder('{"a": [1, {"b": "}"}], "c": true}', 'tc.json', added)).toBe(`{"a": [1, {"b": "}"}], "c": true, "added_tokens_decoder": {"0":${entry0},"12":${entry12}}}`);
  });

  it('appends to an indented file and fills an empty object', () => {
    expect(withAddedTokensDecoder('{\n\t"a": 1\n}', 'tc.json', [])).toBe('{\n\t"a": 1,\n\t"added_tokens_decoder": {}\n}');
    expect(withAddedTokensDecoder(' {} ', 'tc.json', [])).toBe(' {\n  "added_tokens_decoder": {}\n} ');
  });

  it('names the file when it is not a JSON object', () => {
    expect(() => withAddedTokensDecoder('{"a": ', 'dir/tc.json', [])).toThrow(/dir\/tc\.json: not valid JSON/);
    expect(() => withAddedTokensDecoder('[1]', 'dir/tc.json', [])).toThrow(/dir\/tc\.json: expected a JSON object/);
  });
});

describe('specialTokensIn', () => {
  it('finds named special tokens among the removed ones, as strings, objects and lists', () => {
    const text = JSON.stringify({ bos_token: '<s>', pad_token: { content: '<pad>' }, additional_special_tokens: ['<a>', '<b>'], other: '<pad>' });
    expect(specialTokensIn(text, 'tc.json', new Set(['<pad>', '<b>', '<s2>']))).toEqual(['pad_token "<pad>"', 'additional_special_tokens "<b>"']);
  });
});

describe('addedTokensJson', () => {
  it('lists the added tokens past model.vocab, keys in code-point order', () => {
    const tok = { model: { vocab: { a: 0, b: 1, '<s>': 2 } }, added_tokens: [{ id: 2, content: '<s>' }, { id: 3, content: '\u{1F600}' }, { id: 4, content: '\uFFFD' }, { id: 5, content: 'x' }] };
    // UTF-16 order would put the emoji (a surrogate pair, 0xD83D…) before U+FFFD.
    expect(addedTokensJson(tok)).toBe('{\n  "x": 5,\n  "\uFFFD": 4,\n  "\u{1F600}": 3\n}\n');
    expect(addedTokensJson({ model: { vocab: [['a', 0]] }, added_tokens: [{ id: 0, content: 'a' }] })).toBe('{}\n');
  });
});
