import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSearch, type SearchOptions } from '../../src/search/runner.js';
import type { CandidateEvent, GenerationEvent, RunEvent, SearchEvent } from '../../src/search/run-events.js';
import { modelFingerprints } from '../../src/search/model-fingerprint.js';
import { modelsNote } from '../../src/search/run-space.js';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import { openCheckpoint } from '../../src/tensors/checkpoint.js';
import { readSafetensorsHeader } from '../../src/tensors/safetensors.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';
import { runSnapshot, TARGET_WEIGHTS, withRunStore, writeFamily, writeSpace, type Family } from './runner-fixtures.js';

/**
 * The search runner end to end on tiny real models: genomes are decoded, merged by the real
 * merge engine, scored by a user evaluator module that reads the merged weights, and recorded in
 * a SQLite run store. The evaluator rewards closeness to a hidden target (task arithmetic with
 * weights 0.8 / 0.3), so fitness has somewhere to go.
 */

let dir = '';
let family: Family;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-runner-'));
  family = await writeFamily(path.join(dir, 'family'));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const withStore = withRunStore;

async function search(options: SearchOptions): Promise<{ done: RunEvent; events: SearchEvent[] }> {
  const events: SearchEvent[] = [];
  const done = await runSearch({ jobs: 1, ...options, onEvent: (e) => events.push(e) });
  return { done, events };
}

function logLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : [];
}

/** How many times each hash's evaluation finished, from the evaluator's log. */
function endCounts(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const l of logLines(file)) {
    const [kind, hash] = l.split(' ');
    if (kind === 'end' && hash !== undefined) counts.set(hash, (counts.get(hash) ?? 0) + 1);
  }
  return counts;
}

/** −RMS distance to the target of task arithmetic with weights (w1, w2), from the fixture's own values. */
async function expectedScore(w1: number, w2: number): Promise<number> {
  const read = async (ref: string): Promise<Map<string, Float32Array>> => {
    const ck = await openCheckpoint(path.join(family.dir, ref));
    const out = new Map<string, Float32Array>();
    for (const [name, t] of ck.tensors) {
      const buf = readFileSync(t.file).subarray(t.byteOffset, t.byteOffset + t.byteLength);
      out.set(name, new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)));
    }
    return out;
  };
  const [base, ft1, ft2] = [await read('base'), await read('ft1'), await read('ft2')];
  let sq = 0;
  let n = 0;
  for (const [name, b] of base) {
    const a1 = ft1.get(name) ?? b;
    const a2 = ft2.get(name) ?? b;
    for (let i = 0; i < b.length; i++) {
      const d1 = (a1[i] ?? 0) - (b[i] ?? 0);
      const d2 = (a2[i] ?? 0) - (b[i] ?? 0);
      const diff = (w1 - TARGET_WEIGHTS[0]) * d1 + (w2 - TARGET_WEIGHTS[1]) * d2;
      sq += diff * diff;
      n++;
    }
  }
  return -Math.sqrt(sq / n);
}

