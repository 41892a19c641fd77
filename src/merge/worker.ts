/**
 * The merge pool's only worker entry (loaded by Piscina from dist/ at run time). One call computes
 * one TensorTask, or a row chunk of one: it reads the inputs from the descriptors it is given with
 * positional reads, computes stage inputs recursively in this thread, and writes the result itself
 * at its slot in the output temp file. Only a few numbers go back to the pool.
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { EvoError } from '../errors.js';
import { computeTask, computeTaskStats, selectKernels } from './compute.js';
import { TS_KERNELS, type KernelBinding } from './native/binding.js';
import { inputBytesOf } from './memory-budget.js';
import { gatherPermutedRows, permutedByteLength, stageSourceKey, stageSourcesOf } from './permuted-input.js';
import { DirectWriter, writeSlot } from './slot-write.js';
import type { TensorData } from './compute.js';
import type { FileTensorInput, StageTensorInput, TensorTask } from './task.js';
import type { TensorTaskDone, TensorTaskReply, TensorTaskRequest } from './worker-protocol.js';

/** Each input starts on a cache line, so typed-array views need no copy and SIMD loads stay aligned. */
const SLOT_ALIGN = 64;

/**
 * A bump allocator for a task's inputs, outputs and masks, reset after each task. Reusing one buffer keeps the thread's
 * resident memory at its working set: a fresh Buffer per input is freed only at the next GC, which
 * lets RSS run hundreds of MB past the budget on large tensors.
 */
class ScratchArena {
  #buffer: ArrayBuffer = new ArrayBuffer(0);
  #used = 0;
  /** Bytes asked for since the last reset, counting what did not fit in the kept buffer. */
  #demand = 0;
  /** Buffers of this task that did not fit in #buffer; released when the task ends. */
  #oversize: ArrayBuffer[] = [];
  /** Where buffers come from and go: the kernel table's allocPages / releasePages (huge pages with the addon). */
  pages: Pick<KernelBinding, 'allocPages' | 'releasePages'> = TS_KERNELS;

