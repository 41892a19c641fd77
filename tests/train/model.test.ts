import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LlamaTrainConfig, type TrainBatch, evaluateLoss, initLlamaWeights, learningRateAt, llamaForward, loadLlamaCheckpoint, lossAndGradients, greedyContinuation, saveLlamaCheckpoint, trainLlama } from '../../src/train/index.js';
import { loadReferenceModel, referenceLogits } from '../model/reference-forward.js';

const GQA: LlamaTrainConfig = { vocabSize: 13, hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 2, numKvHeads: 1, maxSeqLen: 6, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: false, bosTokenId: 1, eosTokenId: 2 };
const TIED: LlamaTrainConfig = { ...GQA, numKvHeads: 2, tieEmbeddings: true };

function batchOf(rows: number[][], mask?: number[]): TrainBatch {
  const seqLen = (rows[0]?.length ?? 1) - 1;
  return { batchSize: rows.length, seqLen, tokens: Int32Array.from(rows.flat()), lossMask: Uint8Array.from(mask ?? new Array(rows.length * seqLen).fill(1)) };
}

const BATCH = batchOf(
  [
    [1, 5, 7, 3, 9, 2, 4],
    [1, 8, 8, 6, 12, 11, 0],
  ],
  [1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0],
);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-train-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function perturbed(weights: ReadonlyMap<string, Float32Array>, direction: ReadonlyMap<string, Float32Array>, h: number): Map<string, Float32Array> {
  return new Map([...weights].map(([k, w]) => [k, Float32Array.from(w, (v, i) => v + h * (direction.get(k)?.[i] ?? 0))]));
}

function randomLike(weights: ReadonlyMap<string, Float32Array>, seed: number): Map<string, Float32Array> {
  let s = seed;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  return new Map([...weights].map(([k, w]) => [k, Float32Array.from(w, () => next())]));
}

describe('the autograd computes the gradient of the loss', () => {
  for (const [label, config] of [
    ['grouped-query attention, separate head', GQA],
    ['tied embeddings', TIED],
  ] as const) {
    it(`matches central differences of the loss along random directions and per tensor (${label})`, () => {
      const weights = initLlamaWeights(config, 7);
      // Larger than init so that every path carries signal; the norms away from 1.
      for (const [name, w] of weights) for (let i = 0; i < w.length; i++) w[i] = name.endsWith('norm.weight') ? 1 + 0.3 * Math.sin(i) : (w[i] ?? 0) * 25;
      const { loss, gradients } = lossAndGradients(config, weights, BATCH, 1);
      expect(loss).toBeCloseTo(evaluateLoss(config, weights, BATCH, 1), 6);
      const h = 2e-3;
      // Whole-model directions, then one direction confined to each tensor.
      const directions = [1, 2, 3].map((seed) => randomLike(weights, seed));
      for (const name of weights.keys()) {
        const d = new Map([...weights].map(([k, w]) => [k, k === name ? (randomLike(new Map([[k, w]]), name.length).get(k) ?? w) : new Float32Array(w.length)]));
        directions.push(d);
      }
      directions.forEach((d, index) => {
        let analytic = 0;
        for (const [k, g] of gradients) g.forEach((v, i) => (analytic += v * (d.get(k)?.[i] ?? 0)));
        // Loss in f64 of an f32 forward: a wide step keeps rounding noise far below the tolerance.
        const numeric = (lossAt(config, perturbed(weights, d, h)) - lossAt(config, perturbed(weights, d, -h))) / (2 * h);
        expect(Math.abs(analytic - numeric), `direction ${index}: analytic ${analytic}, numeric ${numeric}`).toBeLessThan(2e-3 + 2e-2 * Math.abs(numeric));
      });
    });
  }
});

function lossAt(config: LlamaTrainConfig, weights: Map<string, Float32Array>): number {
  return evaluateLoss(config, weights, BATCH, 1);
}

