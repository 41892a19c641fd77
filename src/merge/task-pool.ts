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
 * After a rejection, workers may still be running: the caller must destroy the pool before it
 * closes descriptors or removes files.
 */
export function runUnits(pool: Piscina, units: readonly WorkUnit[], options: RunUnitsOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const scheduler = new LargestFirstScheduler<WorkUnit>({ capacityBytes: options.maxMemoryBytes, maxRunning: options.jobs });
    for (const u of units) scheduler.push(u, u.costBytes);
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      reject(err);
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
      (pool.run(request, { name: WORKER_FUNCTION }) as Promise<TensorTaskReply>).then(
        (reply) => {
          if (settled) return;
          if (!reply.ok) {
            const err = new EvoError(reply.code, reply.message);
            if (reply.stack !== undefined) err.stack = reply.stack;
            fail(err);
            return;
          }
          scheduler.release(admission);
          options.onDone(unit, reply);
          pump();
        },
        (err: unknown) => fail(err),
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
