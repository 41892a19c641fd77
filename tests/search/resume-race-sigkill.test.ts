import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunStore } from '../../src/store/types.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';
import { startSearch } from './child-search.js';
import { runSnapshot, withRunStore, writeFamily, writeSpace, type Family } from './runner-fixtures.js';

/**
 * A raced `evo search` (the built CLI in a child process) killed with SIGKILL mid-race: inside a
 * first-rung evaluation, right after the first cut (some candidates recorded done, the others
 * still racing), and inside a later rung's evaluation. The last child resumes to the end; the
 * run must equal one never interrupted, rungs included, and no slice whose rung was recorded is
 * scored again (a slice can be scored twice only when a kill lands between its end and its commit).
 */

let dir = '';
let family: Family;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-race-kill-'));
  family = await writeFamily(path.join(dir, 'family'));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The run plus every candidate's rungs (items and scores). */
async function raceSnapshot(store: RunStore): Promise<unknown> {
  const rungs = await Promise.all(
    (await store.candidates()).map(async (c) => (await store.rungResults(c.id)).map((r) => ({ id: c.id, rung: r.rung, scores: r.scores, itemsUsed: r.itemsUsed, items: r.items }))),
  );
  return { run: await runSnapshot(store), rungs };
}

/** How many times each slice (`<hash> <first item> <count>`) was scored to its end. */
function sliceEnds(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  if (!existsSync(file)) return counts;
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l.startsWith('end ')) continue;
    const key = l.slice(4);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

describe('raced evo search under SIGKILL', () => {
  it('resumes mid-race without scoring recorded slices again, to the uninterrupted run', async () => {
    const markers = path.join(dir, 'markers');
    await mkdir(markers);
    const common = { population: 6, generations: 2, seed: 5, methods: ['task_arithmetic'], elitism: 2, name: 'killed' };
    const raced = { items: 200, limit: 48, sharpness: 100, racing: '{min_first_rung_items: 8}' };
    const refSpace = await writeSpace(family, { ...common, evaluatorOptions: { sleepMs: 120, log: path.join(dir, 'log-ref') }, raced });
    const refRuns = path.join(dir, 'runs-ref');
    const ref = startSearch([refSpace, '--runs-dir', refRuns], dir);
    const refExit = await ref.exit;
    expect(refExit.code, refExit.stderr).toBe(0);
    const reference = await withRunStore(refRuns, 'killed', raceSnapshot);
    const refSlices = sliceEnds(path.join(dir, 'log-ref'));
    // Generation 0: 6 → 3 → 2 candidates over 12, 24, 48 items; generation 1: 4 new (2 elites kept) → 2 over 24, 48.
    const gens = ref.events.filter((e) => e.event === 'generation').map((e) => e.race as { rungs: { items: number }[] });
    expect(gens.map((g) => g.rungs.map((r) => r.items))).toEqual([
      [12, 24, 48],
      [24, 48],
    ]);

    const log = path.join(dir, 'log-killed');
    const space = await writeSpace(family, { ...common, evaluatorOptions: { sleepMs: 120, log, markerDir: markers }, raced });
    const runs = path.join(dir, 'runs-killed');
    const markersNow = (): string[] => readdirSync(markers);
    const rungCounts = (): Promise<number[]> => withRunStore(runs, 'killed', async (s) => Promise.all((await s.candidates()).map(async (c) => (await s.rungResults(c.id)).length)));
    let kills = 0;

    // 1. Inside candidate 3's first-rung evaluation (candidates 1 and 2 have rung 0 recorded).
    {
      const c = startSearch([space, '--runs-dir', runs], dir);
      await c.killWhen(() => false, () => markersNow().some((m) => m.startsWith('eval-3-')));
      await c.exit;
      kills++;
      expect((await rungCounts()).slice(0, 3)).toEqual([1, 1, 0]);
    }
    // 2. Right after a cut: the first candidate recorded done in this child left the race early.
    {
      const c = startSearch([space, '--runs-dir', runs], dir);
      await c.killWhen((e) => e.event === 'candidate' && e.status === 'done');
      await c.exit;
      kills++;
      await withRunStore(runs, 'killed', async (s) => {
        const done = (await s.candidates()).filter((x) => x.status === 'done');
        expect(done.length).toBeGreaterThanOrEqual(1);
        for (const d of done) {
          const n = (await s.rungResults(d.id)).reduce((a, r) => a + r.items.length, 0);
          expect((await s.result(d.id))?.scores.acc?.n).toBe(n);
          expect([12, 24]).toContain(n);
        }
        // Others are still racing: running, with their first rung(s) recorded and no result.
        const racing = (await s.candidates()).filter((x) => x.generation === 0 && x.status === 'running');
        expect(racing.length).toBeGreaterThanOrEqual(2);
        for (const r of racing) expect((await s.rungResults(r.id)).length).toBeGreaterThanOrEqual(1);
      });
    }
    // 3. Inside a later rung: a candidate that has rungs recorded starts its next evaluation.
    {
      const before = new Set(markersNow());
      const c = startSearch([space, '--runs-dir', runs], dir);
      let victim = 0;
      await c.killWhen(
        () => false,
        () => {
          const again = markersNow().find((m) => !before.has(m) && [...before].some((b) => b.split('-')[1] === m.split('-')[1]));
          victim = Number(again?.split('-')[1] ?? 0);
          return again !== undefined;
        },
      );
      await c.exit;
      kills++;
      await withRunStore(runs, 'killed', async (s) => {
        expect((await s.candidate(victim))?.status).toBe('running');
        expect((await s.rungResults(victim)).length).toBeGreaterThanOrEqual(1);
        expect(await s.result(victim)).toBeUndefined();
      });
    }
    // The last child runs to the end.
    const last = startSearch([space, '--runs-dir', runs, '--resume'], dir);
    const lastExit = await last.exit;
    expect(lastExit.code, lastExit.stderr).toBe(0);
    expect(last.events.at(-1)).toMatchObject({ event: 'run', status: 'finished' });
    expect(await withRunStore(runs, 'killed', raceSnapshot)).toEqual(reference);

    // Every slice of the reference was scored; none twice, except at most one per kill (a kill
    // between a slice's end and its rung's commit).
    const ends = sliceEnds(log);
    expect([...ends.keys()].sort()).toEqual([...refSlices.keys()].sort());
    const repeats = [...ends.values()].reduce((a, n) => a + (n - 1), 0);
    console.log(`raced resume: ${kills} kills, ${ends.size} slices, ${repeats} scored twice`);
    expect(repeats).toBeLessThanOrEqual(kills);
    expect(readdirSync(path.join(runs, 'killed', 'candidates'))).toEqual([]);
  }, 300_000);
});
