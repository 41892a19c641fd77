/**
 * trainLlama: AdamW on the mean masked next-token cross-entropy, one batch per step from the
 * caller's `nextBatch`; evaluateLoss: the same loss without gradients. Same weights, batches and
 * options give the same bytes whatever `threads` is (kernels.ts).
 */
import os from 'node:os';
import { UsageError } from '../errors.js';
import { AdamW, type AdamWParameter, learningRateAt } from './adamw.js';
import { BufferPool } from './buffer-pool.js';
import { type LlamaTrainConfig, type LlamaWeights, checkTrainConfig, checkWeights, llamaWeightShapes } from './config.js';
import { type GradRegion, maskRegions } from './grad-regions.js';
import { type TrainKernels, loadTrainKernels } from './kernels.js';
import { llamaLogits, weightTensors } from './model.js';
import { maskedCrossEntropy } from './ops.js';
import { Tape, type Tensor } from './tape.js';

/**
 * batchSize rows of seqLen + 1 ids: inputs are row[0, seqLen), targets row[1, seqLen].
 * lossMask[b · seqLen + t] = 1 where the prediction of target t counts (0: padding, prompts).
 */
export interface TrainBatch {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly tokens: Int32Array;
  readonly lossMask: Uint8Array;
  /** Positions (b · seqLen + t, masked in) scored against a distribution over the vocabulary instead of their target id. */
  readonly softTargets?: ReadonlyMap<number, Float32Array>;
}

export interface TrainOptions {
  readonly steps: number;
  readonly learningRate: number;
  readonly warmupSteps: number;
  /** Cosine decay to learningRate · minLrRatio at the last step. */
  readonly minLrRatio: number;
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Global gradient-norm clip; 0 = none. */
  readonly gradClipNorm: number;
  /** Kernel threads (default: min(2, the machine's cores)). */
  readonly threads?: number;
  /** Which tensors the optimizer updates (default: all); the rest stay frozen, e.g. an MLP-only fine-tune. */
  readonly trainable?: (tensorName: string) => boolean;
  /**
   * Per-element masks of trainable tensors (1: may change, 0: stays exactly as it is), e.g. a
   * fine-tune confined to some MLP neurons (mlp-neurons.ts). Absent or undefined for a tensor: all of it.
   */
  readonly updateMask?: (tensorName: string) => Uint8Array | undefined;
  readonly onStep?: (info: { step: number; loss: number; learningRate: number; tokensPerSecond: number; gradNorm: number }) => void;
}

function checkOptions(o: TrainOptions): void {
  const check = (ok: boolean, key: string, what: string): void => {
    if (!ok) throw new UsageError(`train options: ${key} ${what}`);
  };
  check(Number.isInteger(o.steps) && o.steps >= 0, 'steps', `must be a non-negative integer, got ${o.steps}`);
  check(o.learningRate > 0, 'learningRate', `must be positive, got ${o.learningRate}`);
  check(Number.isInteger(o.warmupSteps) && o.warmupSteps >= 0, 'warmupSteps', `must be a non-negative integer, got ${o.warmupSteps}`);
  check(o.minLrRatio >= 0 && o.minLrRatio <= 1, 'minLrRatio', `must lie in [0, 1], got ${o.minLrRatio}`);
  check(o.weightDecay >= 0, 'weightDecay', `must be non-negative, got ${o.weightDecay}`);
  check(o.beta1 >= 0 && o.beta1 < 1, 'beta1', `must lie in [0, 1), got ${o.beta1}`);
  check(o.beta2 >= 0 && o.beta2 < 1, 'beta2', `must lie in [0, 1), got ${o.beta2}`);
  check(o.epsilon > 0, 'epsilon', `must be positive, got ${o.epsilon}`);
  check(o.gradClipNorm >= 0, 'gradClipNorm', `must be non-negative, got ${o.gradClipNorm}`);
  check(o.threads === undefined || (Number.isInteger(o.threads) && o.threads >= 1), 'threads', `must be a positive integer, got ${o.threads}`);
}

/** Inputs, targets and mask of a batch, checked against the model. */
function splitBatch(config: LlamaTrainConfig, batch: TrainBatch, where: string): { inputs: Int32Array; targets: Int32Array; mask: Uint8Array } {
  const { batchSize: B, seqLen: T } = batch;
  if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1) throw new UsageError(`${where}: batchSize and seqLen must be positive integers`);
  if (T > config.maxSeqLen) throw new UsageError(`${where}: seqLen ${T} exceeds the model's maxSeqLen ${config.maxSeqLen}`);
  if (batch.tokens.length !== B * (T + 1)) throw new UsageError(`${where}: tokens holds ${batch.tokens.length} ids, expected ${B} rows of ${T + 1}`);
  if (batch.lossMask.length !== B * T) throw new UsageError(`${where}: lossMask holds ${batch.lossMask.length} entries, expected ${B * T}`);
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const row = batch.tokens.subarray(b * (T + 1), (b + 1) * (T + 1));
    for (const id of row) if (!(id >= 0 && id < config.vocabSize)) throw new UsageError(`${where}: token id ${id} in row ${b} is outside the vocabulary of ${config.vocabSize}`);
    inputs.set(row.subarray(0, T), b * T);
    targets.set(row.subarray(1, T + 1), b * T);
  }
  return { inputs, targets, mask: batch.lossMask };
}

