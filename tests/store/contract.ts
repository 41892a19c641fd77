/**
 * The RunStore contract suite (style.md §6, after Optuna's StorageTestCase): every backend runs
 * it. `makeStore` returns a fresh, empty store whose timestamps come from `clock`; `reopen`, where
 * a backend persists, closes a store and opens the same data again (a new process, in effect).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CandidateFinishedError, StoreError } from '../../src/store/errors.js';
import type { NewCandidate, NewResult, NewRun, RunStore } from '../../src/store/types.js';
import { crashingAfter, recipeHash, runScripted, SimulatedCrash, snapshotOf } from './scripted-run.js';

export type MakeStore = (clock: () => number) => RunStore | Promise<RunStore>;

export interface ContractOptions {
  /** Closes `store` and opens its data again; omit for backends that do not persist. */
  readonly reopen?: (store: RunStore) => Promise<RunStore>;
}

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);

/** A clock that ticks one second per call, so every timestamp is distinct and predictable. */
function tickingClock(): () => number {
  let t = T0;
  return () => (t += 1000);
}

const RUN: NewRun = {
  name: 'contract-run',
  spaceText: 'genes: {}\n',
  space: { genes: { weight: { min: 0, max: 1 } }, note: 'x' },
  spaceHash: 'abc123',
  seeds: { search: 1, merge: 2 },
  packageVersion: '0.1.0',
  objectives: [
    { name: 'acc', direction: 'maximize' },
    { name: 'cost', direction: 'minimize' },
  ],
  generations: 3,
};

function cand(generation: number, index: number, hash: string, genome: NewCandidate['genome'] = { w: [index, generation] }): NewCandidate {
  return { generation, index, genome, config: `merge_method: linear # ${hash}\n`, hash };
}

function result(acc: number, cost: number, extra: Partial<NewResult> = {}): NewResult {
  return {
    scores: { acc: { value: acc, ciLow: acc - 0.1, ciHigh: acc + 0.1, stderr: 0.05, n: 50 }, cost: { value: cost, n: 1 } },
    itemsUsed: 51,
    seconds: 2.5,
    ...extra,
  };
}

async function expectCode(p: Promise<unknown>, code: string): Promise<StoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
  return err as StoreError;
}

function expectDeepFrozen(value: unknown, path = 'value'): void {
  if (value === null || typeof value !== 'object') return;
  expect(Object.isFrozen(value), `${path} is frozen`).toBe(true);
  for (const [k, v] of Object.entries(value)) expectDeepFrozen(v, `${path}.${k}`);
}

/** A store with the run created and candidates 1..4 in generation 0 (4 is a repeat of 1's recipe). */
async function seeded(makeStore: MakeStore): Promise<RunStore> {
  const store = await makeStore(tickingClock());
  await store.createRun(RUN);
  await store.recordCandidates([cand(0, 0, 'h1'), cand(0, 1, 'h2'), cand(0, 2, 'h3'), cand(0, 3, 'h4')]);
  return store;
}

/** Evaluates every candidate of generation 0 of `seeded`: 1 → (0.5, 10), 2 → (0.7, 12), 3 fails, 4 → (0.7, 11). */
async function evaluated(makeStore: MakeStore): Promise<RunStore> {
  const store = await seeded(makeStore);
  for (const [id, r] of [
    [1, result(0.5, 10)],
    [2, result(0.7, 12)],
    [4, result(0.7, 11)],
  ] as const) {
    await store.startEvaluation(id);
    await store.recordResult(id, r);
  }
  await store.startEvaluation(3);
  await store.recordFailure(3, 'out of memory');
  return store;
}

