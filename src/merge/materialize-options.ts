/**
 * The options of materializePlan: documented once, with their defaults, and resolved once at entry
 * into ResolvedMaterializeOptions, so that code further in never sees undefined.
 */
import os from 'node:os';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { estimateWorkingSetBytes } from './memory-budget.js';
import type { ProgressMode } from './progress.js';
import { rowSplitOf } from './row-chunks.js';
import type { MergePlan, TensorTask } from './task.js';
import type { KernelChoice } from './worker-protocol.js';

export interface MaterializeOptions {
  /** Directory of the output model; created when missing. Its files change only once the merge has succeeded. */
  outDir: string;
  /** Worker threads. Default: os.availableParallelism(). */
  jobs?: number;
  /**
   * Target for the merge's working memory, in bytes: tasks start only while their estimated
   * working sets (memory-budget.ts) fit in it. Default: min(25% of free RAM, 384 MiB × jobs),
   * raised to the largest single task when that is bigger (it then runs alone). A task larger than
   * an explicit budget runs alone too, with a warning.
   */
  maxMemoryBytes?: number;
  /** Largest weight file, in bytes of tensor data; beyond it the output is sharded with an index. Default: 5e9 (5 GB, as Hugging Face). */
  shardBytes?: number;
  /** When set, each named stage of a multi-document config is written to <intermediateDir>/<stage>/ and read back from there. Default: none (stages are computed in memory). */
  intermediateDir?: string;
  /** 'auto': a progress bar on a TTY stderr; 'none' / 'json': silent. Default: 'auto'. */
  progress?: ProgressMode;
  /** Cancels the merge; temp files are removed and no output appears. Default: none. */
  signal?: AbortSignal;
  /** 'native': the C++ kernels (the TS twins when the addon is not built); 'ts': the TS twins. Default: 'native'. */
  kernels?: KernelChoice;
  /**
   * A tensor that can be cut into rows (row-chunks.ts RowSplit) whose working set exceeds this is
   * computed in row chunks of about this size, in bytes (capped at maxMemoryBytes / jobs when that
   * is at least 1 MiB). TIES / DARE / breadcrumbs / DELLA tensors are cut only when their working
   * set also exceeds maxMemoryBytes / jobs, and their chunks first go through statistics passes
   * (a second read). Default: 64 MiB (16 MiB chunks left the two-pass ties tensors of the merge
   * bench half idle: a chunk computed in 3 ms, near the per-unit overhead).
   */
  rowChunkBytes?: number;
}

/** MaterializeOptions with every default filled in and checked. */
export interface ResolvedMaterializeOptions {
  readonly outDir: string;
  readonly jobs: number;
  readonly maxMemoryBytes: number;
  /** Whether maxMemoryBytes came from the caller (oversize tasks then warn) or from the default. */
  readonly maxMemoryExplicit: boolean;
  readonly shardBytes: number;
  readonly intermediateDir: string | null;
  readonly progress: ProgressMode;
  readonly signal: AbortSignal | null;
  readonly kernels: KernelChoice;
  readonly rowChunkBytes: number;
}

/** An option of materializePlan is invalid (a usage error: exit code 2). */
export class MaterializeOptionError extends EvoError {
  constructor(option: string, rule: string, got: unknown) {
    super('INVALID_OPTION', `options.${option} must be ${rule}, got ${String(got)}`, { exitCode: 2 });
    this.name = 'MaterializeOptionError';
  }
}

const DEFAULT_SHARD_BYTES = 5e9;
const DEFAULT_ROW_CHUNK_BYTES = 64 * 1024 ** 2;

/**
 * Default budget per worker thread. The budget covers tensors only; Node, the workers and the
 * kernels add about 150–250 MB on top, so two threads stay near 1 GB resident.
 */
const DEFAULT_BYTES_PER_JOB = 384 * 1024 ** 2;

/**
 * The default budget: min(25% of free RAM, 384 MiB per worker thread), but never below the largest
 * single task (which then runs with nothing beside it).
 */
export function defaultMaxMemoryBytes(largestTaskBytes: number, jobs: number, freeBytes: number = os.freemem()): number {
  return Math.max(Math.min(Math.floor(freeBytes / 4), DEFAULT_BYTES_PER_JOB * jobs), largestTaskBytes, 1);
}

function positiveInteger(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new MaterializeOptionError(option, 'a positive integer', value);
  }
  return value;
}

/**
 * Fills in and checks `options` for `plan` (the default budget depends on its largest task).
 * Throws MaterializeOptionError naming the first invalid option.
 */
export function resolveMaterializeOptions(options: MaterializeOptions, plan: MergePlan): ResolvedMaterializeOptions {
  if (typeof options.outDir !== 'string' || options.outDir.length === 0) {
    throw new MaterializeOptionError('outDir', 'a non-empty path', options.outDir);
  }
  const jobs = options.jobs === undefined ? os.availableParallelism() : positiveInteger('jobs', options.jobs);
  const shardBytes = options.shardBytes === undefined ? DEFAULT_SHARD_BYTES : positiveInteger('shardBytes', options.shardBytes);
  const rowChunkBytes =
    options.rowChunkBytes === undefined ? DEFAULT_ROW_CHUNK_BYTES : positiveInteger('rowChunkBytes', options.rowChunkBytes);
  const progress = options.progress ?? 'auto';
  if (progress !== 'auto' && progress !== 'none' && progress !== 'json') {
    throw new MaterializeOptionError('progress', "'auto', 'none' or 'json'", progress);
  }
  const kernels = options.kernels ?? 'native';
  if (kernels !== 'native' && kernels !== 'ts') throw new MaterializeOptionError('kernels', "'native' or 'ts'", kernels);
  if (options.intermediateDir !== undefined && (typeof options.intermediateDir !== 'string' || options.intermediateDir === '')) {
    throw new MaterializeOptionError('intermediateDir', 'a non-empty path', options.intermediateDir);
  }
  const signal = options.signal ?? null;
  if (signal !== null && !(signal instanceof AbortSignal)) throw new MaterializeOptionError('signal', 'an AbortSignal', signal);
  const maxMemoryExplicit = options.maxMemoryBytes !== undefined;
  const maxMemoryBytes = maxMemoryExplicit
    ? positiveInteger('maxMemoryBytes', options.maxMemoryBytes)
    : defaultMaxMemoryBytes(largestUnitBytes(plan, rowChunkBytes), jobs);
  return {
    outDir: path.resolve(options.outDir),
    jobs,
    maxMemoryBytes,
    maxMemoryExplicit,
    shardBytes,
    intermediateDir: options.intermediateDir === undefined ? null : path.resolve(options.intermediateDir),
    progress,
    signal,
    kernels,
    rowChunkBytes,
  };
}

/** The largest unit the plan will run: whole tasks that cannot be split, about rowChunkBytes otherwise. */
function largestUnitBytes(plan: MergePlan, rowChunkBytes: number): number {
  let largest = 0;
  for (const task of allTasks(plan)) {
    const est = estimateWorkingSetBytes(task);
    largest = Math.max(largest, rowSplitOf(task) !== 'whole' ? Math.min(est, 2 * rowChunkBytes) : est);
  }
  return largest;
}

/** Every task of the plan: the named stages' (for intermediates), then the final model's. */
export function allTasks(plan: MergePlan): TensorTask[] {
  return [...plan.stages.flatMap((s) => s.tasks), ...plan.tasks];
}
