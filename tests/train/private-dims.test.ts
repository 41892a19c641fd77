import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LlamaTrainConfig, type TrainBatch, initLlamaWeights, llamaForward, loadLlamaCheckpoint, saveLlamaCheckpoint, trainLlama } from '../../src/train/index.js';
import { widenMlp } from '../../src/train/mlp-neurons.js';
import { type PrivateParts, gateNeuronsOn, privatePartsMask, seedPrivateEmbeddings, seedPrivateHeads, widenHeads, widenResidual } from '../../src/train/private-dims.js';

// Tokens 3–8 are task A's own, 9–14 task B's, 15 is shared (like the tasks' "Answer:").
const CONFIG: LlamaTrainConfig = { vocabSize: 16, hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 2, numKvHeads: 2, maxSeqLen: 8, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: 1, eosTokenId: 2 };
const OPTIONS = { steps: 40, learningRate: 3e-2, warmupSteps: 2, minLrRatio: 0.1, weightDecay: 0, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, gradClipNorm: 1, threads: 1 };
const batch = (rows: number[][]): TrainBatch => ({ batchSize: rows.length, seqLen: 8, tokens: Int32Array.from(rows.flat()), lossMask: new Uint8Array(rows.length * 8).fill(1) });
const BASE_ROWS = [
  [1, 3, 4, 15, 5, 6, 7, 8, 2],
  [1, 9, 10, 15, 11, 12, 13, 14, 2],
];
const A_ROWS = [[1, 3, 15, 8, 7, 6, 5, 4, 2]];
const B_ROWS = [[1, 9, 15, 14, 13, 12, 11, 10, 2]];

function trainedBase(): Map<string, Float32Array> {
  const w = initLlamaWeights(CONFIG, 3);
  trainLlama(CONFIG, w, () => batch(BASE_ROWS), { ...OPTIONS, steps: 30 });
  return w;
}

