import { describe, expect, it } from 'vitest';
import { type LlamaTrainConfig, type TrainBatch, initLlamaWeights, llamaForward, trainLlama } from '../../src/train/index.js';
import { neuronBlockMask, widenMlp } from '../../src/train/mlp-neurons.js';

const CONFIG: LlamaTrainConfig = { vocabSize: 16, hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 2, numKvHeads: 2, maxSeqLen: 8, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: 1, eosTokenId: 2 };
const ROWS = [
  [1, 3, 4, 5, 6, 7, 8, 9, 2],
  [1, 10, 11, 12, 13, 14, 15, 3, 2],
];
const BATCH: TrainBatch = { batchSize: 2, seqLen: 8, tokens: Int32Array.from(ROWS.flat()), lossMask: new Uint8Array(16).fill(1) };
const OPTIONS = { steps: 80, learningRate: 2e-2, warmupSteps: 5, minLrRatio: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, gradClipNorm: 1, threads: 1 };

/** A model whose weights are all of order 1, so that every neuron matters. */
function trained(): Map<string, Float32Array> {
  const w = initLlamaWeights(CONFIG, 3);
  trainLlama(CONFIG, w, () => BATCH, { ...OPTIONS, steps: 30 });
  return w;
}

describe('widenMlp', () => {
  it('adds neurons at the end with zero down_proj columns: the logits are unchanged', () => {
    const w = trained();
    const { config, weights } = widenMlp(CONFIG, w, 5, 1);
    expect(config.intermediateSize).toBe(17);
    const tokens = Int32Array.from([1, 3, 4, 5, 6, 7]);
    const before = llamaForward(CONFIG, w, tokens, 1);
    const after = llamaForward(config, weights, tokens, 1);
    for (let i = 0; i < before.length; i++) expect(Math.abs((after[i] ?? 0) - (before[i] ?? 0))).toBeLessThanOrEqual(1e-6);
    for (let l = 0; l < 2; l++) {
      const oldDown = w.get(`model.layers.${l}.mlp.down_proj.weight`) ?? new Float32Array(0);
      const down = weights.get(`model.layers.${l}.mlp.down_proj.weight`) ?? new Float32Array(0);
      const gate = weights.get(`model.layers.${l}.mlp.gate_proj.weight`) ?? new Float32Array(0);
      const oldGate = w.get(`model.layers.${l}.mlp.gate_proj.weight`) ?? new Float32Array(0);
      for (let r = 0; r < 8; r++) {
        // Old columns in place (row stride 12 → 17), new ones zero.
        for (let j = 0; j < 12; j++) expect(down[r * 17 + j]).toBe(oldDown[r * 12 + j]);
        for (let j = 12; j < 17; j++) expect(down[r * 17 + j]).toBe(0);
      }
      expect([...gate.subarray(0, 96)]).toEqual([...oldGate]);
      // Fresh rows are drawn (not zero) at init's scale.
      const fresh = gate.subarray(96);
      const rms = Math.sqrt(fresh.reduce((s, v) => s + v * v, 0) / fresh.length);
      expect(rms).toBeGreaterThan(0.01);
      expect(rms).toBeLessThan(0.04);
    }
    // Seeded: the same seed, the same bytes; another seed, other rows.
    const again = widenMlp(CONFIG, w, 5, 1).weights.get('model.layers.0.mlp.up_proj.weight');
    const other = widenMlp(CONFIG, w, 5, 2).weights.get('model.layers.0.mlp.up_proj.weight');
    expect([...(again ?? [])]).toEqual([...(weights.get('model.layers.0.mlp.up_proj.weight') ?? [])]);
    expect([...(other ?? [])]).not.toEqual([...(again ?? [])]);
    expect(() => widenMlp(CONFIG, w, -1, 1)).toThrow(/extra neurons must be a non-negative integer, got -1/);
  });
});

describe('neuronBlockMask confines a fine-tune to its neurons', () => {
  it('only the block’s gate/up rows and down columns move; everything else keeps its bytes; the loss falls', () => {
    const { config, weights } = widenMlp(CONFIG, trained(), 6, 1);
    const before = new Map([...weights].map(([k, v]) => [k, Float32Array.from(v)]));
    const block = { start: 12, end: 15 };
    const other = [{ ...BATCH, tokens: Int32Array.from([...[1, 3, 4, 5, 9, 9, 8, 7, 2], ...[1, 10, 11, 12, 5, 5, 4, 3, 2]]) }][0] ?? BATCH;
    const { losses } = trainLlama(config, weights, () => other, { ...OPTIONS, trainable: (n) => n.includes('.mlp.'), updateMask: (n) => neuronBlockMask(config, n, block) });
    expect(losses[79]).toBeLessThan((losses[0] ?? 0) - 0.2);
    const I = config.intermediateSize;
    const E = config.hiddenSize;
    for (const [name, w] of weights) {
      const old = before.get(name) ?? new Float32Array(0);
      w.forEach((v, i) => {
        const isGateUp = /(gate|up)_proj/.test(name);
        const isDown = /down_proj/.test(name);
        const j = isGateUp ? Math.floor(i / E) : isDown ? i % I : -1;
        const inBlock = j >= block.start && j < block.end;
        if (!inBlock) expect(v, `${name}[${i}]`).toBe(old[i]);
      });
      if (/down_proj/.test(name)) {
        // The block's columns learned something (they started at zero).
        let moved = 0;
        for (let r = 0; r < E; r++) for (let j = block.start; j < block.end; j++) moved += Math.abs(w[r * I + j] ?? 0);
        expect(moved, name).toBeGreaterThan(0);
      }
    }
  });

  it('rejects a block outside the neurons and a mask of the wrong size', () => {
    expect(() => neuronBlockMask(CONFIG, 'model.layers.0.mlp.up_proj.weight', { start: 10, end: 13 })).toThrow(/\[10, 13\) must be a non-empty range inside the 12 MLP neurons/);
    expect(() => neuronBlockMask(CONFIG, 'model.layers.0.mlp.up_proj.weight', { start: 4, end: 4 })).toThrow(/non-empty/);
    expect(neuronBlockMask(CONFIG, 'model.layers.0.self_attn.q_proj.weight', { start: 0, end: 4 })).toBeUndefined();
    const w = initLlamaWeights(CONFIG, 1);
    expect(() => trainLlama(CONFIG, w, () => BATCH, { ...OPTIONS, steps: 1, updateMask: (n) => (n.includes('q_proj') ? new Uint8Array(3) : undefined) })).toThrow(/updateMask of model\.layers\.0\.self_attn\.q_proj\.weight has 3 entries, the tensor 64/);
  });
});
