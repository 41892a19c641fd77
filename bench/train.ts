/**
 * `npm run bench -- train [--steps 8] [--threads 2]`: training throughput at the demo family's shape
 * (vocab 512, hidden 96, intermediate 256, 4 layers, 4 heads, rows of 128 tokens, batch 16).
 * Prints, measured in the same run: tokens/s of trainLlama (first step excluded as warm-up), the
 * same step for a fine-tune whose masks leave 16 input columns of each matrix trainable, the
 * native gemm's GFLOP/s on the step's largest product against its TypeScript twin, and the share of
 * a step spent in native kernels vs the TypeScript operations around them.
 */
import { performance } from 'node:perf_hooks';
import { gemmReference } from '../src/train/gemm.js';
import { initLlamaWeights, llamaWeightShapes, trainLlama } from '../src/train/index.js';
import { loadTrainKernels } from '../src/train/kernels.js';

function option(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench train: --${name} must be a positive integer, got ${String(args[i + 1])}`);
  return v;
}

export async function run(args: readonly string[]): Promise<void> {
  const steps = option(args, 'steps', 8);
  const threads = option(args, 'threads', 2);
  const kernels = loadTrainKernels();
  const config = { vocabSize: 512, hiddenSize: 96, intermediateSize: 256, numLayers: 4, numHeads: 4, numKvHeads: 4, maxSeqLen: 128, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: 1, eosTokenId: 2 };
  const B = 16;
  const T = 128;
  const batch = (step: number): { batchSize: number; seqLen: number; tokens: Int32Array; lossMask: Uint8Array } => {
    const tokens = new Int32Array(B * (T + 1));
    for (let i = 0; i < tokens.length; i++) tokens[i] = 3 + ((i * 7919 + step * 104729) % 509);
    return { batchSize: B, seqLen: T, tokens, lossMask: new Uint8Array(B * T).fill(1) };
  };
  const shapes = llamaWeightShapes(config);
  // A fine-tune confined to 16 of the 96 input columns of every matrix, as the demo's private dims confine theirs.
  const privateColumns = (name: string): Uint8Array | undefined => {
    const [rows, cols] = shapes.get(name) ?? [0, 0];
    if (rows === 1) return undefined;
    const mask = new Uint8Array(rows * cols);
    for (let r = 0; r < rows; r++) mask.fill(1, r * cols + Math.max(0, cols - 16), (r + 1) * cols);
    return mask;
  };
  const msPerStepOf = (updateMask?: (name: string) => Uint8Array | undefined): number => {
    const times: number[] = [];
    let last = performance.now();
    trainLlama(config, initLlamaWeights(config, 1), batch, {
      steps: steps + 1, learningRate: 1e-3, warmupSteps: 1, minLrRatio: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, gradClipNorm: 1, threads,
      ...(updateMask === undefined ? {} : { updateMask }),
      onStep: () => {
        const now = performance.now();
        times.push(now - last);
        last = now;
      },
    });
    const counted = times.slice(1);
    return counted.reduce((a, b) => a + b, 0) / counted.length;
  };
  const msPerStep = msPerStepOf();
  const maskedMs = msPerStepOf(privateColumns);
  process.stdout.write(`kernels: ${kernels.native ? 'native' : 'TypeScript twins'}, threads ${threads}\n`);
  process.stdout.write(`trainLlama: ${msPerStep.toFixed(0)} ms/step, ${Math.round((B * T * 1000) / msPerStep)} tokens/s (${steps} steps of ${B} × ${T})\n`);
  process.stdout.write(`trainLlama, 16 input columns of each matrix trainable (weight gradients there only): ${maskedMs.toFixed(0)} ms/step, ${(maskedMs / msPerStep).toFixed(2)}× the full step\n`);
  // The MLP's up projection: [2048, 96] · [96, 256].
  const m = B * T;
  const k = config.hiddenSize;
  const n = config.intermediateSize;
  const a = new Float32Array(m * k).map((_, i) => Math.sin(i));
  const b = new Float32Array(k * n).map((_, i) => Math.cos(i));
  const c = new Float32Array(m * n);
  const flops = 2 * m * n * k;
  const time = (f: () => void, reps: number): number => {
    f();
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) f();
    return (performance.now() - t0) / reps;
  };
  const g = { a, aOffset: 0, sam: k, sak: 1, b, bOffset: 0, ldb: n, c, cOffset: 0, ldc: n, m, n, k, accumulate: false };
  const nativeMs = time(() => kernels.gemm(g, threads), 20);
  const tsMs = time(() => gemmReference(g), 2);
  process.stdout.write(`gemm ${m}×${k}·${k}×${n}: ${kernels.native ? 'native' : 'twin'} ${(flops / nativeMs / 1e6).toFixed(1)} GFLOP/s, TypeScript twin ${(flops / tsMs / 1e6).toFixed(2)} GFLOP/s, ratio ${(tsMs / nativeMs).toFixed(1)}×\n`);
  const stepFlops = 6 * m * (4 * (4 * k * k + 3 * k * n) + config.vocabSize * k);
  process.stdout.write(`projection FLOPs per step ≈ ${(stepFlops / 1e9).toFixed(1)} G: at the gemm rate they take ${(stepFlops / (flops / nativeMs)).toFixed(0)} ms of the ${msPerStep.toFixed(0)} ms step\n`);
}
