import { describe, expect, it } from 'vitest';
import { type LlamaTrainConfig, type TrainBatch, evaluateLoss, initLlamaWeights, llamaForward, lossAndGradients } from '../../src/train/index.js';

const CONFIG: LlamaTrainConfig = { vocabSize: 11, hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 2, numKvHeads: 2, maxSeqLen: 6, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: 1, eosTokenId: 2 };
const TOKENS = [1, 5, 7, 3, 9, 2, 4];

function softmaxRow(logits: Float32Array, row: number): Float32Array {
  const z = logits.subarray(row * 11, (row + 1) * 11);
  const max = Math.max(...z);
  const e = Array.from(z, (v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return Float32Array.from(e, (v) => v / s);
}

function scaled(seed: number): Map<string, Float32Array> {
  const w = initLlamaWeights(CONFIG, seed);
  for (const [name, t] of w) if (!name.endsWith('norm.weight')) for (let i = 0; i < t.length; i++) t[i] = (t[i] ?? 0) * 30;
  return w;
}

describe('soft targets (distillation rows) in the loss', () => {
  const batch = (soft: Map<number, Float32Array>, mask = [0, 1, 1, 1, 1, 1]): TrainBatch => ({ batchSize: 1, seqLen: 6, tokens: Int32Array.from(TOKENS), lossMask: Uint8Array.from(mask), softTargets: soft });

  it('scores a row as −Σ p·log softmax: a one-hot distribution equals its hard target, a uniform one equals its mean log-loss', () => {
    const w = scaled(3);
    const hard = evaluateLoss(CONFIG, w, batch(new Map()), 1);
    const oneHot = new Float32Array(11);
    oneHot[TOKENS[3] ?? 0] = 1; // position 2 predicts token 3
    expect(evaluateLoss(CONFIG, w, batch(new Map([[2, oneHot]])), 1)).toBeCloseTo(hard, 6);
    const logits = llamaForward(CONFIG, w, Int32Array.from(TOKENS.slice(0, 6)), 1);
    const uniform = new Float32Array(11).fill(1 / 11);
    const p2 = softmaxRow(logits, 2);
    const meanLog = -Array.from(p2, (v) => Math.log(v)).reduce((a, b) => a + b, 0) / 11;
    const withUniform = evaluateLoss(CONFIG, w, batch(new Map([[2, uniform]])), 1);
    expect(withUniform).toBeCloseTo(hard + (meanLog + Math.log(p2[TOKENS[3] ?? 0] ?? 1)) / 5, 5);
  });

  it('has zero gradient where the model already predicts the target distribution', () => {
    const w = scaled(4);
    const logits = llamaForward(CONFIG, w, Int32Array.from(TOKENS.slice(0, 6)), 1);
    const own = new Map([1, 2, 3, 4, 5].map((n) => [n, softmaxRow(logits, n)]));
    const { gradients } = lossAndGradients(CONFIG, w, batch(own), 1);
    for (const [name, g] of gradients) for (const v of g) expect(Math.abs(v), name).toBeLessThan(1e-6);
  });

  it('matches central differences of the loss with soft and hard rows mixed', () => {
    const w = scaled(5);
    const p = Float32Array.from({ length: 11 }, (_, i) => (i + 1) / 66);
    const b = batch(new Map([[3, p]]));
    const { gradients } = lossAndGradients(CONFIG, w, b, 1);
    const name = 'model.layers.0.mlp.down_proj.weight';
    const t = w.get(name) ?? new Float32Array(0);
    const h = 1e-3;
    for (const i of [0, 17, 50, 95]) {
      const keep = t[i] ?? 0;
      t[i] = keep + h;
      const up = evaluateLoss(CONFIG, w, b, 1);
      t[i] = keep - h;
      const down = evaluateLoss(CONFIG, w, b, 1);
      t[i] = keep;
      expect(gradients.get(name)?.[i] ?? 0).toBeCloseTo((up - down) / (2 * h), 3);
    }
  });

  it('names a soft target of the wrong size', () => {
    expect(() => evaluateLoss(CONFIG, scaled(1), batch(new Map([[2, new Float32Array(3)]])), 1)).toThrow(/soft target of position 2 has 3 entries for a vocabulary of 11/);
  });
});
