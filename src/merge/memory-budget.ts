/**
 * Memory-budget admission for the merge pool: a task starts only when its estimated working set
 * fits in what is left of the budget. Plain data in, plain data out; no threads here, so the
 * policy is tested on its own (tests/merge/memory-budget.test.ts).
 */
import { dtypeByteSize } from '../tensors/dtype.js';
import type { MethodId, TensorTask } from './task.js';
import { permutedByteLength, stageSourcesOf } from './permuted-input.js';

/** A task let in by the scheduler; hand it back to `release` when it has finished. */
export interface Admission<T> {
  readonly item: T;
  /** The cost it was pushed with (its estimated working set), in bytes. */
  readonly costBytes: number;
  /** Bytes held against the budget while it runs: `costBytes`, or the whole budget when `alone`. */
  readonly reservedBytes: number;
  /** True when the task is larger than the whole budget and therefore runs with nothing beside it. */
  readonly alone: boolean;
}

/**
 * Decides which waiting task may start now. `admit` never blocks: it returns undefined when
 * nothing fits, and the caller asks again after a `release`.
 */
export interface MemoryScheduler<T> {
  /** Tasks pushed and not yet admitted. */
  readonly pending: number;
  /** Tasks admitted and not yet released. */
  readonly running: number;
  /** Bytes held by running tasks. */
  readonly reservedBytes: number;
  push(item: T, costBytes: number): void;
  admit(): Admission<T> | undefined;
  release(admission: Admission<T>): void;
}

export interface MemorySchedulerOptions {
  /** The budget, in bytes: the sum of running tasks' costs never exceeds it (except a lone oversize task). */
  readonly capacityBytes: number;
  /** Most tasks running at once (the pool's thread count). */
  readonly maxRunning: number;
}

interface Waiting<T> {
  readonly item: T;
  readonly costBytes: number;
}

/**
 * Largest task first, with backfill: `admit` starts the largest waiting task that fits in the free
 * budget. Starting big tasks while the budget is empty keeps them from being starved by a stream of
 * small ones, and filling gaps with smaller tasks keeps the threads busy. A task larger than the
 * whole budget waits until nothing runs, then runs alone. Ties keep push order, so a plan's layer
 * order survives among equal-sized tensors.
 */
export class LargestFirstScheduler<T> implements MemoryScheduler<T> {
  readonly #capacityBytes: number;
  readonly #maxRunning: number;
  /** Sorted by cost, largest first; equal costs in push order. */
  readonly #waiting: Waiting<T>[] = [];
  #running = 0;
  #reservedBytes = 0;
  #aloneRunning = false;

  constructor(options: MemorySchedulerOptions) {
    if (!(Number.isSafeInteger(options.capacityBytes) && options.capacityBytes > 0)) {
      throw new RangeError(`capacityBytes must be a positive integer, got ${options.capacityBytes}`);
    }
    if (!(Number.isSafeInteger(options.maxRunning) && options.maxRunning > 0)) {
      throw new RangeError(`maxRunning must be a positive integer, got ${options.maxRunning}`);
    }
    this.#capacityBytes = options.capacityBytes;
    this.#maxRunning = options.maxRunning;
  }

  get pending(): number {
    return this.#waiting.length;
  }

  get running(): number {
    return this.#running;
  }

  get reservedBytes(): number {
    return this.#reservedBytes;
  }

  push(item: T, costBytes: number): void {
    if (!(Number.isSafeInteger(costBytes) && costBytes >= 0)) {
      throw new RangeError(`costBytes must be a non-negative integer, got ${costBytes}`);
    }
    // Insert after every entry whose cost is >= this one (stable among equals).
    const at = this.#firstIndexCostingAtMost(costBytes, true);
    this.#waiting.splice(at, 0, { item, costBytes });
  }

