import { describe, expect, it } from 'vitest';
import { AdamW } from '../../src/train/adamw.js';
import { type GradRegion, maskRegions } from '../../src/train/grad-regions.js';
import { type LlamaTrainConfig, type TrainBatch, initLlamaWeights, learningRateAt, llamaWeightShapes, lossAndGradients, trainLlama } from '../../src/train/index.js';
import { privatePartsMask } from '../../src/train/private-dims.js';

function maskOf(rows: number, cols: number, ones: (r: number, c: number) => boolean): Uint8Array {
  const m = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m[r * cols + c] = ones(r, c) ? 1 : 0;
  return m;
}

/** Each element: how many regions cover it. */
function coverage(regions: readonly GradRegion[], rows: number, cols: number): Uint8Array {
  const n = new Uint8Array(rows * cols);
  for (const g of regions) {
    expect(g.row0).toBeGreaterThanOrEqual(0);
    expect(g.col0).toBeGreaterThanOrEqual(0);
    expect(g.row1).toBeLessThanOrEqual(rows);
    expect(g.col1).toBeLessThanOrEqual(cols);
    expect(g.row1).toBeGreaterThan(g.row0);
    expect(g.col1).toBeGreaterThan(g.col0);
    for (let r = g.row0; r < g.row1; r++) for (let c = g.col0; c < g.col1; c++) n[r * cols + c] = (n[r * cols + c] ?? 0) + 1;
  }
  return n;
}

describe('maskRegions', () => {
  it('hand cases: a column band, scattered rows on one band, two patterns, nothing, too many', () => {
    expect(maskRegions(maskOf(5, 8, (_r, c) => c >= 2 && c < 4), 5, 8)).toEqual([{ row0: 0, row1: 5, col0: 2, col1: 4 }]);
    // Rows 1, 4 and 6 on columns [5, 7): one rectangle over rows [1, 7), the empty rows between included.
    expect(maskRegions(maskOf(8, 8, (r, c) => [1, 4, 6].includes(r) && c >= 5 && c < 7), 8, 8)).toEqual([{ row0: 1, row1: 7, col0: 5, col1: 7 }]);
    // Columns [0, 2) everywhere, rows [3, 5) also [4, 8): an up_proj with its own neurons' rows.
    expect(maskRegions(maskOf(6, 8, (r, c) => c < 2 || (r >= 3 && r < 5 && c >= 4)), 6, 8)).toEqual([
      { row0: 0, row1: 3, col0: 0, col1: 2 },
      { row0: 3, row1: 5, col0: 0, col1: 2 },
      { row0: 3, row1: 5, col0: 4, col1: 8 },
      { row0: 5, row1: 6, col0: 0, col1: 2 },
    ]);
    expect(maskRegions(new Uint8Array(12), 3, 4)).toEqual([]);
    // A checkerboard needs 32 rectangles; with at most 4, the bounding box.
    expect(maskRegions(maskOf(8, 8, (r, c) => (r + c) % 2 === 0), 8, 8)).toHaveLength(32);
    expect(maskRegions(maskOf(8, 8, (r, c) => r > 0 && (r + c) % 2 === 0), 8, 8, 4)).toEqual([{ row0: 1, row1: 8, col0: 0, col1: 8 }]);
    expect(() => maskRegions(new Uint8Array(5), 2, 3)).toThrow(/5 mask entries for a 2 × 3 matrix/);
  });

  it('fuzz: disjoint rectangles covering every 1, and a 0 only in rows without any 1', () => {
    let s = 12345;
    const next = (): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s / 2 ** 32;
    };
    for (let trial = 0; trial < 300; trial++) {
      const rows = 1 + Math.floor(next() * 12);
      const cols = 1 + Math.floor(next() * 12);
      const density = next();
      // Half the masks are structured (column bands on some rows), half noise.
      const band0 = Math.floor(next() * cols);
      const band1 = band0 + 1 + Math.floor(next() * (cols - band0));
      const mask = trial % 2 === 0 ? maskOf(rows, cols, () => next() < density) : maskOf(rows, cols, (_r, c) => c >= band0 && c < band1 && next() < 0.5 + density / 2);
      const cap = trial % 3 === 0 ? 3 : 64;
      const regions = maskRegions(mask, rows, cols, cap);
      const n = coverage(regions, rows, cols);
      const rowHasOne = (r: number): boolean => mask.subarray(r * cols, (r + 1) * cols).includes(1);
      const capped = regions.length === 1 && regions.length < maskRegions(mask, rows, cols, Infinity).length;
      for (let i = 0; i < mask.length; i++) {
        expect(n[i], `trial ${trial} element ${i}`).toBeLessThanOrEqual(1);
        if (mask[i] === 1) expect(n[i], `trial ${trial} element ${i}`).toBe(1);
        else if (n[i] === 1 && !capped) expect(rowHasOne(Math.floor(i / cols)), `trial ${trial} element ${i}`).toBe(false);
      }
      expect(regions.length).toBeLessThanOrEqual(cap);
    }
  });
});

