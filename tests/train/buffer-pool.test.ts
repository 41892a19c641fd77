/**
 * buffer-pool.ts and the pooled tape: buffers come back zeroed whatever the last step left in them,
 * and trainLlama (whose steps reuse pooled activations and gradients) gives exactly the weights of
 * the same steps taken with fresh buffers (lossAndGradients + AdamW, no pool).
 */
import { describe, expect, it } from 'vitest';
import { AdamW, learningRateAt } from '../../src/train/adamw.js';
import { BufferPool } from '../../src/train/buffer-pool.js';
import { type LlamaTrainConfig, type TrainBatch, initLlamaWeights, lossAndGradients, trainLlama } from '../../src/train/index.js';
import { loadTrainKernels } from '../../src/train/kernels.js';
import { Tape } from '../../src/train/tape.js';

describe('BufferPool', () => {
  it('hands a given-back buffer out again, zeroed, only for its own length', () => {
    const pool = new BufferPool();
    const a = pool.take(8);
    a.fill(7);
    pool.give([a]);
    expect(pool.take(4)).not.toBe(a);
    const again = pool.take(8);
    expect(again).toBe(a);
    expect([...again]).toEqual(new Array(8).fill(0));
    expect(pool.take(8)).not.toBe(a); // taken twice, so a second one is new
  });

  it("a tape's release gives back every buffer it allocated, and a new tape reuses them", () => {
    const pool = new BufferPool();
    const tape = new Tape(loadTrainKernels(), 1, true, pool);
    const a = tape.alloc(16);
    const b = tape.alloc(16);
    a.fill(1);
    b.fill(2);
    tape.release();
    const next = new Tape(loadTrainKernels(), 1, true, pool);
    const got = [next.alloc(16), next.alloc(16)];
    expect(new Set(got)).toEqual(new Set([a, b]));
    for (const g of got) expect(g.every((x) => x === 0)).toBe(true);
  });
});

describe('pooled training', () => {
  const config: LlamaTrainConfig = { vocabSize: 40, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 2, numKvHeads: 1, maxSeqLen: 12, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: false, bosTokenId: 1, eosTokenId: 2 };
  const options = { steps: 5, learningRate: 5e-3, warmupSteps: 1, minLrRatio: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, gradClipNorm: 1, threads: 2 };
  const batch = (step: number): TrainBatch => {
    const B = 3;
    const T = 10;
    const tokens = new Int32Array(B * (T + 1));
    for (let i = 0; i < tokens.length; i++) tokens[i] = 3 + ((i * 13 + step * 29) % 37);
    const lossMask = new Uint8Array(B * T);
    for (let i = 0; i < lossMask.length; i++) lossMask[i] = i % 4 === 0 ? 0 : 1;
    return { batchSize: B, seqLen: T, tokens, lossMask };
  };

  it('gives the bytes of the same steps taken with fresh buffers', () => {
    const pooled = initLlamaWeights(config, 5);
    const fresh = initLlamaWeights(config, 5);
    const losses = trainLlama(config, pooled, batch, options).losses;
    const adam = new AdamW(options);
    for (let step = 0; step < options.steps; step++) {
      const { loss, gradients } = lossAndGradients(config, fresh, batch(step), options.threads);
      expect(loss).toBe(losses[step]);
      const params = [...fresh].map(([name, data]) => ({ name, data, grad: gradients.get(name) as Float32Array, decay: !name.endsWith('norm.weight') }));
      adam.step(params, learningRateAt(options, step));
    }
    for (const [name, w] of pooled) expect(Buffer.from(w.buffer).equals(Buffer.from((fresh.get(name) as Float32Array).buffer)), name).toBe(true);
  });
});