describe('the forward pass is transformers\' LlamaForCausalLM', () => {
  for (const [label, config] of [
    ['GQA, separate head', GQA],
    ['tied embeddings', TIED],
  ] as const) {
    it(`saved checkpoints give the reference forward's logits (${label})`, async () => {
      const weights = initLlamaWeights(config, 3);
      for (const [name, w] of weights) for (let i = 0; i < w.length; i++) w[i] = name.endsWith('norm.weight') ? 1 + 0.2 * Math.cos(i) : (w[i] ?? 0) * 30;
      const out = path.join(dir, label.replace(/\W+/g, '-'));
      await saveLlamaCheckpoint(out, config, weights);
      const tokens = [1, 4, 9, 9, 3, 12];
      const want = referenceLogits(await loadReferenceModel(out), tokens);
      const got = llamaForward(config, weights, Int32Array.from(tokens), 1);
      let worst = 0;
      want.forEach((row, t) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - (got[t * config.vocabSize + j] ?? 0))))));
      expect(worst).toBeLessThan(1e-4);
      expect(Math.max(...[...(want[5] ?? [])].map(Math.abs))).toBeGreaterThan(0.1);
    });
  }

  it('round-trips through safetensors in f32 exactly and in bf16 to bf16 precision', async () => {
    const weights = initLlamaWeights(GQA, 5);
    const out = path.join(dir, 'roundtrip');
    await saveLlamaCheckpoint(out, GQA, weights);
    const back = await loadLlamaCheckpoint(out);
    expect(back.config).toEqual(GQA);
    for (const [k, w] of weights) expect(Buffer.from((back.weights.get(k) ?? new Float32Array(0)).buffer).equals(Buffer.from(w.buffer)), k).toBe(true);
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ architectures: ['LlamaForCausalLM'], num_key_value_heads: 1, tie_word_embeddings: false, torch_dtype: 'float32' });
    const bf = path.join(dir, 'roundtrip-bf16');
    await saveLlamaCheckpoint(bf, GQA, weights, { dtype: 'bf16' });
    const lossy = await loadLlamaCheckpoint(bf);
    for (const [k, w] of weights) w.forEach((v, i) => expect(Math.abs((lossy.weights.get(k)?.[i] ?? 0) - v)).toBeLessThanOrEqual(Math.abs(v) / 128));
  });

  it('loading names the missing tensor and the bad key', async () => {
    const weights = initLlamaWeights(GQA, 5);
    const out = path.join(dir, 'broken');
    await saveLlamaCheckpoint(out, GQA, weights);
    const raw = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(out, 'config.json'), JSON.stringify({ ...raw, rms_norm_eps: 'small' }));
    await expect(loadLlamaCheckpoint(out)).rejects.toThrow(/config\.json: rms_norm_eps must be a number/);
    const partial = new Map(weights);
    partial.delete('model.layers.1.mlp.up_proj.weight');
    await expect(saveLlamaCheckpoint(path.join(dir, 'partial'), GQA, partial)).rejects.toThrow(/missing tensor model\.layers\.1\.mlp\.up_proj\.weight/);
  });
});

