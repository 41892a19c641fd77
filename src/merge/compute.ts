/**
 * computeTask: the arithmetic of one TensorTask, mergekit-exact (docs/mergekit-semantics.md).
 * Inputs are cast to the task's compute dtype on load and every elementwise operation rounds to
 * it (per-op bf16/f16 emulation, sums over models accumulated in f32), which reproduces mergekit's
 * bf16 outputs bit for bit; the result is then cast to the output dtype. Integer and BOOL tensors
 * are copied untouched. The caller reads the inputs (and computes stage inputs) first.
 */
import { computeKarcher, computeKarcherGramStats } from './methods/karcher.js';
import { computeLinear } from './methods/linear.js';
import { computeModelStock, computeModelStockGramStats } from './methods/model-stock.js';
import { computeMultislerp, computeMultislerpGramStats } from './methods/multislerp.js';
import { computeNearswap } from './methods/nearswap.js';
import { computePassthrough } from './methods/passthrough.js';
import { computeSce, computeSceStats } from './methods/sce.js';
import { computeSlerpFamily, computeSlerpGramStats } from './methods/slerp.js';
import {
  elementCount,
  MergeComputeError,
  shapeText,
  type FamilyContext,
  type TensorData,
} from './methods/task-inputs.js';
import { computeTaskVector, computeTaskVectorStats } from './methods/task-vector.js';
import type { AnyStatPass, ChunkContext, ChunkReply } from './methods/chunk-stats.js';
import { loadKernels, TS_KERNELS, type KernelBinding, type KernelLogger } from './native/binding.js';
import { KERNEL_DTYPE, kernelDTypeOf, type ComputeCode, type KernelDType } from './native/numeric.js';
import type { MethodId, TensorTask } from './task.js';
import { dtypeByteSize, type FloatDType } from '../tensors/dtype.js';

export type { TensorData } from './methods/task-inputs.js';
export { MergeComputeError } from './methods/task-inputs.js';

export interface ComputeOptions {
  /**
   * Test hook: forces the kept-positions mask of input i (1 = kept; whole-tensor, in the base's
   * shape), as mergekit-golden's masks.safetensors provides. Used wherever the method would
   * sparsify that input (density < 1); undefined = draw / select as usual. Default: none.
   */
  readonly maskOverride?: (inputIndex: number) => Uint8Array | undefined;
  /** Which kernels run. Default: 'native' when the addon loads, else the TypeScript twins. */
  readonly kernels?: 'native' | 'ts';
  /** Receives non-fatal notes, e.g. a model skipped for a shape mismatch. Default: ignored. */
  readonly warn?: (message: string) => void;
  /** Receives the one-time "native kernels unavailable" warning. Default: stderr. */
  readonly logger?: KernelLogger;
  /**
   * Allocates scratch (output, masks) that must stay valid until the result has been used; its
   * contents may be anything. Default: a fresh Uint8Array each time.
   */
  readonly alloc?: (byteLength: number) => Uint8Array;
  /**
   * The task is a row chunk of a tensor run in chunks, with the whole-tensor statistics its method
   * needs (chunk-stats.ts). Default: none (the task is a whole tensor).
   */
  readonly chunk?: ChunkContext;
}

const COMPUTE_CODE: Readonly<Record<FloatDType, ComputeCode>> = {
  F32: KERNEL_DTYPE.F32,
  F16: KERNEL_DTYPE.F16,
  BF16: KERNEL_DTYPE.BF16,
};

type Family = (ctx: FamilyContext) => TensorData;

// Every MethodId must have its arithmetic here (the type says so).
const FAMILIES: Readonly<Record<MethodId, Family>> = {
  linear: computeLinear,
  slerp: computeSlerpFamily,
  nuslerp: computeSlerpFamily,
  task_arithmetic: computeTaskVector,
  ties: computeTaskVector,
  dare_ties: computeTaskVector,
  dare_linear: computeTaskVector,
  breadcrumbs: computeTaskVector,
  breadcrumbs_ties: computeTaskVector,
  della: computeTaskVector,
  della_linear: computeTaskVector,
  model_stock: computeModelStock,
  passthrough: computePassthrough,
  sce: computeSce,
  karcher: computeKarcher,
  multislerp: computeMultislerp,
  nearswap: computeNearswap,
};

/** The methods computeTask implements: every method of the registry. */
export const COMPUTABLE_METHODS: readonly MethodId[] = Object.keys(FAMILIES) as MethodId[];

/** The kernel table computeTask uses for `options` (the addon unless 'ts' is asked or it is missing). */
export function selectKernels(options: Pick<ComputeOptions, 'kernels' | 'logger'>): KernelBinding {
  if (options.kernels === 'ts') return TS_KERNELS;
  const loaded = loadKernels(options.logger === undefined ? {} : { logger: options.logger });
  return loaded.kernels;
}

