/**
 * task-pool.ts runUnits with a stand-in pool whose runs the test settles by hand: a failure or an
 * abort rejects only once every unit already started has settled (its reply, and so its output
 * write, is in), nothing new starts after it, and an onDone that throws rejects instead of escaping.
 */
import type { Piscina } from 'piscina';
import { describe, expect, it } from 'vitest';
import { EvoError } from '../../src/errors.js';
import { MergeAbortedError, runUnits } from '../../src/merge/task-pool.js';
import type { RunUnitsOptions } from '../../src/merge/task-pool.js';
import type { TensorTask } from '../../src/merge/task.js';
import type { WorkUnit } from '../../src/merge/work-units.js';
import type { TensorTaskReply, TensorTaskRequest } from '../../src/merge/worker-protocol.js';

interface Run {
  readonly output: string;
  readonly settle: (reply: TensorTaskReply) => void;
}

/** A pool whose run() calls wait until the test settles them. */
function standInPool(): { pool: Piscina; runs: Run[] } {
  const runs: Run[] = [];
  const pool = {
    run(request: TensorTaskRequest): Promise<TensorTaskReply> {
      return new Promise((resolve) => runs.push({ output: request.task.output, settle: resolve }));
    },
  };
  return { pool: pool as unknown as Piscina, runs };
}

function unit(name: string): WorkUnit {
  return {
    task: { output: name } as unknown as TensorTask,
    output: { fd: -1, directFd: null, byteOffset: 0, byteLength: 0 },
    costBytes: 1,
    inputBytes: 0,
    completesTensor: true,
    pass: 'merge',
    chunk: null,
  };
}

const ok: TensorTaskReply = { ok: true, bytesRead: 0, bytesWritten: 0, rssBytes: 0, readMs: 0, computeMs: 0, writeMs: 0, warnings: [], stats: null };
const failed: TensorTaskReply = { ok: false, code: 'WRITE_FAILED', message: 'tensor b: disk full', stack: undefined };

function options(over: Partial<RunUnitsOptions> = {}): RunUnitsOptions {
  return { jobs: 2, maxMemoryBytes: 100, kernels: 'ts', fds: {}, scratchRetainBytes: 0, signal: null, onDone: () => undefined, onAlone: () => undefined, ...over };
}

/** Lets promise callbacks run. */
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('runUnits', () => {
  it("a unit's failure rejects only after the other started unit settles, and starts nothing more", async () => {
    const { pool, runs } = standInPool();
    let outcome: unknown = 'pending';
    const done = runUnits(pool, ['a', 'b', 'c', 'd'].map(unit), options()).then(
      () => (outcome = 'resolved'),
      (err: unknown) => (outcome = err),
    );
    await tick();
    expect(runs.map((r) => r.output)).toHaveLength(2);
    runs[1]?.settle(failed);
    await tick();
    expect(outcome).toBe('pending'); // the first unit may still be writing
    expect(runs).toHaveLength(2);
    runs[0]?.settle(ok);
    await done;
    expect(outcome).toBeInstanceOf(EvoError);
    expect((outcome as EvoError).code).toBe('WRITE_FAILED');
    expect(runs).toHaveLength(2);
  });

  it('an abort rejects with MergeAbortedError once the started units settle', async () => {
    const { pool, runs } = standInPool();
    const controller = new AbortController();
    let outcome: unknown = 'pending';
    const done = runUnits(pool, ['a', 'b', 'c'].map(unit), options({ signal: controller.signal })).then(
      () => (outcome = 'resolved'),
      (err: unknown) => (outcome = err),
    );
    await tick();
    controller.abort();
    await tick();
    expect(outcome).toBe('pending');
    runs[0]?.settle(ok);
    runs[1]?.settle(ok);
    await done;
    expect(outcome).toBeInstanceOf(MergeAbortedError);
    expect(runs).toHaveLength(2);
  });

  it('an onDone that throws rejects the run', async () => {
    const { pool, runs } = standInPool();
    const done = runUnits(pool, [unit('a')], options({ onDone: () => { throw new EvoError('INTERNAL', 'no statistics for a'); } }));
    await tick();
    runs[0]?.settle(ok);
    await expect(done).rejects.toThrow('no statistics for a');
  });

  it('resolves once every unit is done', async () => {
    const { pool, runs } = standInPool();
    const seen: string[] = [];
    const done = runUnits(pool, ['a', 'b', 'c'].map(unit), options({ onDone: (u) => seen.push(u.task.output) }));
    for (let i = 0; i < 3; i++) {
      await tick();
      runs[i]?.settle(ok);
    }
    await done;
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
  });
});