function defaultThreads(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

/** Forward and backward through a recording tape: adds d(loss)/d(weight) into each tensor's grad. */
function backpropagate(config: LlamaTrainConfig, tensors: ReadonlyMap<string, Tensor>, batch: TrainBatch, kernels: TrainKernels, threads: number, where: string, pool: BufferPool | null = null): number {
  const { inputs, targets, mask } = splitBatch(config, batch, where);
  const tape = new Tape(kernels, threads, true, pool);
  const logits = llamaLogits(tape, config, tensors, inputs, batch.batchSize, batch.seqLen);
  const loss = maskedCrossEntropy(tape, logits, targets, mask, batch.softTargets);
  tape.backward();
  tape.release();
  return loss;
}

/** The loss of one batch and its gradient with respect to every weight (by tensor name). */
export function lossAndGradients(config: LlamaTrainConfig, weights: LlamaWeights, batch: TrainBatch, threads = defaultThreads()): { loss: number; gradients: Map<string, Float32Array> } {
  checkTrainConfig(config);
  checkWeights(config, weights);
  const tensors = weightTensors(config, weights, true);
  const loss = backpropagate(config, tensors, batch, loadTrainKernels(), threads, 'batch');
  return { loss, gradients: new Map([...tensors].map(([name, t]) => [name, t.grad])) };
}

export function trainLlama(config: LlamaTrainConfig, weights: Map<string, Float32Array>, nextBatch: (step: number) => TrainBatch, options: TrainOptions): { losses: Float64Array } {
  checkTrainConfig(config);
  checkWeights(config, weights);
  checkOptions(options);
  const kernels = loadTrainKernels();
  const threads = options.threads ?? defaultThreads();
  const trainable = options.trainable ?? ((): boolean => true);
  const masks = new Map<string, Uint8Array>();
  const regions = new Map<string, GradRegion[]>();
  for (const [name, [rows, cols]] of llamaWeightShapes(config)) {
    const mask = trainable(name) ? options.updateMask?.(name) : undefined;
    if (mask === undefined) continue;
    if (mask.length !== rows * cols) throw new UsageError(`train options: updateMask of ${name} has ${mask.length} entries, the tensor ${rows * cols}`);
    masks.set(name, mask);
    regions.set(name, maskRegions(mask, rows, cols));
  }
  // Gradients only for what may change: frozen tensors and all-zero masks get none, masked tensors only inside their regions.
  const updated = (name: string): boolean => trainable(name) && regions.get(name)?.length !== 0;
  const tensors = weightTensors(config, weights, updated, (name) => regions.get(name));
  const params: AdamWParameter[] = [...tensors]
    .filter(([name]) => updated(name))
    .map(([name, t]) => {
      const mask = masks.get(name);
      return { name, data: t.data, grad: t.grad, decay: t.rows > 1, ...(mask === undefined ? {} : { mask }) };
    });
  if (params.length === 0) throw new UsageError('train options: trainable and updateMask leave no element to train');
  const adam = new AdamW(options);
  const losses = new Float64Array(options.steps);
  const pool = new BufferPool();
  for (let step = 0; step < options.steps; step++) {
    const t0 = performance.now();
    const batch = nextBatch(step);
    for (const p of params) p.grad.fill(0);
    const loss = backpropagate(config, tensors, batch, kernels, threads, `batch of step ${step}`, pool);
    const learningRate = learningRateAt(options, step);
    const gradNorm = adam.step(params, learningRate);
    losses[step] = loss;
    const seconds = (performance.now() - t0) / 1000;
    options.onStep?.({ step, loss, learningRate, gradNorm, tokensPerSecond: (batch.batchSize * batch.seqLen) / Math.max(seconds, 1e-9) });
  }
  return { losses };
}

export function evaluateLoss(config: LlamaTrainConfig, weights: LlamaWeights, batch: TrainBatch, threads = defaultThreads()): number {
  checkTrainConfig(config);
  checkWeights(config, weights);
  const { inputs, targets, mask } = splitBatch(config, batch, 'evaluation batch');
  const tape = new Tape(loadTrainKernels(), threads, false);
  return maskedCrossEntropy(tape, llamaLogits(tape, config, weightTensors(config, weights, false), inputs, batch.batchSize, batch.seqLen), targets, mask, batch.softTargets);
}

/** Next-token logits [tokens.length, vocab] of one sequence (the forward pass, for tests and tools). */
export function llamaForward(config: LlamaTrainConfig, weights: LlamaWeights, tokens: Int32Array, threads = defaultThreads()): Float32Array {
  checkTrainConfig(config);
  checkWeights(config, weights);
  const tape = new Tape(loadTrainKernels(), threads, false);
  return llamaLogits(tape, config, weightTensors(config, weights, false), tokens, 1, tokens.length).data;
}
