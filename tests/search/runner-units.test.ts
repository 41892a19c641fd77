import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRunSummary, formatSearchEvent } from '../../src/cli/search.js';
import { frontOf } from '../../src/search/runner.js';
import { outcomeOf } from '../../src/search/run-evaluators.js';
import { generationsNote, modelsNote, resolveModelRef, runOverrides, runSpaceHash, spaceChangeNote, type RunSpace } from '../../src/search/run-space.js';
import { parseSpace } from '../../src/search/space.js';
import type { EventRecord, ResultRecord } from '../../src/store/types.js';

/** The runner's pure parts: result reading, identity hash, path resolution, front, output lines. */

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-runner-units-'));
  await mkdir(path.join(dir, 'models', 'base'), { recursive: true });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('outcomeOf (what a user evaluator returns)', () => {
  it('takes a number as a score on one item', () => {
    expect(outcomeOf(0.25, 'm', 'acc')).toEqual({ score: { value: 0.25, n: 1 }, itemsUsed: 1, items: [], details: null, failure: null });
  });
  it('reads n, stderr, ci, items and keeps the rest as details', () => {
    const o = outcomeOf({ score: 0.5, n: 4, stderr: 0.25, ci: [0.1, 0.9], items: [{ id: 'a', correct: true }, { id: 2, score: 0.5 }], tokens: 17 }, 'm', 'acc');
    expect(o).toEqual({
      score: { value: 0.5, n: 4, stderr: 0.25, ciLow: 0.1, ciHigh: 0.9 },
      itemsUsed: 4,
      items: [
        { objective: 'acc', itemId: 'a', score: 1, correct: true },
        { objective: 'acc', itemId: '2', score: 0.5, correct: null },
      ],
      details: { tokens: 17 },
      failure: null,
    });
  });
  it('counts items when n is not given', () => {
    expect(outcomeOf({ score: 1, items: [{ id: 'a', correct: true }, { id: 'b', correct: true }] }, 'm', 'x').itemsUsed).toBe(2);
  });
  it('fails the candidate on a non-finite score, with the reason given', () => {
    expect(outcomeOf(Number.NaN, 'm', 'acc').failure).toBe('m returned NaN');
    expect(outcomeOf({ score: Number.POSITIVE_INFINITY, error: 'model printed nothing' }, 'm', 'acc').failure).toBe('m: model printed nothing');
  });
  it.each([['text'], [null], [[1, 2]], [{ value: 1 }], [{ score: '1' }]])('refuses %j (EVALUATOR_RESULT)', (v) => {
    expect(() => outcomeOf(v, 'm', 'acc')).toThrow(expect.objectContaining({ code: 'EVALUATOR_RESULT' }));
  });
  it('refuses malformed items', () => {
    expect(() => outcomeOf({ score: 1, items: [{ correct: true }] }, 'm', 'acc')).toThrow(/items\[0\]/);
    expect(() => outcomeOf({ score: 1, items: [{ id: 'a' }] }, 'm', 'acc')).toThrow(/items\[0\]/);
  });
});

const SPACE = `name: s
base_model: ./models/base
models: [./models/ft, org/hub-model]
genome: {methods: [linear]}
objectives: [{name: a, evaluator: {module: ./e.mjs}}]
optimizer: {kind: ga, generations: 5, seed: 1}
`;

describe('run identity and paths', () => {
  it('resolves local model references against the space folder and keeps hub ids', () => {
    expect(resolveModelRef('models/base', dir)).toBe(path.join(dir, 'models', 'base'));
    expect(resolveModelRef('./missing', dir)).toBe(path.join(dir, 'missing'));
    expect(resolveModelRef('/abs/x', dir)).toBe('/abs/x');
    expect(resolveModelRef('org/hub-model', dir)).toBe('org/hub-model');
  });

  it('ignores the stopping rules in the run hash, not the search itself', () => {
    const hash = (text: string): string => runSpaceHash({ ...parseSpace(text), spaceDir: dir } as RunSpace);
    const h = hash(SPACE);
    expect(hash(SPACE.replace('generations: 5', 'generations: 50'))).toBe(h);
    expect(hash(SPACE.replace('seed: 1', 'seed: 1, max_evaluations: 9'))).toBe(h);
    expect(hash(SPACE.replace('seed: 1', 'seed: 2'))).not.toBe(h);
    expect(hash(SPACE.replace('[linear]', '[task_arithmetic]'))).not.toBe(h);
  });

  it('reads the latest forced space and generation target from the run events', () => {
    const space = { ...parseSpace(SPACE), spaceDir: dir } as RunSpace;
    const ev = (id: number, data: EventRecord['data']): EventRecord => ({ id, at: '', kind: 'note', message: '', data });
    const events = [ev(1, generationsNote(7)), ev(2, spaceChangeNote(space, 'h1', 't1')), ev(3, { other: 1 }), ev(4, generationsNote(9)), ev(5, modelsNote({ a: 'f1' })), ev(6, modelsNote({ a: 'f2', b: 'f3' }))];
    const o = runOverrides(events);
    expect(o.generations).toBe(9);
    expect(o.space?.hash).toBe('h1');
    expect(o.models).toEqual({ a: 'f2', b: 'f3' });
    expect(runOverrides([])).toEqual({ space: null, generations: null, models: null });
  });
});

