/**
 * What every method family needs from a TensorTask before its arithmetic: checked inputs, resolved
 * parameters (with the registry's defaults), mergekit's shape rules for embeddings, and the cast of
 * an unchanged tensor to the output dtype.
 */
import { EvoError } from '../../errors.js';
import { dtypeByteSize, type DType } from '../../tensors/dtype.js';
import type { KernelBinding } from '../native/binding.js';
import { KERNEL_DTYPE, kernelDTypeOf, type ComputeCode, type KernelDType } from '../native/numeric.js';
import { findParamSpec } from '../registry.js';
import type { TensorTask } from '../task.js';
import type { ChunkContext } from './chunk-stats.js';

/** One tensor's elements in memory (little-endian, row-major). */
export interface TensorData {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

export type MergeComputeErrorCode =
  | 'MERGE_INPUT'
  | 'MERGE_SHAPE'
  | 'MERGE_PARAM'
  | 'UNSUPPORTED_DTYPE'
  | 'UNSUPPORTED_METHOD';

/** A task that cannot be computed as given; the message names the output tensor. */
export class MergeComputeError extends EvoError {
  readonly tensor: string;
  constructor(code: MergeComputeErrorCode, tensor: string, message: string) {
    super(code, `${tensor}: ${message}`);
    this.name = 'MergeComputeError';
    this.tensor = tensor;
  }
}

/** Everything a family's arithmetic gets. */
export interface FamilyContext {
  readonly task: TensorTask;
  /** Aligned with task.inputs, every one a float tensor the kernels read. */
  readonly inputs: readonly TensorData[];
  readonly kernels: KernelBinding;
  readonly compute: ComputeCode;
  readonly outCode: KernelDType;
  /** Test hook: forced kept-positions mask of input i (1 = kept). */
  readonly maskOverride: ((inputIndex: number) => Uint8Array | undefined) | undefined;
  /** Receives non-fatal notes (a model skipped for a shape mismatch). */
  readonly warn: (message: string) => void;
  /**
   * Scratch bytes for outputs and masks, valid until the task's result has been written. Contents
   * are undefined (not zeroed): every caller writes all of it. The merge worker hands out its
   * reused arena here, so large tasks do not fault in fresh pages each time.
   */
  readonly alloc: (byteLength: number) => Uint8Array;
  /**
   * Set when the task is a row chunk of a tensor the pool runs in chunks: the whole-tensor
   * statistics gathered so far (chunk-stats.ts).
   */
  readonly chunk: ChunkContext | undefined;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function kernelCode(ctx: { readonly task: TensorTask }, d: DType): KernelDType {
  const code = kernelDTypeOf(d);
  if (code === undefined) {
    throw new MergeComputeError('UNSUPPORTED_DTYPE', ctx.task.output, `dtype ${d} cannot be merged (F32, F16, BF16 or F64 only)`);
  }
  return code;
}

function modelName(task: TensorTask, i: number): string {
  return task.inputs[i]?.model ?? `input ${i}`;
}

/** Python truthiness of a resolved flag (gradients interpolate booleans to numbers). */
function truthy(v: number | boolean): boolean {
  return typeof v === 'boolean' ? v : v !== 0 && !Number.isNaN(v);
}

function registryDefault(task: TensorTask, name: string): number | boolean | undefined {
  return findParamSpec(task.method, name)?.default;
}

/** A global parameter: the task's value (mergekit's `lambda_` accepted for `lambda`), else the registry default. */
export function globalParam(task: TensorTask, name: string): number | boolean | undefined {
  return task.params[name] ?? (name === 'lambda' ? task.params.lambda_ : undefined) ?? registryDefault(task, name);
}

export function globalFlag(task: TensorTask, name: string): boolean {
  const v = globalParam(task, name);
  if (v === undefined) throw new MergeComputeError('MERGE_PARAM', task.output, `missing parameter ${name} for ${task.method}`);
  return truthy(v);
}

export function globalNumber(task: TensorTask, name: string): number {
  const v = globalParam(task, name);
  if (v === undefined) throw new MergeComputeError('MERGE_PARAM', task.output, `missing parameter ${name} for ${task.method}`);
  return typeof v === 'boolean' ? (v ? 1 : 0) : v;
}

/** A per-model parameter of input i, else the registry default; undefined when neither exists. */
export function modelParam(task: TensorTask, i: number, name: string): number | undefined {
  const v = task.modelParams[i]?.[name] ?? registryDefault(task, name);
  return v === undefined ? undefined : typeof v === 'boolean' ? (v ? 1 : 0) : v;
}

export function requiredModelNumber(task: TensorTask, i: number, name: string): number {
  const v = modelParam(task, i, name);
  if (v === undefined) {
    throw new MergeComputeError('MERGE_PARAM', task.output, `missing required parameter ${name} for ${modelName(task, i)}`);
  }
  return v;
}

/** Copies the leading rows × cols submatrix of a 2-d tensor. */
export function cropMatrix(t: TensorData, rows: number, cols: number): TensorData {
  const [r0, c0] = t.shape;
  if (t.shape.length !== 2 || r0 === undefined || c0 === undefined || rows > r0 || cols > c0) {
    throw new RangeError(`cannot crop ${shapeText(t.shape)} to [${rows}, ${cols}]`);
  }
  if (rows === r0 && cols === c0) return t;
  const size = dtypeByteSize(t.dtype);
  const out = new Uint8Array(rows * cols * size);
  for (let r = 0; r < rows; r++) {
    out.set(t.bytes.subarray(r * c0 * size, (r * c0 + cols) * size), r * cols * size);
  }
  return { dtype: t.dtype, shape: [rows, cols], bytes: out };
}

/**
 * mergekit's rectify_embed_sizes (semantics §0.11): for an embedding / lm_head tensor whose inputs
 * are all 2-d, every input is cut to the largest common leading submatrix. Otherwise the shapes
 * must already agree.
 */
export function commonShapes(ctx: FamilyContext, tensors: readonly TensorData[]): TensorData[] {
  const first = tensors[0];
  if (first === undefined) return [];
  if (ctx.task.isEmbed && tensors.every((t) => t.shape.length === 2)) {
    const rows = Math.min(...tensors.map((t) => t.shape[0] ?? 0));
    const cols = Math.min(...tensors.map((t) => t.shape[1] ?? 0));
    return tensors.map((t) => cropMatrix(t, rows, cols));
  }
  const bad = tensors.find((t) => !sameShape(t.shape, first.shape));
  if (bad !== undefined) {
    throw new MergeComputeError(
      'MERGE_SHAPE',
      ctx.task.output,
      `tensor size mismatch: ${[...new Set(tensors.map((t) => shapeText(t.shape)))].join(' vs ')}`,
    );
  }
  return [...tensors];
}

/** The base input and its index; MERGE_INPUT naming the method when the task has none. */
export function requireBase(ctx: { readonly task: TensorTask; readonly inputs: readonly TensorData[] }): { base: TensorData; index: number } {
  const index = ctx.task.baseIndex;
  const base = index === null ? undefined : ctx.inputs[index];
  if (index === null || base === undefined) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, `${ctx.task.method} needs a base model`);
  return { base, index };
}

/**
 * mergekit's easy_define methods (sce, multislerp, nearswap) never rectify embedding sizes
 * (semantics §1.4): every shape must equal the first's, embeddings included.
 */
export function requireEqualShapes(ctx: { readonly task: TensorTask }, tensors: readonly TensorData[]): void {
  const first = tensors[0];
  const bad = tensors.find((t) => first !== undefined && !sameShape(t.shape, first.shape));
  if (first !== undefined && bad !== undefined) {
    throw new MergeComputeError('MERGE_SHAPE', ctx.task.output, `tensor size mismatch: ${shapeText(first.shape)} vs ${shapeText(bad.shape)}`);
  }
}

/** `t` cast to the compute dtype and then to the output dtype (a tensor the method leaves unchanged). */
export function castOut(ctx: FamilyContext, t: TensorData): TensorData {
  const n = elementCount(t.shape);
  const out = ctx.alloc(n * outByteSize(ctx.outCode));
  ctx.kernels.convertDType({
    src: t.bytes,
    srcDType: kernelCode(ctx, t.dtype),
    roundDType: ctx.compute,
    out,
    outDType: ctx.outCode,
    start: 0,
    end: n,
  });
  return { dtype: ctx.task.outDType, shape: t.shape, bytes: out };
}

export function outByteSize(code: KernelDType): number {
  return code === KERNEL_DTYPE.F64 ? 8 : code === KERNEL_DTYPE.F32 ? 4 : 2;
}

/** n zeroed f32 elements of task scratch (from the worker's arena when it is aligned). */
export function f32Scratch(ctx: FamilyContext, n: number): Float32Array {
  const bytes = ctx.alloc(n * 4);
  if (bytes.byteOffset % 4 !== 0) return new Float32Array(n);
  return new Float32Array(bytes.buffer, bytes.byteOffset, n).fill(0);
}

/** A fresh output buffer for `shape` in the task's output dtype. */
export function outputBuffer(ctx: FamilyContext, shape: readonly number[]): TensorData {
  return { dtype: ctx.task.outDType, shape, bytes: ctx.alloc(elementCount(shape) * outByteSize(ctx.outCode)) };
}

export function dtypeCodes(ctx: FamilyContext, tensors: readonly TensorData[]): Int32Array {
  return Int32Array.from(tensors.map((t) => kernelCode(ctx, t.dtype)));
}
