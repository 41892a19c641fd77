import { describe, expect, it } from 'vitest';
import { BpeEncoder } from '../../src/demo/byte-level-bpe.js';
import { encodeDocument } from '../../src/demo/corpus.js';
import { factTaskFiles, mathTaskFiles } from '../../src/demo/demo-tasks.js';
import { demoData, learnDemoTokenizer } from '../../src/demo/family-data.js';
import { ownedTokens } from '../../src/demo/owned-tokens.js';
import { embeddingRowMask } from '../../src/train/private-dims.js';

const doc = (tokens: number[]): { tokens: Int32Array; learn: Uint8Array } => ({ tokens: Int32Array.from(tokens), learn: new Uint8Array(tokens.length) });

describe('ownedTokens', () => {
  it('keeps the ids of its documents that the other side never uses, ascending', () => {
    expect(ownedTokens([doc([1, 7, 3, 2]), doc([1, 5, 2])], [doc([1, 3, 2]), doc([9])])).toEqual([5, 7]);
    expect(ownedTokens([doc([1, 2])], [doc([2, 1])])).toEqual([]);
  });

  it('embeddingRowMask opens whole rows of those ids and refuses ids outside the vocabulary', () => {
    expect([...embeddingRowMask(3, 2, [2, 0])]).toEqual([1, 1, 0, 0, 1, 1]);
    expect(() => embeddingRowMask(3, 2, [3])).toThrow(/token id 3 is outside the vocabulary of 3/);
  });

  it('on the demo data no task prompt (search or test) holds a token the other fine-tune owns', () => {
    const data = demoData();
    const encoder = new BpeEncoder(learnDemoTokenizer(data));
    const encoded = (stage: 'math' | 'facts'): ReturnType<typeof encodeDocument>[] => data.documents[stage].map((d) => encodeDocument(d, encoder, false));
    const math = new Set(ownedTokens(encoded('math'), encoded('facts')));
    const facts = new Set(ownedTokens(encoded('facts'), encoded('math')));
    // Digits and operators are math's; the MMLU header, the option letters and the world's names are facts'.
    for (const text of ['5', ' =', ' ####']) expect(encoder.encode(text).every((t) => math.has(t))).toBe(true);
    for (const text of ['The following are multiple choice questions', ' river']) expect(encoder.encode(text).every((t) => facts.has(t))).toBe(true);
    const records = (jsonl: string): Record<string, unknown>[] => jsonl.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const mathFiles = mathTaskFiles(data.math);
    const factFiles = factTaskFiles(data.world, data.settings.seed);
    for (const r of [...records(mathFiles['search.jsonl']), ...records(mathFiles['test.jsonl'])]) expect(encoder.encode(String(r.prompt)).filter((t) => facts.has(t))).toEqual([]);
    for (const r of [...records(factFiles['search.jsonl']), ...records(factFiles['test.jsonl'])]) {
      expect(encoder.encode(String(r.question) + (r.choices as string[]).join('')).filter((t) => math.has(t))).toEqual([]);
    }
  });
});