describe('training', () => {
  const config: LlamaTrainConfig = { ...TIED, maxSeqLen: 8, vocabSize: 16 };
  const rows = [
    [1, 3, 4, 5, 6, 7, 8, 9, 2],
    [1, 10, 11, 12, 13, 14, 15, 3, 2],
  ];
  const options = { steps: 60, learningRate: 1e-2, warmupSteps: 5, minLrRatio: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, gradClipNorm: 1 };

  it('memorises two sequences (loss falls from ln(vocab) to the floor set by their shared first token)', () => {
    const weights = initLlamaWeights(config, 1);
    const { losses } = trainLlama(config, weights, () => batchOf(rows), { ...options, steps: 200, learningRate: 2e-2, threads: 1 });
    expect(losses[0]).toBeCloseTo(Math.log(16), 0);
    // After BOS both rows are equally likely: ln 2 on 2 of the 16 predictions is the least loss possible.
    const floor = (2 * Math.LN2) / 16;
    expect(losses[199]).toBeGreaterThan(floor - 1e-3);
    expect(losses[199]).toBeLessThan(floor + 0.05);
    expect(evaluateLoss(config, weights, batchOf(rows))).toBeLessThan(floor + 0.05);
  });

  it('is deterministic: the same bytes for 1 and 3 threads', () => {
    const a = initLlamaWeights(config, 2);
    const b = initLlamaWeights(config, 2);
    const la = trainLlama(config, a, () => batchOf(rows), { ...options, steps: 10, threads: 1 }).losses;
    const lb = trainLlama(config, b, () => batchOf(rows), { ...options, steps: 10, threads: 3 }).losses;
    expect([...la]).toEqual([...lb]);
    for (const [k, w] of a) expect(Buffer.from((b.get(k) ?? new Float32Array(0)).buffer).equals(Buffer.from(w.buffer)), k).toBe(true);
  });

  it('masked positions do not count', () => {
    const weights = initLlamaWeights(config, 4);
    const all = evaluateLoss(config, weights, batchOf([rows[0] ?? []]));
    const firstOnly = evaluateLoss(config, weights, batchOf([rows[0] ?? []], [1, 0, 0, 0, 0, 0, 0, 0]));
    const other = evaluateLoss(config, weights, batchOf([rows[1] ?? []], [1, 0, 0, 0, 0, 0, 0, 0]));
    expect(firstOnly).not.toBeCloseTo(all, 4);
    // Position 0 predicts token 3 from BOS in row 0 and token 10 in row 1: different losses, each a single term.
    expect(firstOnly).not.toBeCloseTo(other, 4);
  });

  it('trainable: frozen tensors keep their bytes, trained ones move, and the loss still falls', () => {
    const weights = initLlamaWeights(config, 5);
    const before = new Map([...weights].map(([k, w]) => [k, Float32Array.from(w)]));
    const { losses } = trainLlama(config, weights, () => batchOf(rows), { ...options, steps: 150, learningRate: 2e-2, threads: 1, trainable: (name) => name.includes('.mlp.') });
    for (const [k, w] of weights) {
      const same = Buffer.from(w.buffer).equals(Buffer.from((before.get(k) ?? new Float32Array(0)).buffer));
      expect(same, k).toBe(!k.includes('.mlp.'));
    }
    expect(losses[149]).toBeLessThan((losses[0] ?? 0) - 0.1);
    expect(() => trainLlama(config, weights, () => batchOf(rows), { ...options, trainable: () => false })).toThrow(/trainable and updateMask leave no element to train/);
  });

  it('greedyContinuation emits the argmax of the forward pass at each step and stops at a stop id', () => {
    const weights = initLlamaWeights(config, 6);
    const prompt = [1, 3, 4];
    const free = greedyContinuation(config, weights, prompt, { maxNewTokens: 4, stopIds: [], threads: 1 });
    expect(free).toHaveLength(4);
    const ids = [...prompt];
    for (const next of free) {
      const logits = llamaForward(config, weights, Int32Array.from(ids), 1);
      const last = [...logits.subarray((ids.length - 1) * config.vocabSize)];
      expect(next).toBe(last.indexOf(Math.max(...last)));
      ids.push(next);
    }
    const first = free[0] ?? -1;
    expect(greedyContinuation(config, weights, prompt, { maxNewTokens: 4, stopIds: [first], threads: 1 })).toEqual([first]);
    // Never past the model's context.
    expect(greedyContinuation(config, weights, [1, 3, 4, 5, 6, 7], { maxNewTokens: 10, stopIds: [], threads: 1 })).toHaveLength(2);
    expect(() => greedyContinuation(config, weights, [], { maxNewTokens: 1, stopIds: [] })).toThrow(/empty prompt/);
  });

  it('rejects bad batches and options, naming the problem', () => {
    const weights = initLlamaWeights(config, 4);
    expect(() => evaluateLoss(config, weights, batchOf([[1, 2, 99]]))).toThrow(/token id 99 in row 0 is outside the vocabulary of 16/);
    expect(() => evaluateLoss(config, weights, { batchSize: 1, seqLen: 3, tokens: new Int32Array(3), lossMask: new Uint8Array(3) })).toThrow(/tokens holds 3 ids, expected 1 rows of 4/);
    expect(() => evaluateLoss(config, weights, batchOf([new Array(10).fill(1)]))).toThrow(/seqLen 9 exceeds the model's maxSeqLen 8/);
    expect(() => trainLlama(config, weights, () => batchOf(rows), { ...options, learningRate: 0 })).toThrow(/learningRate must be positive/);
    expect(() => initLlamaWeights({ ...config, numKvHeads: 3 }, 1)).toThrow(/numHeads 2 is not a multiple of numKvHeads 3/);
  });
});

describe('learning-rate schedule', () => {
  const s = { steps: 11, learningRate: 1, warmupSteps: 2, minLrRatio: 0.1 };
  it('warms up linearly, then follows a cosine to the floor at the last step', () => {
    expect(learningRateAt(s, 0)).toBeCloseTo(0.5, 12);
    expect(learningRateAt(s, 1)).toBeCloseTo(1, 12);
    expect(learningRateAt(s, 2)).toBeCloseTo(1, 12);
    // halfway through the 8-step decay: floor + (1 − floor)/2
    expect(learningRateAt(s, 6)).toBeCloseTo(0.55, 12);
    expect(learningRateAt(s, 10)).toBeCloseTo(0.1, 12);
  });
});