  take(byteLength: number): Uint8Array {
    const size = Math.ceil(byteLength / SLOT_ALIGN) * SLOT_ALIGN;
    this.#demand += size;
    if (this.#used + size <= this.#buffer.byteLength) {
      const view = new Uint8Array(this.#buffer, this.#used, byteLength);
      this.#used += size;
      return view;
    }
    // Does not fit: a buffer of its own for this input; the next task's arena grows to the demand.
    const own = this.pages.allocPages(Math.max(1, byteLength));
    this.#oversize.push(own);
    return new Uint8Array(own, 0, byteLength);
  }

  /**
   * Ends a task: keeps (or grows) one buffer of the task's demand, up to `retainBytes`. Returns
   * true when the task needed more than that (its buffers are now garbage).
   */
  reset(retainBytes: number): boolean {
    const demand = this.#demand;
    const want = Math.min(demand, retainBytes);
    for (const b of this.#oversize) this.pages.releasePages(b);
    this.#oversize = [];
    if (want > this.#buffer.byteLength || this.#buffer.byteLength > retainBytes) {
      this.pages.releasePages(this.#buffer);
      this.#buffer = want > this.#buffer.byteLength ? this.pages.allocPages(want) : new ArrayBuffer(0);
    }
    this.#used = 0;
    this.#demand = 0;
    return demand > retainBytes;
  }
}

/**
 * A full garbage collection, or null where the flag cannot be set. After a task too large for the
 * arena, its hundreds of MB of buffers would otherwise stay resident until V8 gets round to them,
 * and the next large task would stack on top: the memory budget assumes they are gone.
 */
function makeCollector(): (() => void) | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

// The worker thread's lifetime state: one arena, reused by every task this thread runs.
const arena = new ScratchArena();
const collectGarbage = makeCollector();
let direct: DirectWriter | null = null;

/** This thread's direct writer, made on first use from the kernel table's pages (page-aligned with the addon on Linux). */
function directWriter(): DirectWriter {
  direct ??= new DirectWriter(arena.pages);
  return direct;
}

interface TaskCounters {
  bytesRead: number;
  readMs: number;
  computeMs: number;
  rssBytes: number;
  readonly warnings: string[];
}

/**
 * Piscina entry (by name; see WORKER_FUNCTION). Never rejects: failures come back as data. The
 * reply waits for the task's output to be on its way to disk (a direct write runs after the arena
 * is free, so with two tasks per thread the next one computes meanwhile).
 */
export async function runTensorTask(request: TensorTaskRequest): Promise<TensorTaskReply> {
  // Before a task too large for the arena, clear what earlier small tasks left for the GC, so the
  // large one does not stack on top of it.
  if (inputBytesOf(request.task) > request.scratchRetainBytes) collectGarbage?.();
  let reply: TensorTaskReply;
  let pending: Promise<void> | null = null;
  try {
    ({ reply, pending } = computeAndWrite(request));
  } catch (err) {
    reply = failureOf(err);
  }
  // computeAndWrite has returned, so nothing here references the task's tensors any more.
  if (arena.reset(request.scratchRetainBytes)) collectGarbage?.();
  if (pending !== null && reply.ok) {
    const t0 = performance.now();
    const done = reply;
    try {
      await pending;
      reply = { ...done, writeMs: done.writeMs + (performance.now() - t0) };
    } catch (err) {
      reply = failureOf(err);
    }
  }
  return reply;
}

function failureOf(err: unknown): TensorTaskReply {
  return {
    ok: false,
    code: err instanceof EvoError ? err.code : 'INTERNAL',
    message: err instanceof Error ? err.message : String(err),
    stack: err instanceof Error ? err.stack : undefined,
  };
}

function computeAndWrite(request: TensorTaskRequest): { reply: TensorTaskDone; pending: Promise<void> | null } {
  const counters: TaskCounters = { bytesRead: 0, readMs: 0, computeMs: 0, rssBytes: 0, warnings: [] };
  // Before the first read, so that the one-time "no addon" warning travels with this task's reply.
  arena.pages = selectKernels({ kernels: request.kernels, logger: (m) => counters.warnings.push(m) });
  const { task } = request;
  const inputs = readInputs(task, request, counters);
  const t0 = performance.now();
  const options = computeOptions(request, counters);
  if (request.pass !== 'merge') {
    // A statistics pass: counts over this chunk's rows go back; nothing is written.
    const stats = computeTaskStats(task, inputs, request.pass, options);
    counters.computeMs += performance.now() - t0;
    return { reply: { ...doneOf(counters, 0, 0), stats }, pending: null };
  }
  const result = computeTask(task, inputs, options);
  counters.computeMs += performance.now() - t0;
  const expected = request.output.byteLength;
  if (result.dtype !== task.outDType || result.bytes.byteLength !== expected) {
    throw new EvoError(
      'COMPUTE_RESULT_MISMATCH',
      `tensor ${task.output}: computed ${result.bytes.byteLength} bytes of ${result.dtype}, ` +
        `expected ${expected} bytes of ${task.outDType}`,
    );
  }
  counters.rssBytes = Math.max(counters.rssBytes, process.memoryUsage.rss());
  const t1 = performance.now();
  const pending = writeSlot(request.output, result.bytes, task.output, request.output.directFd === null ? null : directWriter());
  return { reply: { ...doneOf(counters, expected, performance.now() - t1), stats: null }, pending };
}

function doneOf(counters: TaskCounters, bytesWritten: number, writeMs: number): Omit<TensorTaskDone, 'stats'> {
  return {
    ok: true,
    bytesRead: counters.bytesRead,
    bytesWritten,
    rssBytes: Math.max(counters.rssBytes, process.memoryUsage.rss()),
    readMs: counters.readMs,
    computeMs: counters.computeMs,
    writeMs,
    warnings: counters.warnings,
  };
}

function computeOptions(request: TensorTaskRequest, counters: TaskCounters, chunk: boolean = true) {
  const note = (message: string): void => {
    counters.warnings.push(message);
  };
  return {
    kernels: request.kernels,
    warn: note,
    logger: note,
    alloc: (n: number) => arena.take(n),
    ...(chunk && request.chunk !== null ? { chunk: request.chunk } : {}),
  };
}

/** The task's inputs: files read, stage inputs computed in this thread (never chunk statistics: those are the top task's). */
function readInputs(task: TensorTask, request: TensorTaskRequest, counters: TaskCounters): TensorData[] {
  // The stage tensors this task's permuted inputs gather rows from, each computed once (whole).
  const stageTensors = new Map<string, TensorData>();
  for (const s of stageSourcesOf(task.inputs)) {
    const computed = computeStage(s, request, counters);
    // Rows are gathered in the stage's output dtype, as the stage writes them.
    if (computed.dtype !== s.task.outDType) throw new EvoError('INTERNAL', `stage ${s.model}'s ${s.task.output}: computed ${computed.dtype}, planned ${s.task.outDType}`);
    stageTensors.set(stageSourceKey(s), computed);
  }
  const inputs: TensorData[] = [];
  for (const input of task.inputs) {
    if (input.kind === 'file') {
      const t0 = performance.now();
      inputs.push({ dtype: input.dtype, shape: input.shape, bytes: readInput(input, request.fds) });
      counters.readMs += performance.now() - t0;
      counters.bytesRead += input.byteLength;
    } else if (input.kind === 'permuted') {
      const t0 = performance.now();
      const bytes = arena.take(permutedByteLength(input));
      gatherPermutedRows(input, bytes, (source, offset, dst) => {
        if (source.kind === 'stage') {
          const computed = stageTensors.get(stageSourceKey(source));
          if (computed === undefined) throw new EvoError('INTERNAL', `${input.tensor}: stage ${source.model}'s ${source.task.output} was not computed`);
          dst.set(computed.bytes.subarray(offset, offset + dst.byteLength));
          return;
        }
        readRange(source, request.fds, source.byteOffset + offset, dst);
        counters.bytesRead += dst.byteLength;
      });
      inputs.push({ dtype: input.dtype, shape: input.shape, bytes });
      counters.readMs += performance.now() - t0;
    } else {
      inputs.push(computeStage(input, request, counters));
    }
  }
  counters.rssBytes = Math.max(counters.rssBytes, process.memoryUsage.rss());
  return inputs;
}

/** A stage's tensor, computed in this thread from its own inputs (in its output dtype, as the stage writes it). */
function computeStage(input: StageTensorInput, request: TensorTaskRequest, counters: TaskCounters): TensorData {
  const stageInputs = readInputs(input.task, request, counters);
  const t0 = performance.now();
  const out = computeTask(input.task, stageInputs, computeOptions(request, counters, false));
  counters.computeMs += performance.now() - t0;
  return out;
}

function readInput(input: FileTensorInput, fds: Readonly<Record<string, number>>): Uint8Array {
  const dst = arena.take(input.byteLength);
  readRange(input, fds, input.byteOffset, dst);
  return dst;
}

/** Fills `dst` from `input`'s file at absolute `byteOffset` (a whole tensor, or rows of one). */
function readRange(input: FileTensorInput, fds: Readonly<Record<string, number>>, byteOffset: number, dst: Uint8Array): void {
  const fd = fds[input.file];
  if (fd === undefined) {
    throw new EvoError('INTERNAL', `no descriptor for ${input.file} (tensor ${input.tensor})`);
  }
  let done = 0;
  while (done < dst.byteLength) {
    const n = fs.readSync(fd, dst, done, dst.byteLength - done, byteOffset + done);
    if (n === 0) {
      throw new EvoError(
        'SHORT_READ',
        `${input.file}: tensor ${JSON.stringify(input.tensor)}: file ended after ${done} of ${dst.byteLength} bytes at offset ${byteOffset}`,
      );
    }
    done += n;
  }
}