describe('a GA search toward a hidden target', () => {
  let reference: unknown;
  let refEvents: SearchEvent[] = [];
  let spaceFile = '';
  const runsA = (): string => path.join(dir, 'runs-a');

  beforeAll(async () => {
    spaceFile = await writeSpace(family, { name: 'toward-target', population: 6, generations: 4, evaluatorOptions: { log: path.join(dir, 'log-a') } });
  });

  it('improves fitness over generations, scoring the real merge of each genome', async () => {
    const { done, events } = await search({ spaceFile, runsDir: runsA() });
    refEvents = events;
    expect(done.status).toBe('finished');
    expect(done.generations).toBe(4);
    expect(done.failures).toBe(0);
    const summaries = await withStore(runsA(), 'toward-target', (s) => s.generationSummaries());
    const median = (g: number): number => summaries[g]?.median.closeness ?? Number.NaN;
    const best = (g: number): number => summaries[g]?.best.closeness?.value ?? Number.NaN;
    expect(median(3)).toBeGreaterThan(median(0));
    expect(best(3)).toBeGreaterThan(best(0));

    // The best candidate's genes are nearer the hidden weights than generation 0's best, and its
    // score is what task arithmetic with those genes gives (computed here without the engine).
    const [bestNow, bestFirst] = await withStore(runsA(), 'toward-target', async (s) => {
      const all = await s.best('closeness', 100);
      return [all[0], all.find((c) => c.candidate.generation === 0)];
    });
    const genes = (c: typeof bestNow): number[] => ((c?.candidate.genome as { continuous: number[] } | undefined)?.continuous ?? []).slice(0, 2);
    const dist = (w: number[]): number => Math.hypot((w[0] ?? 0) - TARGET_WEIGHTS[0], (w[1] ?? 0) - TARGET_WEIGHTS[1]);
    expect(dist(genes(bestNow))).toBeLessThan(dist(genes(bestFirst)));
    const [w1, w2] = genes(bestNow).map((x) => Math.round(x * 1e6) / 1e6);
    expect(bestNow?.result?.scores.closeness?.value).toBeCloseTo(await expectedScore(w1 ?? 0, w2 ?? 0), 5);

    // Every candidate evaluated exactly once; the candidates' models were deleted.
    const ends = endCounts(path.join(dir, 'log-a'));
    expect(ends.size).toBe(done.candidates);
    expect([...ends.values()].every((n) => n === 1)).toBe(true);
    expect(readdirSync(path.join(runsA(), 'toward-target', 'candidates'))).toEqual([]);
    reference = await withStore(runsA(), 'toward-target', runSnapshot);
  });

  it('builds candidate k+1 before candidate k is finished (the merge overlaps the evaluation)', () => {
    const order = refEvents.filter((e): e is Extract<SearchEvent, { id: number }> => 'id' in e);
    const position = (event: string, id: number): number => order.findIndex((e) => e.event === event && e.id === id);
    const candidates = refEvents.filter((e): e is CandidateEvent => e.event === 'candidate');
    let overlapped = 0;
    for (const [i, c] of candidates.entries()) {
      const next = candidates[i + 1];
      if (next === undefined || next.generation !== c.generation) continue;
      expect(position('build', next.id)).toBeLessThan(position('candidate', c.id));
      overlapped++;
    }
    expect(overlapped).toBeGreaterThan(10);
    const gens = refEvents.filter((e): e is GenerationEvent => e.event === 'generation');
    expect(gens.map((g) => g.generation)).toEqual([0, 1, 2, 3]);
    expect(gens.every((g) => g.lastGeneration === 3 && g.front.length >= 1)).toBe(true);
  });

  it('gives the same candidates, scores and front for the same seed (also without overlap)', async () => {
    const runsB = path.join(dir, 'runs-b');
    const { events } = await search({ spaceFile, runsDir: runsB, overlap: false });
    expect(await withStore(runsB, 'toward-target', runSnapshot)).toEqual(reference);
    // Without overlap, candidate k+1's build starts only once candidate k is recorded.
    const ids = events.flatMap((e) => (e.event === 'build' || e.event === 'candidate' ? [`${e.event} ${e.id}`] : []));
    const expected = [...new Set(events.flatMap((e) => (e.event === 'candidate' ? [e.id] : [])))].flatMap((id) => [`build ${id}`, `candidate ${id}`]);
    expect(ids).toEqual(expected);
  });

  it('continues an interrupted run (twice) to the uninterrupted result, evaluating nothing twice', async () => {
    const runsC = path.join(dir, 'runs-c');
    const logC = path.join(dir, 'log-c');
    const spaceC = await writeSpace(family, { name: 'interrupted', population: 6, generations: 4, evaluatorOptions: { log: logC } });
    // Stop once after the 3rd candidate of the first session, once after the 5th of the second.
    for (const stopAt of [3, 5]) {
      const controller = new AbortController();
      let seen = 0;
      const run = runSearch({
        spaceFile: spaceC,
        runsDir: runsC,
        jobs: 1,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.event === 'candidate' && ++seen === stopAt) controller.abort();
        },
      });
      await expect(run).rejects.toMatchObject({ code: 'INTERRUPTED' });
      expect(await withStore(runsC, 'interrupted', async (s) => (await s.getRun())?.status)).toBe('stopped');
    }
    expect(await withStore(runsC, 'interrupted', async (s) => (await s.results()).length)).toBe(8);
    await search({ run: 'interrupted', runsDir: runsC });
    expect(await withStore(runsC, 'interrupted', runSnapshot)).toEqual(reference);
    const ends = endCounts(logC);
    expect([...ends.values()].every((n) => n === 1)).toBe(true);
    expect(ends.size).toBe((reference as { candidates: unknown[] }).candidates.length);
  });
});