export function runStoreContract(name: string, makeStore: MakeStore, options: ContractOptions = {}): void {
  describe(`RunStore contract: ${name}`, () => {
    describe('run', () => {
      it('has no run before createRun, and writes before it fail with RUN_MISSING', async () => {
        const store = await makeStore(tickingClock());
        expect(await store.getRun()).toBeUndefined();
        expect(await store.overview()).toBeUndefined();
        await expectCode(store.recordCandidate(cand(0, 0, 'h')), 'RUN_MISSING');
        await expectCode(store.setRunStatus('stopped'), 'RUN_MISSING');
        await store.close();
      });

      it('creates the run once, frozen, with status running and the clock times', async () => {
        const store = await makeStore(tickingClock());
        const run = await store.createRun(RUN);
        expect(run).toMatchObject({ ...RUN, status: 'running' });
        // Taken from the clock (backends may read it before, e.g. when opening).
        expect((Date.parse(run.createdAt) - T0) % 1000).toBe(0);
        expect(Date.parse(run.createdAt)).toBeGreaterThan(T0);
        expect(run.updatedAt).toBe(run.createdAt);
        expectDeepFrozen(run);
        expect(() => {
          (run.objectives as unknown as { name: string }[]).push({ name: 'x' });
        }).toThrow(TypeError);
        expect(await store.getRun()).toEqual(run);
        await expectCode(store.createRun({ ...RUN, name: 'other' }), 'RUN_EXISTS');
        const events = await store.events();
        expect(events.map((e) => [e.id, e.kind])).toEqual([[1, 'created']]);
        await store.close();
      });

      it('refuses bad runs with named errors before writing', async () => {
        const store = await makeStore(tickingClock());
        await expectCode(store.createRun({ ...RUN, name: '../escape' }), 'BAD_RUN_NAME');
        await expectCode(store.createRun({ ...RUN, objectives: [] }), 'BAD_INPUT');
        await expectCode(store.createRun({ ...RUN, objectives: [RUN.objectives[0]!, RUN.objectives[0]!] }), 'BAD_INPUT');
        await expectCode(store.createRun({ ...RUN, generations: 0 }), 'BAD_INPUT');
        await expectCode(store.createRun({ ...RUN, space: { x: Number.NaN } }), 'BAD_JSON');
        const typed = { x: new Float32Array(2) } as unknown as NewRun['space'];
        const err = await expectCode(store.createRun({ ...RUN, space: typed }), 'BAD_JSON');
        expect(err.message).toContain('run.space.x');
        expect(await store.getRun()).toBeUndefined();
        await store.close();
      });

      it('moves status with an event and updates updatedAt', async () => {
        const store = await makeStore(tickingClock());
        const created = await store.createRun(RUN);
        const stopped = await store.setRunStatus('stopped', 'SIGINT');
        expect(stopped.status).toBe('stopped');
        expect(stopped.updatedAt > created.updatedAt).toBe(true);
        const events = await store.events();
        expect(events.at(-1)).toMatchObject({ id: 2, kind: 'status', message: 'running → stopped: SIGINT', data: { from: 'running', to: 'stopped' } });
        await expectCode(store.setRunStatus('paused' as 'stopped'), 'BAD_INPUT');
        await store.close();
      });
    });

    describe('candidates', () => {
      it('numbers candidates 1, 2, 3 as pending, and copies the input genome', async () => {
        const store = await makeStore(tickingClock());
        await store.createRun(RUN);
        const genome = { w: [0.25, 0.75] };
        const first = await store.recordCandidate(cand(0, 0, 'h1', genome));
        genome.w[0] = 99;
        expect(first.created).toBe(true);
        expect(first.candidate).toMatchObject({ id: 1, generation: 0, index: 0, genome: { w: [0.25, 0.75] }, hash: 'h1', status: 'pending', attempts: 0, error: null, startedAt: null, finishedAt: null });
        expect(first.candidate.config).toBe('merge_method: linear # h1\n');
        expectDeepFrozen(first);
        const batch = await store.recordCandidates([cand(0, 1, 'h2'), cand(0, 2, 'h3')]);
        expect(batch.map((b) => [b.candidate.id, b.created])).toEqual([
          [2, true],
          [3, true],
        ]);
        expect((await store.candidate(1))?.genome).toEqual({ w: [0.25, 0.75] });
        expect(await store.candidate(4)).toBeUndefined();
        expect((await store.candidates()).map((c) => c.id)).toEqual([1, 2, 3]);
        await store.close();
      });

      it('dedupes by recipe hash: an identical recipe returns the existing candidate', async () => {
        const store = await seeded(makeStore);
        const again = await store.recordCandidate(cand(1, 0, 'h2', { other: 'genome' }));
        expect(again.created).toBe(false);
        expect(again.candidate.id).toBe(2);
        expect(again.candidate.generation).toBe(0);
        expect((await store.candidates()).length).toBe(4);
        expect((await store.candidateByHash('h2'))?.id).toBe(2);
        expect(await store.candidateByHash('nope')).toBeUndefined();
        // The slot keeps the genome the optimizer asked for there.
        const slots = await store.candidatesOfGeneration(1);
        expect(slots).toHaveLength(1);
        expect(slots[0]).toMatchObject({ generation: 1, index: 0, genome: { other: 'genome' }, result: null });
        expect(slots[0]?.candidate.id).toBe(2);
        // Within one batch too.
        const batch = await store.recordCandidates([cand(1, 1, 'new'), cand(1, 2, 'new')]);
        expect(batch.map((b) => [b.candidate.id, b.created])).toEqual([
          [5, true],
          [5, false],
        ]);
        await store.close();
      });

      it('replays a recorded slot as a no-op and refuses a diverging replay', async () => {
        const store = await seeded(makeStore);
        const replay = await store.recordCandidates([cand(0, 0, 'h1'), cand(0, 1, 'h2')]);
        expect(replay.map((r) => [r.candidate.id, r.created])).toEqual([
          [1, false],
          [2, false],
        ]);
        await expectCode(store.recordCandidate(cand(0, 1, 'different')), 'RESUME_DIVERGED');
        await expectCode(store.recordCandidate(cand(0, 1, 'h2', { w: ['changed'] })), 'RESUME_DIVERGED');
        // A batch is one transaction: a divergence at its end leaves nothing of it behind.
        await expectCode(store.recordCandidates([cand(1, 0, 'n1'), cand(1, 1, 'n2'), cand(0, 2, 'not-h3')]), 'RESUME_DIVERGED');
        expect((await store.candidates()).length).toBe(4);
        expect(await store.candidateByHash('n1')).toBeUndefined();
        expect(await store.candidatesOfGeneration(1)).toEqual([]);
        await expectCode(store.recordCandidate({ ...cand(0, 9, 'x'), generation: -1 }), 'BAD_INPUT');
        await expectCode(store.recordCandidate({ ...cand(0, 9, 'x'), hash: '' }), 'BAD_INPUT');
        await expectCode(store.recordCandidate(cand(0, 9, 'x', [1, undefined] as unknown as NewCandidate['genome'])), 'BAD_JSON');
        await store.close();
      });

      it('counts attempts and lists started, unfinished candidates as pending', async () => {
        const store = await seeded(makeStore);
        expect((await store.pendingCandidates()).map((c) => c.id)).toEqual([1, 2, 3, 4]);
        const started = await store.startEvaluation(2);
        expect(started).toMatchObject({ id: 2, status: 'running', attempts: 1 });
        expect(started.startedAt).not.toBeNull();
        // A crash re-queues it: starting again counts a second attempt.
        expect((await store.startEvaluation(2)).attempts).toBe(2);
        await store.recordResult(2, result(0.5, 1));
        expect((await store.pendingCandidates()).map((c) => c.id)).toEqual([1, 3, 4]);
        await expectCode(store.startEvaluation(99), 'UNKNOWN_CANDIDATE');
        await store.close();
      });
    });

    describe('results', () => {
      it('records a result with its scores, items and the move to done together', async () => {
        const store = await seeded(makeStore);
        await store.startEvaluation(1);
        const scored = await store.recordResult(
          1,
          result(0.625, 3, {
            modelBytes: 123456,
            details: { rung: 2, prompts: ['a'] },
            items: [
              { objective: 'acc', itemId: 'q2', correct: true, score: 1 },
              { objective: 'acc', itemId: 'q1', correct: false, score: 0 },
              { objective: 'cost', itemId: 'q1', score: 0.25 },
            ],
          }),
        );
        expectDeepFrozen(scored);
        expect(scored.candidate).toMatchObject({ id: 1, status: 'done', attempts: 1 });
        expect(scored.candidate.finishedAt).not.toBeNull();
        expect(scored.result).toEqual({
          candidateId: 1,
          scores: { acc: { value: 0.625, stderr: 0.05, ciLow: 0.525, ciHigh: 0.725, n: 50 }, cost: { value: 3, stderr: null, ciLow: null, ciHigh: null, n: 1 } },
          itemsUsed: 51,
          seconds: 2.5,
          modelBytes: 123456,
          details: { rung: 2, prompts: ['a'] },
          recordedAt: scored.candidate.finishedAt,
        });
        expect(await store.result(1)).toEqual(scored.result);
        expect(await store.result(2)).toBeUndefined();
        expect(await store.itemResults(1)).toEqual([
          { candidateId: 1, objective: 'acc', itemId: 'q2', correct: true, score: 1 },
          { candidateId: 1, objective: 'acc', itemId: 'q1', correct: false, score: 0 },
          { candidateId: 1, objective: 'cost', itemId: 'q1', correct: null, score: 0.25 },
        ]);
        expect(await store.itemResults(2)).toEqual([]);
        await store.startEvaluation(3);
        await store.recordResult(3, result(0.1, 1));
        expect((await store.results()).map((r) => r.candidateId)).toEqual([1, 3]);
        await store.close();
      });

      it('refuses bad results before writing anything', async () => {
        const store = await seeded(makeStore);
        await expectCode(store.recordResult(1, result(0.5, 1)), 'CANDIDATE_NOT_RUNNING');
        await store.startEvaluation(1);
        const extra = { ...result(0.5, 1), scores: { ...result(0.5, 1).scores, loss: { value: 1, n: 1 } } };
        await expectCode(store.recordResult(1, extra), 'UNKNOWN_OBJECTIVE');
        await expectCode(store.recordResult(1, { ...result(0.5, 1), scores: { acc: { value: 0.5, n: 1 } } }), 'BAD_INPUT');
        await expectCode(store.recordResult(1, { ...result(0.5, 1), scores: { acc: { value: 0.5, n: 1, ciLow: 0.6, ciHigh: 0.4 }, cost: { value: 1, n: 1 } } }), 'BAD_INPUT');
        await expectCode(store.recordResult(1, result(Number.NaN, 1)), 'BAD_INPUT');
        await expectCode(store.recordResult(1, result(0.5, 1, { seconds: -1 })), 'BAD_INPUT');
        await expectCode(store.recordResult(1, result(0.5, 1, { itemsUsed: 1.5 })), 'BAD_INPUT');
        const dupItems = [
          { objective: 'acc', itemId: 'q', score: 1 },
          { objective: 'acc', itemId: 'q', score: 0 },
        ];
        await expectCode(store.recordResult(1, result(0.5, 1, { items: dupItems })), 'BAD_INPUT');
        await expectCode(store.recordResult(1, result(0.5, 1, { items: [{ objective: 'zzz', itemId: 'q', score: 1 }] })), 'UNKNOWN_OBJECTIVE');
        await expectCode(store.recordResult(1, result(0.5, 1, { details: { bad: Number.POSITIVE_INFINITY } })), 'BAD_JSON');
        expect(await store.result(1)).toBeUndefined();
        expect(await store.itemResults(1)).toEqual([]);
        expect((await store.candidate(1))?.status).toBe('running');
        await expectCode(store.recordResult(42, result(0.5, 1)), 'UNKNOWN_CANDIDATE');
        await store.close();
      });

      it('never rewrites a finished candidate (CandidateFinishedError)', async () => {
        const store = await evaluated(makeStore);
        const before = await store.result(1);
        for (const attempt of [store.recordResult(1, result(0.9, 1)), store.startEvaluation(1), store.recordFailure(1, 'late'), store.recordResult(3, result(0.9, 1)), store.startEvaluation(3), store.recordFailure(3, 'again')]) {
          const err = await expectCode(attempt, 'CANDIDATE_FINISHED');
          expect(err).toBeInstanceOf(CandidateFinishedError);
        }
        expect(await store.result(1)).toEqual(before);
        expect(await store.candidate(3)).toMatchObject({ status: 'failed', error: 'out of memory', attempts: 1 });
        expect(await store.result(3)).toBeUndefined();
        await store.close();
      });

      it('checks a write in one order: finished first, then the input, then running', async () => {
        const store = await evaluated(makeStore);
        await store.recordCandidate(cand(1, 0, 'h5'));
        const bad = result(Number.NaN, 1);
        await expectCode(store.recordResult(1, bad), 'CANDIDATE_FINISHED');
        await expectCode(store.recordResult(5, bad), 'BAD_INPUT');
        await expectCode(store.recordResult(5, result(0.5, 1)), 'CANDIDATE_NOT_RUNNING');
        const notText = 42 as unknown as string;
        await expectCode(store.recordFailure(3, notText), 'CANDIDATE_FINISHED');
        expect((await expectCode(store.recordFailure(5, notText), 'BAD_INPUT')).message).toBe('failure of candidate 5: error must be a string');
        expect((await expectCode(store.recordFailure(5, 'oom'), 'CANDIDATE_NOT_RUNNING')).message).toBe('candidate 5 is pending; call startEvaluation before recording its failure');
        await expectCode(store.best('loss', -1), 'UNKNOWN_OBJECTIVE');
        expect((await expectCode(store.best('acc', -1), 'BAD_INPUT')).message).toBe('best(): limit must be a non-negative integer, got -1');
        expect(await store.candidate(5)).toMatchObject({ status: 'pending', attempts: 0 });
        await store.close();
      });
    });

    describe('rungs', () => {
      const rung0 = {
        rung: 0,
        scores: { acc: { value: 0.5, ciLow: 0.1, ciHigh: 0.9, stderr: 0.35, n: 2 }, cost: { value: 7, n: 1 } },
        itemsUsed: 3,
        seconds: 1.25,
        details: { slice: [0, 2] },
        items: [
          { objective: 'acc', itemId: 'q3', correct: true, score: 1 },
          { objective: 'acc', itemId: 'q1', correct: false, score: 0 },
          { objective: 'cost', itemId: 'c', score: 7 },
        ],
      };
      const rung1 = { rung: 1, scores: { acc: { value: 1, n: 1 } }, itemsUsed: 1, seconds: 0.5, items: [{ objective: 'acc', itemId: 'q2', correct: true, score: 1 }] };

      it('records rungs in order with their items, frozen, apart from the final result', async () => {
        const store = await seeded(makeStore);
        await store.startEvaluation(1);
        const r0 = await store.recordRungResult(1, rung0);
        expectDeepFrozen(r0);
        expect(r0).toEqual({
          candidateId: 1,
          rung: 0,
          scores: { acc: { value: 0.5, ciLow: 0.1, ciHigh: 0.9, stderr: 0.35, n: 2 }, cost: { value: 7, stderr: null, ciLow: null, ciHigh: null, n: 1 } },
          itemsUsed: 3,
          seconds: 1.25,
          details: { slice: [0, 2] },
          items: [
            { candidateId: 1, objective: 'acc', itemId: 'q3', correct: true, score: 1 },
            { candidateId: 1, objective: 'acc', itemId: 'q1', correct: false, score: 0 },
            { candidateId: 1, objective: 'cost', itemId: 'c', correct: null, score: 7 },
          ],
          recordedAt: r0.recordedAt,
        });
        const r1 = await store.recordRungResult(1, rung1);
        expect(r1).toMatchObject({ rung: 1, scores: { acc: { value: 1, stderr: null, n: 1 } }, details: null, items: [{ itemId: 'q2', correct: true }] });
        expect(await store.rungResults(1)).toEqual([r0, r1]);
        expect(await store.rungResults(2)).toEqual([]);
        // Rungs are not a result: the candidate is still running until recordResult.
        expect((await store.candidate(1))?.status).toBe('running');
        expect(await store.result(1)).toBeUndefined();
        await store.recordResult(1, result(0.667, 7));
        expect(await store.rungResults(1)).toEqual([r0, r1]);
        await store.close();
      });

      it('refuses rungs out of order, repeated items, bad scores and finished candidates before writing', async () => {
        const store = await seeded(makeStore);
        await expectCode(store.recordRungResult(1, rung0), 'CANDIDATE_NOT_RUNNING');
        await store.startEvaluation(1);
        await expectCode(store.recordRungResult(1, rung1), 'RUNG_OUT_OF_ORDER');
        await expectCode(store.recordRungResult(1, { ...rung0, scores: {} }), 'BAD_INPUT');
        await expectCode(store.recordRungResult(1, { ...rung0, scores: { loss: { value: 1, n: 1 } } }), 'UNKNOWN_OBJECTIVE');
        await expectCode(store.recordRungResult(1, { ...rung0, scores: { acc: { value: Number.NaN, n: 1 } } }), 'BAD_INPUT');
        await expectCode(store.recordRungResult(1, { ...rung0, seconds: -1 }), 'BAD_INPUT');
        expect(await store.rungResults(1)).toEqual([]);
        await store.recordRungResult(1, rung0);
        await expectCode(store.recordRungResult(1, rung0), 'RUNG_OUT_OF_ORDER');
        // An item already answered in rung 0 cannot be answered again in rung 1.
        await expectCode(store.recordRungResult(1, { ...rung1, items: [{ objective: 'acc', itemId: 'q1', score: 1 }] }), 'BAD_INPUT');
        expect((await store.rungResults(1)).map((r) => r.rung)).toEqual([0]);
        await store.recordFailure(1, 'broke in rung 1');
        const err = await expectCode(store.recordRungResult(1, rung1), 'CANDIDATE_FINISHED');
        expect(err).toBeInstanceOf(CandidateFinishedError);
        await expectCode(store.recordRungResult(42, rung0), 'UNKNOWN_CANDIDATE');
        await store.close();
      });

      if (options.reopen !== undefined) {
        const reopen = options.reopen;
        it('keeps rungs across reopen', async () => {
          const first = await seeded(makeStore);
          await first.startEvaluation(2);
          const r0 = await first.recordRungResult(2, rung0);
          const second = await reopen(first);
          expect(await second.rungResults(2)).toEqual([r0]);
          expect(await second.recordRungResult(2, rung1)).toMatchObject({ rung: 1 });
          await second.close();
        });
      }
    });

    describe('generations', () => {
      it('records states, front and a summary computed from the slots', async () => {
        const store = await evaluated(makeStore);
        // Slot 4 of generation 0 repeats candidate 1's recipe.
        await store.recordCandidate(cand(0, 4, 'h1', { repeat: true }));
        expect(await store.latestOptimizerState()).toBeUndefined();
        expect(await store.front()).toEqual([]);
        const rec = await store.recordGeneration({ generation: 0, optimizerState: { mean: [0.5], sigma: 0.3 }, rngState: { s: 42 }, front: [4, 1], seconds: 12.5 });
        expectDeepFrozen(rec);
        expect(rec.front).toEqual([4, 1]);
        expect(rec.summary).toEqual({
          generation: 0,
          slots: 5,
          evaluations: 3,
          failures: 1,
          reused: 1,
          seconds: 12.5,
          frontSize: 2,
          // acc 0.7 ties between 2 and 4: the lower id wins. cost: 10 (1) < 11 (4) < 12 (2).
          best: {
            acc: { candidateId: 2, value: 0.7, ciLow: 0.6, ciHigh: 0.7999999999999999, n: 50 },
            cost: { candidateId: 1, value: 10, ciLow: null, ciHigh: null, n: 1 },
          },
          // Distinct done candidates 1, 2, 4: acc 0.5, 0.7, 0.7 → 0.7; cost 10, 11, 12 → 11.
          median: { acc: 0.7, cost: 11 },
          recordedAt: rec.summary.recordedAt,
        });
        expect(await store.latestOptimizerState()).toEqual({ generation: 0, optimizerState: { mean: [0.5], sigma: 0.3 }, rngState: { s: 42 } });
        expect((await store.front()).map((s) => [s.candidate.id, s.result?.scores.acc?.value])).toEqual([
          [4, 0.7],
          [1, 0.5],
        ]);
        expect(await store.generationSummaries()).toEqual([rec.summary]);
        await store.close();
      });

      it('refuses incomplete, repeated, out-of-order generations and bad fronts', async () => {
        const store = await seeded(makeStore);
        const gen = (generation: number, front: number[] = []) => ({ generation, optimizerState: { g: generation }, rngState: null, front, seconds: 1 });
        await expectCode(store.recordGeneration(gen(0)), 'GENERATION_INCOMPLETE');
        for (const id of [1, 2, 3, 4]) {
          await store.startEvaluation(id);
          if (id === 3) await store.recordFailure(id, 'x');
          else await store.recordResult(id, result(id / 10, id));
        }
        await expectCode(store.recordGeneration(gen(0, [3])), 'BAD_INPUT');
        await expectCode(store.recordGeneration(gen(0, [77])), 'UNKNOWN_CANDIDATE');
        await expectCode(store.recordGeneration(gen(0, [1, 1])), 'BAD_INPUT');
        await expectCode(store.recordGeneration({ ...gen(0), optimizerState: { m: new Float64Array(1) } as unknown as null }), 'BAD_JSON');
        expect(await store.generationSummaries()).toEqual([]);
        await store.recordGeneration(gen(0, [1]));
        await expectCode(store.recordGeneration(gen(0, [1])), 'GENERATION_RECORDED');
        await store.recordCandidate(cand(2, 0, 'g2'));
        await store.startEvaluation(5);
        await store.recordResult(5, result(0.9, 1));
        await expectCode(store.recordGeneration(gen(2, [5])), 'GENERATION_OUT_OF_ORDER');
        await expectCode(store.recordGeneration(gen(1, [5])), 'GENERATION_INCOMPLETE');
        expect((await store.latestOptimizerState())?.optimizerState).toEqual({ g: 0 });
        await store.close();
      });

      it('returns the front of a given generation and [] for one never recorded', async () => {
        const store = await evaluated(makeStore);
        await store.recordGeneration({ generation: 0, optimizerState: 1, rngState: 2, front: [1], seconds: 0 });
        await store.recordCandidate(cand(1, 0, 'next'));
        await store.startEvaluation(5);
        await store.recordResult(5, result(0.9, 0.5));
        await store.recordGeneration({ generation: 1, optimizerState: 3, rngState: 4, front: [5], seconds: 0 });
        expect((await store.front(0)).map((s) => s.candidate.id)).toEqual([1]);
        expect((await store.front()).map((s) => s.candidate.id)).toEqual([5]);
        expect(await store.front(7)).toEqual([]);
        expect((await store.generationSummaries()).map((s) => s.generation)).toEqual([0, 1]);
        expect(await store.latestOptimizerState()).toEqual({ generation: 1, optimizerState: 3, rngState: 4 });
        await store.close();
      });
    });

    describe('queries', () => {
      it('ranks best candidates per objective, ties to the lower id', async () => {
        const store = await evaluated(makeStore);
        expect((await store.best('acc', 3)).map((s) => s.candidate.id)).toEqual([2, 4, 1]);
        expect((await store.best('acc')).map((s) => s.candidate.id)).toEqual([2]);
        expect((await store.best('cost', 10)).map((s) => [s.candidate.id, s.result?.scores.cost?.value])).toEqual([
          [1, 10],
          [4, 11],
          [2, 12],
        ]);
        await expectCode(store.best('loss'), 'UNKNOWN_OBJECTIVE');
        await store.close();
      });

      it('ranks candidates scored on the most items first: a raced candidate stopped after a few items does not outrank a full evaluation', async () => {
        const store = await seeded(makeStore);
        const scored = (acc: number, n: number): NewResult => ({ ...result(acc, 10), scores: { acc: { value: acc, ciLow: null, ciHigh: null, stderr: null, n }, cost: { value: 10, n: 1 } } });
        // 1: 0.9 on 16 items (stopped in the first rung), 2: 0.6 and 4: 0.8 on 64 (finalists).
        for (const [id, r] of [
          [1, scored(0.9, 16)],
          [2, scored(0.6, 64)],
          [4, scored(0.8, 64)],
        ] as const) {
          await store.startEvaluation(id);
          await store.recordResult(id, r);
        }
        expect((await store.best('acc', 3)).map((s) => s.candidate.id)).toEqual([4, 2, 1]);
        expect((await store.overview())?.best.acc).toMatchObject({ candidateId: 4, value: 0.8, n: 64 });
        // Where every candidate has the same count, value alone ranks (cost: n = 1 for all).
        expect((await store.best('cost', 3)).map((s) => s.candidate.id)).toEqual([1, 2, 4]);
        await store.close();
      });

      it('summarizes the run in overview()', async () => {
        const store = await evaluated(makeStore);
        await store.recordCandidate(cand(1, 0, 'open'));
        await store.recordGeneration({ generation: 0, optimizerState: null, rngState: null, front: [1, 2, 4], seconds: 1 });
        const o = await store.overview();
        expectDeepFrozen(o);
        expect(o).toMatchObject({
          name: 'contract-run',
          status: 'running',
          generationsTarget: 3,
          generationsDone: 1,
          candidates: 5,
          evaluations: 3,
          failures: 1,
          unfinished: 1,
          best: { acc: { candidateId: 2, value: 0.7, n: 50 }, cost: { candidateId: 1, value: 10, n: 1 } },
        });
        await store.close();
      });

      it('appends events with JSON data, numbered from 1', async () => {
        const store = await makeStore(tickingClock());
        const e = await store.appendEvent('note', 'before the run exists', { pid: 1 });
        expect(e).toMatchObject({ id: 1, kind: 'note', message: 'before the run exists', data: { pid: 1 } });
        expectDeepFrozen(e);
        await store.createRun(RUN);
        await store.appendEvent('resumed', 'again');
        expect((await store.events()).map((x) => [x.id, x.kind])).toEqual([
          [1, 'note'],
          [2, 'created'],
          [3, 'resumed'],
        ]);
        await expectCode(store.appendEvent('bogus' as 'note', 'x'), 'BAD_INPUT');
        await store.close();
      });

      it('refuses every call after close', async () => {
        const store = await makeStore(tickingClock());
        await store.close();
        await expectCode(store.getRun(), 'STORE_CLOSED');
        await expectCode(store.createRun(RUN), 'STORE_CLOSED');
      });
    });

    it('assigns ids by first appearance and dedupes any sequence of asks (property)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 25 }), async (hashes) => {
          const store = await makeStore(tickingClock());
          await store.createRun(RUN);
          const inserts = [];
          for (const [i, h] of hashes.entries()) inserts.push(await store.recordCandidate(cand(Math.floor(i / 5), i % 5, `h${h}`)));
          const firstSeen = [...new Set(hashes)];
          expect((await store.candidates()).map((c) => c.hash)).toEqual(firstSeen.map((h) => `h${h}`));
          inserts.forEach((ins, i) => {
            expect(ins.candidate.hash).toBe(`h${hashes[i]}`);
            expect(ins.candidate.id).toBe(firstSeen.indexOf(hashes[i] ?? -1) + 1);
            expect(ins.created).toBe(hashes.indexOf(hashes[i] ?? -1) === i);
          });
          await store.close();
        }),
        { numRuns: 30 },
      );
    });

    it('runs the scripted search end to end with consistent records', async () => {
      const store = await makeStore(tickingClock());
      await runScripted(store, { generations: 5, population: 6 });
      const run = await store.getRun();
      expect(run?.status).toBe('finished');
      const summaries = await store.generationSummaries();
      expect(summaries.map((s) => s.generation)).toEqual([0, 1, 2, 3, 4]);
      expect(summaries.every((s) => s.slots === 6)).toBe(true);
      expect(await store.pendingCandidates()).toEqual([]);
      const candidates = await store.candidates();
      expect(new Set(candidates.map((c) => c.hash)).size).toBe(candidates.length);
      for (const c of candidates) {
        expect(c.hash).toBe(recipeHash(c.genome as never));
        expect((await store.result(c.id)) === undefined).toBe(c.status === 'failed');
      }
      expect(summaries.reduce((n, s) => n + s.evaluations + s.failures, 0)).toBe(candidates.length);
      expect(summaries.reduce((n, s) => n + s.reused, 0)).toBe(30 - candidates.length);
      await store.close();
    });

    it('resumes a run interrupted after any number of writes to the same candidates, scores and front', async () => {
      const script = { generations: 4, population: 5 };
      const reference = await makeStore(tickingClock());
      await runScripted(reference, script);
      const expected = await snapshotOf(reference);
      await reference.close();
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 50 }), async (writes) => {
          let store = await makeStore(tickingClock());
          const crashed = await runScripted(crashingAfter(store, writes), script).then(
            () => false,
            (err: unknown) => {
              if (!(err instanceof SimulatedCrash)) throw err;
              return true;
            },
          );
          // Past the last write the run simply finishes; otherwise a new process takes over.
          if (crashed && options.reopen !== undefined) store = await options.reopen(store);
          await runScripted(store, script);
          expect(await snapshotOf(store)).toEqual(expected);
          expect(await store.pendingCandidates()).toEqual([]);
          await store.close();
        }),
        { numRuns: 12, examples: [[0], [1], [2], [3]] },
      );
    });

    if (options.reopen !== undefined) {
      const reopen = options.reopen;
      it('keeps every record across reopen', async () => {
        const first = await makeStore(tickingClock());
        await runScripted(first, { generations: 2, population: 6 });
        const before = await snapshotOf(first);
        const events = await first.events();
        const run = await first.getRun();
        const second = await reopen(first);
        expect(await snapshotOf(second)).toEqual(before);
        expect(await second.getRun()).toEqual(run);
        expect((await second.events()).slice(0, events.length)).toEqual(events);
        await second.close();
      });
    }
  });
}