describe('frontOf', () => {
  const result = (id: number, acc: number, cost: number): ResultRecord => ({
    candidateId: id,
    scores: { acc: { value: acc, stderr: null, ciLow: null, ciHigh: null, n: 1 }, cost: { value: cost, stderr: null, ciLow: null, ciHigh: null, n: 1 } },
    itemsUsed: 1,
    seconds: 0,
    modelBytes: null,
    details: null,
    recordedAt: '',
  });
  const objectives = parseSpace(SPACE.replace('objectives: [{name: a, evaluator: {module: ./e.mjs}}]', 'objectives: [{name: acc, evaluator: x}, {name: cost, evaluator: x, maximize: false}]')).objectives;

  it('keeps the non-dominated results (acc up, cost down), best acc first', () => {
    // #2 dominates #1 (better acc, same cost); #3 and #4 trade acc for cost; #5 equals #4.
    const results = [result(1, 0.5, 3), result(2, 0.6, 3), result(3, 0.9, 5), result(4, 0.4, 1), result(5, 0.4, 1)];
    expect(frontOf(results, objectives)).toEqual([3, 2, 4, 5]);
  });
});

describe('progress lines', () => {
  it('formats a generation with best (interval, n), median, front, rate and ETA', () => {
    const generation = {
      event: 'generation',
      run: 'r',
      generation: 2,
      lastGeneration: 9,
      slots: 6,
      evaluations: 5,
      failures: 0,
      reused: 1,
      best: { acc: { candidateId: 14, value: 0.62, ciLow: 0.55, ciHigh: 0.69, n: 200 } },
      median: { acc: 0.5 },
      front: [14, 3],
      seconds: 75,
      evaluationsPerSecond: 0.0667,
      etaSeconds: 525,
      race: null,
    } as const;
    const line = formatSearchEvent(generation);
    expect(line).toBe('gen 3/10: best acc 0.62 [0.55, 0.69] n=200 (#14) | median acc 0.5 | front 2 | 5 evaluated (1 reused) in 1m15s, 0.0667 eval/s, ETA 8m45s');
    // A raced generation says what it cost against a full pass.
    const raced = { ...generation, race: { objective: 'acc', rungs: [{ items: 25, candidates: 16 }, { items: 200, candidates: 2 }], itemsEvaluated: 750, fullPassItems: 3200 } };
    expect(formatSearchEvent(raced)).toBe(
      'gen 3/10: best acc 0.62 [0.55, 0.69] n=200 (#14) | median acc 0.5 | front 2 | 5 evaluated (1 reused, 750/3200 acc items raced (23.4% of a full pass)) in 1m15s, 0.0667 eval/s, ETA 8m45s',
    );
    expect(formatSearchEvent({ event: 'build', run: 'r', generation: 0, id: 1 })).toBeNull();
  });

  it('summarizes a run with the per-candidate times and the evaluator idle share', () => {
    const text = formatRunSummary({
      event: 'run',
      run: 'r',
      status: 'finished',
      reason: 'generations',
      generations: 2,
      candidates: 4,
      evaluations: 4,
      failures: 0,
      best: { acc: { candidateId: 2, value: 0.5, ciLow: null, ciHigh: null, n: 10 } },
      front: [2],
      seconds: 10,
      timing: { candidates: 4, buildSeconds: 2, evaluateSeconds: 6, windowSeconds: 8, waitSeconds: 2, firstBuildWaitSeconds: 1, evaluatorIdleFraction: 0.25, overlapSpeedup: 1 },
      store: 'runs/r/run.db',
    });
    expect(text).toBe(
      [
        "run 'r' finished (generations): 2 generations, 4 candidates (4 evaluated, 0 failed)",
        'best: acc 0.5 n=10 (#2)',
        'front: #2',
        'this session: 4 candidates in 10s; per candidate build 0.5 s, evaluate 1.5 s; evaluator idle 25% (overlap ×1)',
        'store: runs/r/run.db',
      ].join('\n'),
    );
  });
});