describe('masked training computes gradients only where they are used', () => {
  const config: LlamaTrainConfig = { vocabSize: 16, hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 2, numKvHeads: 2, maxSeqLen: 8, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: 1, eosTokenId: 2 };
  const batch: TrainBatch = { batchSize: 2, seqLen: 8, tokens: Int32Array.from([1, 3, 4, 5, 6, 7, 8, 9, 2, 1, 10, 11, 12, 13, 14, 15, 3, 2]), lossMask: new Uint8Array(16).fill(1) };
  const options = { learningRate: 2e-2, warmupSteps: 2, minLrRatio: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, gradClipNorm: 1, threads: 1 };
  // Private dims [5, 8), neurons [9, 12), head 1, tokens 3 and 7: masks of every shape the demo uses (bands, scattered rows, all zero).
  const parts = { dims: { start: 5, end: 8 }, tokens: [3, 7], others: [{ start: 0, end: 2 }], neurons: { start: 9, end: 12 }, heads: { start: 1, end: 2 } };
  const mask = (name: string): Uint8Array | undefined => (name.endsWith('input_layernorm.weight') ? undefined : privatePartsMask(config, name, parts));
  const trainable = (name: string): boolean => !name.startsWith('model.layers.0.mlp.');

  it('trainLlama gives the bytes of full gradients followed by the same masked AdamW steps', () => {
    const steps = 4;
    const reference = initLlamaWeights(config, 9);
    const adam = new AdamW(options);
    const shapes = llamaWeightShapes(config);
    for (let step = 0; step < steps; step++) {
      const { gradients } = lossAndGradients(config, reference, batch, 1);
      const params = [...shapes.keys()]
        .filter((name) => trainable(name) && mask(name)?.includes(1) !== false)
        .map((name) => {
          const m = mask(name);
          return { name, data: reference.get(name) ?? new Float32Array(0), grad: gradients.get(name) ?? new Float32Array(0), decay: (shapes.get(name)?.[0] ?? 0) > 1, ...(m === undefined ? {} : { mask: m }) };
        });
      const lr = learningRateAt({ steps, ...options }, step);
      adam.step(params, lr);
    }
    const trained = initLlamaWeights(config, 9);
    const before = new Map([...trained].map(([k, w]) => [k, Float32Array.from(w)]));
    trainLlama(config, trained, () => batch, { ...options, steps, trainable, updateMask: mask });
    const moved: string[] = [];
    for (const [name, w] of trained) {
      expect(Buffer.from(w.buffer).equals(Buffer.from((reference.get(name) ?? new Float32Array(0)).buffer)), name).toBe(true);
      if (!Buffer.from(w.buffer).equals(Buffer.from((before.get(name) ?? new Float32Array(0)).buffer))) moved.push(name);
    }
    // Exactly the trainable tensors whose mask lets something change moved (the layer-0 MLP is frozen; o_proj outside head 1 would stay).
    expect(moved).toEqual([...shapes.keys()].filter((name) => trainable(name) && mask(name)?.includes(1) !== false));
    expect(moved.length).toBeGreaterThan(10);
    expect(() => trainLlama(config, initLlamaWeights(config, 9), () => batch, { ...options, steps: 1, updateMask: (name) => new Uint8Array((shapes.get(name)?.[0] ?? 0) * (shapes.get(name)?.[1] ?? 0)) })).toThrow(/trainable and updateMask leave no element to train/);
  });
});
