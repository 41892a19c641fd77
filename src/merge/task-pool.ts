/**
 * Runs work units (tasks or row chunks) on the Piscina pool under a memory budget: a unit is posted
 * to a worker only when the scheduler admits it, so at most `jobs` units are in flight and their estimated
 * working sets fit in the budget (a unit larger than the whole budget runs alone).
 */
import type { Piscina } from 'piscina';
import { EvoError } from '../errors.js';
import { LargestFirstScheduler } from './memory-budget.js';
import type { Admission } from './memory-budget.js';
import type { WorkUnit } from './work-units.js';
import { WORKER_FUNCTION } from './worker-protocol.js';
import type { KernelChoice, TensorTaskDone, TensorTaskReply, TensorTaskRequest } from './worker-protocol.js';

export interface RunUnitsOptions {
  /** Units in flight at once (threads × tasks per thread). */
  readonly jobs: number;
  readonly maxMemoryBytes: number;
  readonly kernels: KernelChoice;
  /** Read descriptors by path, for every file any unit reads. */
  readonly fds: Readonly<Record<string, number>>;
  readonly scratchRetainBytes: number;
  readonly signal: AbortSignal | null;
  readonly onDone: (unit: WorkUnit, reply: TensorTaskDone) => void;
  /** Called once per unit that runs alone because it is larger than the budget. */
  readonly onAlone: (unit: WorkUnit) => void;
}

/** The merge was cancelled through its AbortSignal. */
export class MergeAbortedError extends EvoError {
  constructor() {
    super('MERGE_ABORTED', 'merge aborted; no output was written');
    this.name = 'MergeAbortedError';
  }
}

/**
 * Runs every unit; resolves when all have been written, rejects on the first failure or on abort.
 * The rejection waits for the units already started to settle: a worker's reply comes only after
 * its output write has (slot-write.ts writes asynchronously through libuv's threadpool), so no
 * write is then queued against a descriptor the caller is about to close and the system may hand
 * out again. The caller still destroys the pool before it closes descriptors or removes files.
 */
export function runUnits(pool: Piscina, units: readonly WorkUnit[], options: RunUnitsOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const scheduler = new LargestFirstScheduler<WorkUnit>({ capacityBytes: options.maxMemoryBytes, maxRunning: options.jobs });
    for (const u of units) scheduler.push(u, u.costBytes);
    let settled = false;
    let running = 0;
    let failure: { readonly err: unknown } | null = null;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      failure = { err };
      if (running === 0) reject(err);
    };
    /** One started unit has settled: after a failure, the last one to settle delivers it. */
    const landed = (): void => {
      running -= 1;
      if (failure !== null && running === 0) reject(failure.err);
    };
    const onAbort = (): void => fail(new MergeAbortedError());
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const start = (admission: Admission<WorkUnit>): void => {
      const unit = admission.item;
      if (admission.alone) options.onAlone(unit);
      const request: TensorTaskRequest = {
        task: unit.task,
        fds: options.fds,
        output: unit.output,
        kernels: options.kernels,
        scratchRetainBytes: options.scratchRetainBytes,
        pass: unit.pass,
        chunk: unit.chunk,
      };
      running += 1;
      (pool.run(request, { name: WORKER_FUNCTION }) as Promise<TensorTaskReply>).then(
        (reply) => {
          landed();
          if (settled) return;
          if (!reply.ok) {
            const err = new EvoError(reply.code, reply.message);
            if (reply.stack !== undefined) err.stack = reply.stack;
            fail(err);
            return;
          }
          scheduler.release(admission);
          try {
            options.onDone(unit, reply);
          } catch (err) {
            fail(err);
            return;
          }
          pump();
        },
        (err: unknown) => {
          landed();
          fail(err);
        },
      );
    };

    const pump = (): void => {
      if (settled) return;
      for (let a = scheduler.admit(); a !== undefined; a = scheduler.admit()) start(a);
      if (scheduler.pending === 0 && scheduler.running === 0) {
        settled = true;
        options.signal?.removeEventListener('abort', onAbort);
        resolve();
      }
    };
    pump();
  });
}