describe('runner rules', () => {
  it('asks optimizer.initial genomes first: each source alone, then both at weight 1, scored as those merges', async () => {
    const spaceFile = await writeSpace(family, { name: 'seeded', population: 6, generations: 2, weight: [0, 1.5], initial: ['sources', 'uniform'] });
    const runsDir = path.join(dir, 'runs-seeded');
    const { done } = await search({ spaceFile, runsDir });
    expect(done.status).toBe('finished');
    const results = await withStore(runsDir, 'seeded', (s) => s.results());
    const first = [...results].sort((a, b) => a.candidateId - b.candidateId).slice(0, 3);
    const want = [await expectedScore(1, 0), await expectedScore(0, 1), await expectedScore(1, 1)];
    expect(first).toHaveLength(3);
    first.forEach((r, i) => expect(r.scores['closeness']?.value).toBeCloseTo(want[i] ?? Number.NaN, 5));
  });

  it('evaluates identical recipes once (store dedupe by recipe hash)', async () => {
    // A zero-width weight range: every genome decodes to the same config.
    const spaceFile = await writeSpace(family, { name: 'one-recipe', kind: 'cmaes', population: 4, generations: 2, weight: [0.5, 0.5], evaluatorOptions: { log: path.join(dir, 'log-one') } });
    const runsDir = path.join(dir, 'runs-one');
    const { done } = await search({ spaceFile, runsDir });
    expect(done.candidates).toBe(1);
    expect(logLines(path.join(dir, 'log-one')).filter((l) => l.startsWith('start'))).toHaveLength(1);
    const summaries = await withStore(runsDir, 'one-recipe', (s) => s.generationSummaries());
    expect(summaries.map((s) => [s.slots, s.evaluations, s.reused])).toEqual([
      [4, 1, 3],
      [4, 0, 4],
    ]);
  });

  it('keeps the Pareto front of a minimized and a maximized objective (nsga2)', async () => {
    const spaceFile = await writeSpace(family, { name: 'two-objectives', kind: 'nsga2', population: 6, generations: 2, heft: true });
    const runsDir = path.join(dir, 'runs-two');
    const { done } = await search({ spaceFile, runsDir });
    const results = await withStore(runsDir, 'two-objectives', (s) => s.results());
    // Brute force: closeness up, heft (the weight sum) down.
    const point = (r: (typeof results)[number]): [number, number] => [r.scores.closeness?.value ?? 0, r.scores.heft?.value ?? 0];
    const dominated = (a: [number, number], b: [number, number]): boolean => b[0] >= a[0] && b[1] <= a[1] && (b[0] > a[0] || b[1] < a[1]);
    const front = results.filter((r) => !results.some((q) => dominated(point(r), point(q)))).map((r) => r.candidateId);
    expect([...done.front].sort((a, b) => a - b)).toEqual(front.sort((a, b) => a - b));
    expect(front.length).toBeGreaterThan(1);
    // Displayed best first on the first objective.
    const closeness = done.front.map((id) => results.find((r) => r.candidateId === id)?.scores.closeness?.value ?? 0);
    expect(closeness).toEqual([...closeness].sort((a, b) => b - a));
  });

  it('records a candidate that scores NaN as failed, tells it as the worst, and keeps going', async () => {
    const spaceFile = await writeSpace(family, { name: 'failing', population: 6, generations: 2, evaluatorOptions: { failAbove: 0.5 } });
    const runsDir = path.join(dir, 'runs-failing');
    const { done, events } = await search({ spaceFile, runsDir });
    expect(done.status).toBe('finished');
    const candidates = await withStore(runsDir, 'failing', (s) => s.candidates());
    const failed = candidates.filter((c) => c.status === 'failed');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length + done.evaluations).toBe(candidates.length);
    for (const c of failed) {
      expect((c.genome as { continuous: number[] }).continuous[0]).toBeGreaterThan(0.5);
      expect(c.error).toMatch(/above 0\.5/);
    }
    expect(done.front.every((id) => !failed.some((f) => f.id === id))).toBe(true);
    expect(events.filter((e) => e.event === 'candidate' && e.status === 'failed')).toHaveLength(failed.length);
  });

  it('records a recipe the planner refuses as failed, with the plan error, without evaluating it', async () => {
    // TIES keeps int(density · numel) entries: 0 for a 16-element norm at density ≤ 0.05.
    const log = path.join(dir, 'log-refused');
    const spaceFile = await writeSpace(family, { name: 'refused', methods: ['ties'], density: [0.01, 0.05], population: 3, generations: 1, elitism: 1, evaluatorOptions: { log } });
    const runsDir = path.join(dir, 'runs-refused');
    const { done } = await search({ spaceFile, runsDir });
    expect(done).toMatchObject({ status: 'finished', candidates: 3, evaluations: 0, failures: 3, front: [] });
    const candidates = await withStore(runsDir, 'refused', (s) => s.candidates());
    for (const c of candidates) expect(c.error).toMatch(/density/i);
    expect(logLines(log)).toEqual([]);
  });

  it('refuses to continue a run whose model files changed under the same paths, naming them; --force records the new ones', async () => {
    const fam = await writeFamily(path.join(dir, 'family-fingerprint'));
    const spaceFile = await writeSpace(fam, { name: 'fingerprint', population: 3, generations: 1 });
    const runsDir = path.join(dir, 'runs-fingerprint');
    expect((await search({ spaceFile, runsDir })).done).toMatchObject({ status: 'finished' });
    // A retrained fine-tune: same path, same shapes, other values (here: the last byte of its last tensor).
    const file = path.join(fam.dir, 'ft1', 'model.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x40;
    await writeFile(file, bytes);
    const changed = search({ spaceFile, runsDir, generations: 2 });
    await expect(changed).rejects.toMatchObject({ code: 'MODELS_CHANGED' });
    await expect(changed).rejects.toThrow(/models changed since run 'fingerprint' was started: .*ft1 /);
    await expect(search({ run: 'fingerprint', runsDir, resume: true, generations: 2 })).rejects.toMatchObject({ code: 'MODELS_CHANGED' });
    expect((await search({ spaceFile, runsDir, generations: 2, force: true })).done).toMatchObject({ status: 'finished' });
    // The new fingerprints are the run's now: continuing again needs no --force.
    expect((await search({ spaceFile, runsDir, generations: 3 })).done).toMatchObject({ status: 'finished' });
  });

  it('resumes a run whose fingerprints were recorded in format 1 (head and tail) when the models are unchanged, and records format 2', async () => {
    const fam = await writeFamily(path.join(dir, 'family-fingerprint-v1'));
    const spaceFile = await writeSpace(fam, { name: 'fingerprint-v1', population: 3, generations: 1 });
    const runsDir = path.join(dir, 'runs-fingerprint-v1');
    expect((await search({ spaceFile, runsDir })).done).toMatchObject({ status: 'finished' });
    const recorded = await withStore(runsDir, 'fingerprint-v1', async (s) => (await s.events()).filter((e) => e.kind === 'note' && (e.data as { setting?: string } | null)?.setting === 'models').at(-1)?.data as { fingerprints?: Record<string, string> } | null | undefined);
    const refs = Object.keys(recorded?.fingerprints ?? {});
    expect(refs.map((r) => path.basename(r))).toEqual(['base', 'ft1', 'ft2']);
    const v1 = await modelFingerprints(refs, () => 1);
    const writable = openSqliteRunStore(path.join(runsDir, 'fingerprint-v1', 'run.db'));
    try {
      await writable.appendEvent('note', 'model fingerprints recorded', modelsNote(v1));
    } finally {
      await writable.close();
    }
    expect((await search({ spaceFile, runsDir, generations: 2 })).done).toMatchObject({ status: 'finished' });
    const notes = await withStore(runsDir, 'fingerprint-v1', async (s) => (await s.events()).filter((e) => e.kind === 'note' && (e.data as { setting?: string } | null)?.setting === 'models'));
    expect(notes.map((e) => e.message)).toEqual(['model fingerprints recorded', 'model fingerprints recorded', 'model fingerprints recorded (format 2)']);
    const last = notes.at(-1)?.data as { fingerprints?: Record<string, string> } | null | undefined;
    expect(last?.fingerprints).toEqual(await modelFingerprints(refs));
    expect(Object.values(last?.fingerprints ?? {}).every((f) => f.startsWith('v2:'))).toBe(true);
  });

  it('stops on an evaluator that throws, keeps the candidate unfinished, and resumes once fixed (--force)', async () => {
    const broken = await writeSpace(family, { name: 'broken', population: 4, generations: 2, evaluatorOptions: { throwOn: 2 } });
    const runsDir = path.join(dir, 'runs-broken');
    await expect(search({ spaceFile: broken, runsDir })).rejects.toMatchObject({ code: 'EVALUATOR_FAILED' });
    const [status, c2] = await withStore(runsDir, 'broken', async (s) => [(await s.getRun())?.status, await s.candidate(2)] as const);
    expect(status).toBe('failed');
    expect(c2?.status).toBe('running');
    // The fixed evaluator options change the space: refused without --force.
    const fixed = await writeSpace(family, { name: 'broken', population: 4, generations: 2 });
    await expect(search({ spaceFile: fixed, runsDir })).rejects.toMatchObject({ code: 'SPACE_CHANGED' });
    const { done } = await search({ spaceFile: fixed, runsDir, force: true });
    expect(done.status).toBe('finished');
    expect(await withStore(runsDir, 'broken', async (s) => (await s.candidate(2))?.status)).toBe('done');
    // Continuing again with the fixed file needs no --force (the change was recorded); `evo resume` uses it too.
    const more = await search({ spaceFile: fixed, runsDir, generations: 3 });
    expect(more.done.generations).toBe(3);
    const resumed = await search({ run: 'broken', runsDir, generations: 4 });
    expect(resumed.done.generations).toBe(4);
  });

  it('refuses changed objectives even with --force, and a --resume of a run that does not exist', async () => {
    const spaceFile = await writeSpace(family, { name: 'objectives', population: 4, generations: 1 });
    const runsDir = path.join(dir, 'runs-objectives');
    await expect(search({ spaceFile, runsDir, resume: true })).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    await search({ spaceFile, runsDir });
    const text = readFileSync(spaceFile, 'utf8').replace('name: closeness', 'name: nearness');
    await writeFile(spaceFile, text);
    await expect(search({ spaceFile, runsDir, force: true })).rejects.toMatchObject({ code: 'OBJECTIVES_CHANGED' });
  });

  it('keeps candidate models with keepCandidates, and stops at max_evaluations', async () => {
    const spaceFile = await writeSpace(family, { name: 'kept', population: 4, generations: 5, maxEvaluations: 6 });
    const runsDir = path.join(dir, 'runs-kept');
    const { done } = await search({ spaceFile, runsDir, keepCandidates: true });
    expect(done.reason).toBe('max_evaluations');
    expect(done.candidates).toBe(6);
    const kept = readdirSync(path.join(runsDir, 'kept', 'candidates')).sort((a, b) => Number(a) - Number(b));
    expect(kept).toEqual(['1', '2', '3', '4', '5', '6']);
    const header = await readSafetensorsHeader(path.join(runsDir, 'kept', 'candidates', '1', 'model.safetensors'));
    expect(header.tensors.size).toBe(3 + 9 * family.numLayers);
  });
});
