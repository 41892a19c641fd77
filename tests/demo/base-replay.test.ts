import { describe, expect, it } from 'vitest';
import { baseReplayDocuments, replayPrompts } from '../../src/demo/base-replay.js';
import { BpeEncoder } from '../../src/demo/byte-level-bpe.js';
import { DEFAULT_DATA_SETTINGS, demoData, learnDemoTokenizer } from '../../src/demo/family-data.js';
import { packedBatch } from '../../src/demo/corpus.js';
import { greedyContinuation, initLlamaWeights, llamaForward, type LlamaTrainConfig } from '../../src/train/index.js';

const SMALL = { ...DEFAULT_DATA_SETTINGS, entities: 24, practiceEntities: 0, mathSearchItems: 80, mathTestItems: 80, vocabSize: 300, corpus: { baseMath: 200, baseQuestions: 200, baseFactRepeats: 2, baseEquations: 0, baseWorldRepeats: 0, mathDocuments: 400, factQuestions: 300, factRepeats: 2, practiceQuestions: 0, practiceInWords: 0, practiceInContext: 0 } };

describe('base replay for the fine-tunes', () => {
  const data = demoData(SMALL);
  const vocab = learnDemoTokenizer(data);
  const encoder = new BpeEncoder(vocab);

  it('asks each fine-tune the other task’s training prompts, never a search or test item', () => {
    const forFacts = replayPrompts('facts', data, 50);
    const forMath = replayPrompts('math', data, 50);
    expect(forFacts.every((p) => p.startsWith('Question: ') && p.endsWith('\nAnswer:'))).toBe(true);
    expect(forMath.every((p) => p.startsWith('The following are multiple choice questions') && p.endsWith('\nAnswer:'))).toBe(true);
    const heldMath = new Set([...data.math.search, ...data.math.test].map((p) => `Question: ${p.question}\nAnswer:`));
    expect(forFacts.filter((p) => heldMath.has(p))).toEqual([]);
    expect(replayPrompts('facts', data, 50)).toEqual(forFacts);
  });

  it('answers with the base’s own greedy continuation and learns only the answer', () => {
    const config: LlamaTrainConfig = { vocabSize: vocab.tokens.length, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 2, maxSeqLen: 128, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: vocab.bosId, eosTokenId: vocab.eosId };
    const base = initLlamaWeights(config, 3);
    const prompts = replayPrompts('math', data, 3);
    const docs = baseReplayDocuments(config, base, encoder, prompts, 1);
    docs.forEach((d, i) => {
      const p = [vocab.bosId, ...encoder.encode(prompts[i] ?? '')];
      const answer = greedyContinuation(config, base, p, { maxNewTokens: 24, stopIds: [vocab.eosId], threads: 1 });
      expect([...d.tokens]).toEqual([...p, ...answer]);
      expect([...d.learn]).toEqual([...p.map(() => 0), ...answer.map(() => 1)]);
    });
  });

  it('distill: each answer token carries the base’s next-token distribution there, and batches place it at that token’s position', () => {
    const config: LlamaTrainConfig = { vocabSize: vocab.tokens.length, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 2, maxSeqLen: 128, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: vocab.bosId, eosTokenId: vocab.eosId };
    const base = initLlamaWeights(config, 3);
    const prompts = replayPrompts('facts', data, 2);
    const hard = baseReplayDocuments(config, base, encoder, prompts, 1);
    const docs = baseReplayDocuments(config, base, encoder, prompts, 1, true);
    const V = config.vocabSize;
    docs.forEach((d, i) => {
      expect([...d.tokens]).toEqual([...(hard[i]?.tokens ?? [])]);
      const learned = [...d.learn.keys()].filter((j) => d.learn[j] === 1);
      expect([...(d.soft?.keys() ?? [])]).toEqual(learned);
      const logits = llamaForward(config, base, d.tokens, 1);
      for (const j of learned) {
        const p = d.soft?.get(j) ?? new Float32Array(0);
        const z = logits.subarray((j - 1) * V, j * V);
        const max = Math.max(...z);
        const sum = z.reduce((a, v) => a + Math.exp(v - max), 0);
        expect(p.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
        // The greedy token is the distribution's mode.
        expect(p.indexOf(Math.max(...p))).toBe(d.tokens[j]);
        for (const v of [0, 7, V - 1]) expect(p[v]).toBeCloseTo(Math.exp((z[v] ?? 0) - max) / sum, 6);
      }
    });
    const only = docs[0];
    if (only === undefined) throw new Error('no replay document');
    const batch = packedBatch([only], 1, 128, vocab.eosId, 'replay-test', 0);
    const positions = [...(batch.softTargets?.keys() ?? [])].sort((a, b) => a - b);
    // Row 0 holds the document at offset 0, so token j is predicted at position j − 1.
    expect(positions.slice(0, only.soft?.size)).toEqual([...(only.soft?.keys() ?? [])].map((j) => j - 1));
    for (const n of positions) expect(batch.lossMask[n]).toBe(1);
  });
});
