import type { AnyStatPass, ChunkContext, ChunkReply } from './methods/chunk-stats.js';
import type { TensorTask } from './task.js';

/**
 * Messages between the merge pool (materialize.ts) and its worker (worker.ts). Both import these
 * types only; neither imports the other. Tensors never cross the thread boundary: the worker reads
 * its inputs and writes its output itself, and replies with a few numbers.
 */

/** Which kernels compute: the native addon (falls back to the TS twins when it is not built) or the TS twins. */
export type KernelChoice = 'native' | 'ts';

/** Where a task's result goes: a byte range of an output temp file already laid out by the writer. */
export interface OutputSlot {
  /** Descriptor of the output temp file, opened read-write by the pool owner. */
  readonly fd: number;
  /** Its O_DIRECT write descriptor for whole pages, or null (output-dir.ts TensorSlot). */
  readonly directFd: number | null;
  /** Absolute offset of the tensor (or row chunk) in that file. */
  readonly byteOffset: number;
  /** Exactly the bytes the result must have. */
  readonly byteLength: number;
}

export interface TensorTaskRequest {
  /** The task, or a row chunk of one (inputs and outShape narrowed to the rows; see row-chunks.ts). */
  readonly task: TensorTask;
  /**
   * Descriptors of every file the task (stage inputs included) reads, keyed by path. The pool owner
   * opens them once per merge and closes them after the pool has stopped, so workers never open,
   * cache or leak descriptors.
   */
  readonly fds: Readonly<Record<string, number>>;
  readonly output: OutputSlot;
  readonly kernels: KernelChoice;
  /**
   * Largest scratch buffer, in bytes, the worker keeps between tasks for reading inputs; a task
   * needing more gets a buffer of its own that is dropped afterwards.
   */
  readonly scratchRetainBytes: number;
  /** 'merge' computes the task and writes it to `output`; a statistics pass only counts and replies. */
  readonly pass: 'merge' | AnyStatPass;
  /** For a row chunk of a tensor with statistics passes: the statistics so far; else null. */
  readonly chunk: ChunkContext | null;
}

export interface TensorTaskDone {
  readonly ok: true;
  /** Input bytes read from files (stage inputs' files included). */
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /** Resident set size of the process, sampled when the task's working set was at its largest. */
  readonly rssBytes: number;
  readonly readMs: number;
  readonly computeMs: number;
  readonly writeMs: number;
  /** Non-fatal notes from the kernels (a model skipped for its shape, native kernels unavailable). */
  readonly warnings: readonly string[];
  /** A statistics pass's counts (histograms, L1 bins, gram block sums: small); null for 'merge'. */
  readonly stats: ChunkReply | null;
}

/** A failure, flattened so that the error code survives the thread boundary. */
export interface TensorTaskFailed {
  readonly ok: false;
  /** The EvoError code, or 'INTERNAL' for anything else. */
  readonly code: string;
  readonly message: string;
  readonly stack: string | undefined;
}

export type TensorTaskReply = TensorTaskDone | TensorTaskFailed;

/** The worker's exported function name, passed to Piscina as `name`. */
export const WORKER_FUNCTION = 'runTensorTask';