  admit(): Admission<T> | undefined {
    if (this.#waiting.length === 0 || this.#running >= this.#maxRunning || this.#aloneRunning) return undefined;
    const free = this.#capacityBytes - this.#reservedBytes;
    const at = this.#firstIndexCostingAtMost(free, false);
    if (at < this.#waiting.length) return this.#start(at, false);
    // Nothing fits. The largest waiting task is then either blocked by running tasks (wait for a
    // release) or larger than the whole budget: it runs once the pool is empty, alone.
    if (this.#running === 0) return this.#start(0, true);
    return undefined;
  }

  release(admission: Admission<T>): void {
    if (this.#running === 0) throw new Error('release() without a running task');
    this.#running -= 1;
    this.#reservedBytes -= admission.reservedBytes;
    if (admission.alone) this.#aloneRunning = false;
  }

  #start(index: number, alone: boolean): Admission<T> {
    const [w] = this.#waiting.splice(index, 1);
    if (w === undefined) throw new Error(`no waiting task at ${index}`);
    const reservedBytes = alone ? this.#capacityBytes : w.costBytes;
    this.#running += 1;
    this.#reservedBytes += reservedBytes;
    this.#aloneRunning = alone;
    return { item: w.item, costBytes: w.costBytes, reservedBytes, alone };
  }

  /**
   * Index of the first waiting entry with cost <= bytes (strictly < when `strict`), by binary search
   * over the descending order; the length when there is none.
   */
  #firstIndexCostingAtMost(bytes: number, strict: boolean): number {
    let lo = 0;
    let hi = this.#waiting.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const cost = this.#waiting[mid]?.costBytes ?? 0;
      const before = strict ? cost >= bytes : cost > bytes;
      if (before) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Whole-tensor scratch bytes per element some methods hold besides the common allowance:
 * karcher's f32 direction and tangent sum; sce's f32 variance, its keep mask and a zero f16 base
 * for the rank-mask kernel.
 */
const METHOD_SCRATCH_BYTES: Readonly<Record<MethodId, number>> = {
  linear: 0,
  slerp: 0,
  nuslerp: 0,
  task_arithmetic: 0,
  ties: 0,
  dare_ties: 0,
  dare_linear: 0,
  breadcrumbs: 0,
  breadcrumbs_ties: 0,
  della: 0,
  della_linear: 0,
  model_stock: 0,
  passthrough: 0,
  sce: 7,
  karcher: 8,
  multislerp: 0,
  nearswap: 0,
};

/**
 * Estimated peak working set of one task in a worker, in bytes:
 * - every file input in its stored dtype (read whole into memory),
 * - every stage input at its own estimate (computed in the same worker, held until the task ends),
 *   and so every distinct stage tensor permuted inputs gather rows from (computed whole, once),
 * - the output in its dtype,
 * - (inputs + 4) bytes per element of the largest input: the kernels stream in small blocks and
 *   allocate whole-tensor only a 1-byte keep mask per DELLA input (or per input of a test's mask
 *   override; TIES, DARE and breadcrumbs pass rules instead), embedding crops, and in the TS twins
 *   one 4-byte rank key per element; plus METHOD_SCRATCH_BYTES for karcher and sce.
 * It errs high (stage inputs are counted as if all peaked at once) so the budget is kept.
 */
export function estimateWorkingSetBytes(task: TensorTask): number {
  let inputs = 0;
  let maxElements = elementCount(task.outShape);
  for (const input of task.inputs) {
    if (input.kind === 'file') {
      inputs += input.byteLength;
      maxElements = Math.max(maxElements, elementCount(input.shape));
    } else if (input.kind === 'permuted') {
      // The gathered tensor; the rows read for it are copied straight in (or one row at a time).
      inputs += permutedByteLength(input);
      maxElements = Math.max(maxElements, elementCount(input.shape));
    } else {
      inputs += estimateWorkingSetBytes(input.task);
      maxElements = Math.max(maxElements, elementCount(input.task.outShape));
    }
  }
  for (const s of stageSourcesOf(task.inputs)) inputs += estimateWorkingSetBytes(s.task);
  const scratch = (task.inputs.length + 4 + METHOD_SCRATCH_BYTES[task.method]) * maxElements;
  return inputs + scratch + elementCount(task.outShape) * dtypeByteSize(task.outDType);
}

/** Bytes of input a task reads from files, stage inputs' files included (permuted inputs: about their gathered size). */
export function inputBytesOf(task: TensorTask): number {
  let n = 0;
  for (const input of task.inputs) {
    n += input.kind === 'file' ? input.byteLength : input.kind === 'permuted' ? permutedByteLength(input) : inputBytesOf(input.task);
  }
  for (const s of stageSourcesOf(task.inputs)) n += inputBytesOf(s.task);
  return n;
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