function checkInputs(task: TensorTask, inputs: readonly TensorData[]): void {
  if (inputs.length !== task.inputs.length) {
    throw new MergeComputeError('MERGE_INPUT', task.output, `expected ${task.inputs.length} input tensors, got ${inputs.length}`);
  }
  inputs.forEach((t, i) => {
    const want = elementCount(t.shape) * dtypeByteSize(t.dtype);
    if (t.bytes.byteLength !== want) {
      throw new MergeComputeError(
        'MERGE_INPUT',
        task.output,
        `input ${i} (${task.inputs[i]?.model ?? '?'}) holds ${t.bytes.byteLength} bytes, ${t.dtype} ${shapeText(t.shape)} needs ${want}`,
      );
    }
  });
}

/**
 * Computes one output tensor from its inputs (aligned with task.inputs), in task.outDType and of
 * shape task.outShape. Throws MergeComputeError (codes MERGE_INPUT, MERGE_SHAPE, MERGE_PARAM,
 * UNSUPPORTED_DTYPE, UNSUPPORTED_METHOD) naming the tensor.
 */
export function computeTask(task: TensorTask, inputs: readonly TensorData[], options: ComputeOptions = {}): TensorData {
  checkInputs(task, inputs);
  const floatInputs = !inputs.some((t) => kernelDTypeOf(t.dtype) === undefined);
  if (!floatInputs) {
    // Integer / BOOL tensors (and F8) are not merged: the base's (or the first) copy is kept as is.
    const source = inputs[task.baseIndex ?? 0];
    if (source === undefined) throw new MergeComputeError('MERGE_INPUT', task.output, 'no input tensors');
    if (kernelDTypeOf(source.dtype) !== undefined || inputs.some((t) => t.dtype !== source.dtype)) {
      throw new MergeComputeError('UNSUPPORTED_DTYPE', task.output, `cannot merge ${inputs.map((t) => t.dtype).join(', ')}`);
    }
    return { dtype: source.dtype, shape: source.shape, bytes: source.bytes.slice() };
  }
  // A task built by hand (not by plan.ts) may name a method the registry does not know.
  const family: Family | undefined = FAMILIES[task.method];
  if (family === undefined) {
    throw new MergeComputeError('UNSUPPORTED_METHOD', task.output, `merge_method ${task.method} is not implemented yet`);
  }
  const outCode = kernelDTypeOf(task.outDType);
  if (outCode === undefined) {
    throw new MergeComputeError('UNSUPPORTED_DTYPE', task.output, `output dtype ${task.outDType} is not F32, F16, BF16 or F64`);
  }
  const out = family(familyContext(task, inputs, outCode, options));
  if (elementCount(out.shape) !== elementCount(task.outShape) || out.shape.length !== task.outShape.length || out.shape.some((d, i) => d !== task.outShape[i])) {
    throw new MergeComputeError(
      'MERGE_SHAPE',
      task.output,
      `the merge gives shape ${shapeText(out.shape)} but the plan expects ${shapeText(task.outShape)}`,
    );
  }
  return { dtype: task.outDType, shape: task.outShape, bytes: out.bytes };
}

function familyContext(task: TensorTask, inputs: readonly TensorData[], outCode: KernelDType, options: ComputeOptions): FamilyContext {
  return {
    task,
    inputs,
    kernels: selectKernels(options),
    compute: COMPUTE_CODE[task.computeDType],
    outCode,
    maskOverride: options.maskOverride,
    warn: options.warn ?? (() => undefined),
    alloc: options.alloc ?? ((n) => new Uint8Array(n)),
    chunk: options.chunk,
  };
}

/**
 * One statistics pass (chunk-stats.ts) over a row chunk of a task the pool runs in chunks: a
 * task-vector sparsifier's, a gram pass of slerp, nuslerp, model_stock, multislerp or karcher, or sce's; `options.chunk` carries what earlier
 * passes found. Same errors as computeTask.
 */
export function computeTaskStats(task: TensorTask, inputs: readonly TensorData[], pass: AnyStatPass, options: ComputeOptions): ChunkReply {
  checkInputs(task, inputs);
  const outCode = kernelDTypeOf(task.outDType);
  const family = FAMILIES[task.method];
  const unsupported = (): MergeComputeError => new MergeComputeError('UNSUPPORTED_METHOD', task.output, `${task.method} on ${task.outDType} has no ${pass} pass`);
  if (outCode === undefined || inputs.some((t) => kernelDTypeOf(t.dtype) === undefined)) throw unsupported();
  const ctx = familyContext(task, inputs, outCode, options);
  if (family === computeSce) return computeSceStats(ctx, pass);
  if (pass === 'gram') {
    if (family === computeSlerpFamily) return computeSlerpGramStats(ctx);
    if (family === computeModelStock) return computeModelStockGramStats(ctx);
    if (family === computeMultislerp) return computeMultislerpGramStats(ctx);
    if (family === computeKarcher) return computeKarcherGramStats(ctx);
    throw unsupported();
  }
  if (family !== computeTaskVector || pass === 'sce-top' || pass === 'sce-low') throw unsupported();
  return computeTaskVectorStats(ctx, pass);
}