describe('widenResidual', () => {
  it('adds zero dims the model does not use: the logits stay, the heads keep their width', () => {
    const w = trainedBase();
    const { config, weights } = widenResidual(CONFIG, w, 4);
    expect(config.hiddenSize).toBe(12);
    expect(config.headDim).toBe(4);
    expect(weights.get('model.layers.0.self_attn.q_proj.weight')?.length).toBe(8 * 12);
    expect(weights.get('model.layers.0.self_attn.o_proj.weight')?.length).toBe(12 * 8);
    const tokens = Int32Array.from([1, 3, 4, 15, 9, 10]);
    const before = llamaForward(CONFIG, w, tokens, 1);
    const after = llamaForward(config, weights, tokens, 1);
    let worst = 0;
    for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs((after[i] ?? 0) - (before[i] ?? 0)) / Math.max(1, Math.abs(before[i] ?? 0)));
    expect(worst).toBeLessThan(1e-5);
    expect(config.rmsEps).toBeCloseTo((1e-5 * 8) / 12, 12);
    const embed = weights.get('model.embed_tokens.weight') ?? new Float32Array(0);
    for (let t = 0; t < 16; t++) expect([...embed.subarray(t * 12 + 8, t * 12 + 12)]).toEqual([0, 0, 0, 0]);
  });

  it('a widened model saves head_dim and loads back with it', async () => {
    const { config, weights } = widenResidual(CONFIG, trainedBase(), 4);
    const dir = await mkdtemp(path.join(tmpdir(), 'evo-private-dims-'));
    try {
      await saveLlamaCheckpoint(dir, config, weights);
      const json = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect([json.hidden_size, json.head_dim]).toEqual([12, 4]);
      const loaded = await loadLlamaCheckpoint(dir);
      expect(loaded.config).toEqual(config);
      const tokens = Int32Array.from([1, 3, 9]);
      expect([...llamaForward(loaded.config, loaded.weights, tokens, 1)]).toEqual([...llamaForward(config, weights, tokens, 1)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('private parts', () => {
  // Base grown by 4 + 4 fresh neurons and 2 + 2 dims; A owns dims [8, 10) and neurons [12, 16).
  function setup(): { config: LlamaTrainConfig; base: Map<string, Float32Array>; a: PrivateParts; b: PrivateParts } {
    const grownMlp = widenMlp(CONFIG, trainedBase(), 8, 1);
    const { config, weights } = widenResidual(grownMlp.config, grownMlp.weights, 4);
    const a: PrivateParts = { dims: { start: 8, end: 10 }, tokens: [3, 4, 5, 6, 7, 8], neurons: { start: 12, end: 16 }, others: [{ start: 10, end: 12 }] };
    const b: PrivateParts = { dims: { start: 10, end: 12 }, tokens: [9, 10, 11, 12, 13, 14], neurons: { start: 16, end: 20 }, others: [{ start: 8, end: 10 }] };
    for (const p of [a, b]) if (p.neurons !== undefined) gateNeuronsOn(config, weights, p.neurons, p.dims, 1);
    return { config, base: weights, a, b };
  }
  function fineTune(config: LlamaTrainConfig, base: Map<string, Float32Array>, parts: PrivateParts, rows: number[][], seed: string): Map<string, Float32Array> {
    const w = new Map([...base].map(([k, v]) => [k, new Float32Array(v)]));
    seedPrivateEmbeddings(config, w, parts, seed);
    trainLlama(config, w, () => batch(rows), { ...OPTIONS, updateMask: (name) => privatePartsMask(config, name, parts) });
    return w;
  }

  it('a fine-tune leaves prompts without its tokens exactly as the base computes them, alone and summed with another', () => {
    const { config, base, a, b } = setup();
    const fa = fineTune(config, base, a, A_ROWS, 'a');
    const fb = fineTune(config, base, b, B_ROWS, 'b');
    // Task arithmetic 1/1: base + (fa − base) + (fb − base).
    const sum = new Map([...base].map(([k, v]) => {
      const x = fa.get(k) ?? v;
      const y = fb.get(k) ?? v;
      return [k, v.map((bv, i) => bv + ((x[i] ?? 0) - bv) + ((y[i] ?? 0) - bv))];
    }));
    const aPrompt = Int32Array.from([1, 3, 15, 8, 7]);
    const bPrompt = Int32Array.from([1, 9, 15, 14, 13]);
    const shared = Int32Array.from([1, 15, 15]);
    const same = (x: Float32Array, y: Float32Array): number => x.reduce((m, v, i) => Math.max(m, Math.abs(v - (y[i] ?? 0))), 0);
    // Each fine-tune learned something on its own prompts...
    expect(same(llamaForward(config, fa, aPrompt, 1), llamaForward(config, base, aPrompt, 1))).toBeGreaterThan(0.5);
    expect(same(llamaForward(config, fb, bPrompt, 1), llamaForward(config, base, bPrompt, 1))).toBeGreaterThan(0.5);
    // ...and nothing anywhere else: the other task's prompts and shared tokens give the base's logits bit for bit.
    expect(same(llamaForward(config, fa, bPrompt, 1), llamaForward(config, base, bPrompt, 1))).toBe(0);
    expect(same(llamaForward(config, fb, aPrompt, 1), llamaForward(config, base, aPrompt, 1))).toBe(0);
    expect(same(llamaForward(config, fa, shared, 1), llamaForward(config, base, shared, 1))).toBe(0);
    // In the sum each task's prompts see only their own fine-tune (up to the rounding of base + Δ − base).
    expect(same(llamaForward(config, sum, aPrompt, 1), llamaForward(config, fa, aPrompt, 1))).toBeLessThan(1e-5);
    expect(same(llamaForward(config, sum, bPrompt, 1), llamaForward(config, fb, bPrompt, 1))).toBeLessThan(1e-5);
  });

  it('masks only what reads the own dims: o_proj frozen, other dims never written by its neurons', () => {
    const { config, a } = setup();
    const H = 12;
    const I = 20;
    const down = privatePartsMask(config, 'model.layers.0.mlp.down_proj.weight', a);
    for (let r = 0; r < H; r++) for (let j = 0; j < I; j++) expect(down[r * I + j]).toBe(j >= 12 && j < 16 && !(r >= 10) ? 1 : 0);
    const gate = privatePartsMask(config, 'model.layers.1.mlp.gate_proj.weight', a);
    for (let j = 0; j < I; j++) for (let d = 0; d < H; d++) expect(gate[j * H + d]).toBe(d >= 8 && d < 10 ? 1 : 0);
    const up = privatePartsMask(config, 'model.layers.1.mlp.up_proj.weight', a);
    for (let j = 0; j < I; j++) for (let d = 0; d < H; d++) expect(up[j * H + d]).toBe((d >= 8 && d < 10) || (j >= 12 && j < 16) ? 1 : 0);
    expect(privatePartsMask(config, 'model.layers.0.self_attn.o_proj.weight', a).every((v) => v === 0)).toBe(true);
    const embed = privatePartsMask(config, 'model.embed_tokens.weight', a);
    for (let t = 0; t < 16; t++) for (let d = 0; d < H; d++) expect(embed[t * H + d]).toBe(t >= 3 && t <= 8 && d >= 8 && d < 10 ? 1 : 0);
    expect([...privatePartsMask(config, 'model.norm.weight', a)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]);
    expect(() => privatePartsMask(config, 'model.norm.weight', { ...a, dims: { start: 10, end: 13 } })).toThrow(/inside the 12 residual dims/);
  });
});

describe('private heads', () => {
  // As above, plus one fresh head each: A owns head 2, B head 3 (heads 0–1 are the base's).
  function setup(): { config: LlamaTrainConfig; base: Map<string, Float32Array>; a: PrivateParts; b: PrivateParts } {
    const grownMlp = widenMlp(CONFIG, trainedBase(), 8, 1);
    const wide = widenResidual(grownMlp.config, grownMlp.weights, 4);
    const { config, weights } = widenHeads(wide.config, wide.weights, 2);
    const a: PrivateParts = { dims: { start: 8, end: 10 }, tokens: [3, 4, 5, 6, 7, 8], neurons: { start: 12, end: 16 }, others: [{ start: 10, end: 12 }], heads: { start: 2, end: 3 }, otherHeads: [{ start: 3, end: 4 }] };
    const b: PrivateParts = { dims: { start: 10, end: 12 }, tokens: [9, 10, 11, 12, 13, 14], neurons: { start: 16, end: 20 }, others: [{ start: 8, end: 10 }], heads: { start: 3, end: 4 }, otherHeads: [{ start: 2, end: 3 }] };
    for (const p of [a, b]) if (p.neurons !== undefined) gateNeuronsOn(config, weights, p.neurons, p.dims, 1);
    return { config, base: weights, a, b };
  }
  const same = (x: Float32Array, y: Float32Array): number => x.reduce((m, v, i) => Math.max(m, Math.abs(v - (y[i] ?? 0))), 0);

  it('widenHeads adds heads of the same width that change nothing', () => {
    const w = trainedBase();
    const { config, weights } = widenHeads(CONFIG, w, 3);
    expect([config.numHeads, config.numKvHeads, config.headDim]).toEqual([5, 5, 4]);
    expect(weights.get('model.layers.1.self_attn.k_proj.weight')?.length).toBe(20 * 8);
    expect(weights.get('model.layers.1.self_attn.o_proj.weight')?.length).toBe(8 * 20);
    const tokens = Int32Array.from([1, 3, 4, 15, 9, 10]);
    expect(same(llamaForward(config, weights, tokens, 1), llamaForward(CONFIG, w, tokens, 1))).toBeLessThan(1e-5);
    expect(() => widenHeads({ ...CONFIG, numKvHeads: 1 }, initLlamaWeights({ ...CONFIG, numKvHeads: 1 }, 1), 1)).toThrow(/numKvHeads = numHeads/);
  });

  it('a fine-tune with its own head still leaves the other task bit for bit, and its head does change its own task', () => {
    const { config, base, a, b } = setup();
    const tune = (parts: PrivateParts, rows: number[][], seed: string, withHead: boolean): Map<string, Float32Array> => {
      const w = new Map([...base].map(([k, v]) => [k, new Float32Array(v)]));
      const p: PrivateParts = withHead ? parts : { dims: parts.dims, tokens: parts.tokens, others: parts.others, ...(parts.neurons === undefined ? {} : { neurons: parts.neurons }) };
      seedPrivateEmbeddings(config, w, p, seed);
      seedPrivateHeads(config, w, p, seed);
      trainLlama(config, w, () => batch(rows), { ...OPTIONS, updateMask: (name) => privatePartsMask(config, name, p) });
      return w;
    };
    const fa = tune(a, A_ROWS, 'a', true);
    const fb = tune(b, B_ROWS, 'b', true);
    const aPrompt = Int32Array.from([1, 3, 15, 8, 7]);
    const bPrompt = Int32Array.from([1, 9, 15, 14, 13]);
    expect(same(llamaForward(config, fa, bPrompt, 1), llamaForward(config, base, bPrompt, 1))).toBe(0);
    expect(same(llamaForward(config, fb, aPrompt, 1), llamaForward(config, base, aPrompt, 1))).toBe(0);
    expect(same(llamaForward(config, fa, Int32Array.from([1, 15, 15]), 1), llamaForward(config, base, Int32Array.from([1, 15, 15]), 1))).toBe(0);
    // The head was trained: its o_proj columns moved off zero, and the other's head was left alone.
    const D = 4;
    const width = 4 * D;
    const o = fa.get('model.layers.0.self_attn.o_proj.weight') ?? new Float32Array(0);
    let own = 0;
    let theirs = 0;
    for (let r = 0; r < 12; r++) {
      for (let c = 0; c < D; c++) {
        own = Math.max(own, Math.abs(o[r * width + 2 * D + c] ?? 0));
        theirs = Math.max(theirs, Math.abs(o[r * width + 3 * D + c] ?? 0));
      }
    }
    expect(own).toBeGreaterThan(1e-3);
    expect(theirs).toBe(0);
    // Summed with the other fine-tune, each task still sees only its own.
    const sum = new Map([...base].map(([k, v]) => {
      const x = fa.get(k) ?? v;
      const y = fb.get(k) ?? v;
      return [k, v.map((bv, i) => bv + ((x[i] ?? 0) - bv) + ((y[i] ?? 0) - bv))];
    }));
    expect(same(llamaForward(config, sum, aPrompt, 1), llamaForward(config, fa, aPrompt, 1))).toBeLessThan(1e-5);
    expect(same(llamaForward(config, sum, bPrompt, 1), llamaForward(config, fb, bPrompt, 1))).toBeLessThan(1e-5);
  });

  it('masks: own heads read all but the other\'s dims (values: own dims only) and write all but the other\'s dims; the other\'s head is frozen', () => {
    const { config, a } = setup();
    const H = 12;
    const D = 4;
    const q = privatePartsMask(config, 'model.layers.0.self_attn.q_proj.weight', a);
    const v = privatePartsMask(config, 'model.layers.0.self_attn.v_proj.weight', a);
    for (let r = 0; r < 4 * D; r++) {
      const head = Math.floor(r / D);
      for (let d = 0; d < H; d++) {
        const ownDim = d >= 8 && d < 10;
        expect(q[r * H + d]).toBe(head === 3 ? 0 : head === 2 ? (d >= 10 ? 0 : 1) : ownDim ? 1 : 0);
        expect(v[r * H + d]).toBe(head === 3 ? 0 : ownDim ? 1 : 0);
      }
    }
    const o = privatePartsMask(config, 'model.layers.1.self_attn.o_proj.weight', a);
    for (let r = 0; r < H; r++) for (let c = 0; c < 4 * D; c++) expect(o[r * 4 * D + c]).toBe(Math.floor(c / D) === 2 && r < 10 ? 1 : 0);
    expect(() => privatePartsMask(config, 'model.norm.weight', { ...a, heads: { start: 3, end: 5 } })).toThrow(/inside the 4 attention heads/);
  });
});
