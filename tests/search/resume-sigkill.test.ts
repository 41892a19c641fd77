import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import type { RunStore } from '../../src/store/types.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';
import { startSearch } from './child-search.js';
import { runSnapshot, writeFamily, writeSpace, type Family } from './runner-fixtures.js';

/**
 * `evo search` (the built CLI, bin/evo.js) in a child process, killed with SIGKILL again and
 * again: inside a merge (on a candidate's 'build' event, while its merge runs), inside an
 * evaluation (when the test evaluator's start marker appears; it then sleeps), just after a
 * result was committed, and just after a generation was recorded. Each time the store must hold
 * only whole records; the last child resumes to the end, and the run must equal one never
 * interrupted: same candidates, genomes, configs, scores, fronts and optimizer state, and no
 * finished evaluation run again.
 */

let dir = '';
let family: Family;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-resume-kill-'));
  family = await writeFamily(path.join(dir, 'family'));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function withStore<T>(runsDir: string, fn: (store: RunStore) => Promise<T>): Promise<T> {
  const store = openSqliteRunStore(path.join(runsDir, 'killed', 'run.db'), { readonly: true });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The names in a directory, or none when it does not exist (the child creates and removes them). */
function listDir(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

/** The id of a candidate (matching `which`) whose weights are staged under a temp name, or null. */
function staging(candidatesDir: string, which: (id: number) => boolean): number | null {
  for (const name of listDir(candidatesDir)) {
    const id = Number(name);
    if (!/^\d+$/.test(name) || !which(id)) continue;
    const files = listDir(path.join(candidatesDir, name));
    if (files.some((f) => f.startsWith('.model.safetensors.') && f.endsWith('.tmp'))) return id;
  }
  return null;
}

function endCounts(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  if (!existsSync(file)) return counts;
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    const [kind, hash] = l.split(' ');
    if (kind === 'end' && hash !== undefined) counts.set(hash, (counts.get(hash) ?? 0) + 1);
  }
  return counts;
}

describe('evo search under SIGKILL', () => {
  it('resumes after kills inside merges and evaluations to the uninterrupted run', async () => {
    const markers = path.join(dir, 'markers');
    await mkdir(markers);
    const common = { population: 4, generations: 3, seed: 11, methods: ['dare_ties'], mergeSeed: 5 };
    // The same space under another name: the uninterrupted reference.
    const refSpace = await writeSpace(family, { ...common, name: 'killed', evaluatorOptions: { sleepMs: 150, log: path.join(dir, 'log-ref') } });
    const refRuns = path.join(dir, 'runs-ref');
    const ref = startSearch([refSpace, '--runs-dir', refRuns], dir);
    const refExit = await ref.exit;
    expect(refExit.code, refExit.stderr).toBe(0);
    const reference = await withStore(refRuns, runSnapshot);
    const refCandidates = (reference as { candidates: unknown[] }).candidates.length;
    expect(refCandidates).toBeGreaterThanOrEqual(8);
    expect([...endCounts(path.join(dir, 'log-ref')).values()]).toEqual(Array(refCandidates).fill(1));

    const log = path.join(dir, 'log-killed');
    const space = await writeSpace(family, { ...common, name: 'killed', evaluatorOptions: { sleepMs: 150, log, markerDir: markers } });
    const runs = path.join(dir, 'runs-killed');
    const candidatesDir = path.join(runs, 'killed', 'candidates');
    const markersNow = (): Set<string> => new Set(readdirSync(markers));
    let kills = 0;
    let mergeKillsInside = 0;

    // 1. Inside the very first merge: candidate 1's output files are staged, not yet committed.
    {
      const c = startSearch([space, '--runs-dir', runs], dir);
      await c.killWhen(() => false, () => staging(candidatesDir, (id) => id === 1) !== null);
      await c.exit;
      kills++;
      expect(await withStore(runs, async (s) => (await s.candidate(1))?.status)).toBe('running');
      if (staging(candidatesDir, (id) => id === 1) !== null && !existsSync(path.join(candidatesDir, '1', 'model.safetensors'))) mergeKillsInside++;
    }
    // 2. Inside an evaluation (candidate 2's evaluator is sleeping; candidate 3's merge runs meanwhile).
    {
      const before = markersNow();
      const c = startSearch([space, '--runs-dir', runs], dir);
      await c.killWhen(() => false, () => readdirSync(markers).some((m) => !before.has(m) && m === 'eval-2'));
      await c.exit;
      kills++;
      const [c2, r2] = await withStore(runs, async (s) => [await s.candidate(2), await s.result(2)] as const);
      expect(c2?.status).toBe('running');
      expect(r2).toBeUndefined();
    }
    // 3. Just after a result was committed.
    {
      const c = startSearch([space, '--runs-dir', runs], dir);
      const why = await c.killWhen((e) => e.event === 'candidate' && e.id === 3);
      expect(why).toBe('candidate 3');
      await c.exit;
      kills++;
      expect(await withStore(runs, async (s) => (await s.candidate(3))?.status)).toBe('done');
    }
    // 4. Inside a merge of generation 1 (whose candidates have ids above generation 0's four).
    {
      const c = startSearch([space, '--runs-dir', runs], dir);
      let victim: number | null = null;
      await c.killWhen(
        () => false,
        () => (victim = staging(candidatesDir, (id) => id > 4)) !== null,
      );
      await c.exit;
      kills++;
      expect((await withStore(runs, (s) => s.generationSummaries())).map((g) => g.generation)).toEqual([0]);
      const id = victim ?? 0;
      expect(await withStore(runs, async (s) => (await s.candidate(id))?.status)).toBe('running');
      if (staging(candidatesDir, (x) => x === id) !== null && !existsSync(path.join(candidatesDir, String(id), 'model.safetensors'))) mergeKillsInside++;
    }
    // 5. Inside an evaluation of generation 1.
    {
      const before = markersNow();
      const c = startSearch([space, '--runs-dir', runs], dir);
      let victim = '';
      await c.killWhen(
        () => false,
        () => {
          const fresh = readdirSync(markers).filter((m) => !before.has(m));
          victim = fresh[0] ?? '';
          return fresh.length > 0;
        },
      );
      await c.exit;
      kills++;
      const id = Number(victim.replace('eval-', ''));
      expect(await withStore(runs, (s) => s.result(id))).toBeUndefined();
    }
    // The merge kills landed while the materializer had staged its files and not committed them
    // (checked after the kill; a very late kill could miss that window, hence at least one of two).
    console.log(`merge kills inside the materializer: ${mergeKillsInside} of 2`);
    expect(mergeKillsInside).toBeGreaterThanOrEqual(1);

    // Every kill left whole records: each done candidate has its result, each recorded generation
    // only finished slots.
    await withStore(runs, async (s) => {
      for (const c of await s.candidates()) expect((await s.result(c.id)) !== undefined).toBe(c.status === 'done');
      for (const g of await s.generationSummaries()) {
        for (const slot of await s.candidatesOfGeneration(g.generation)) expect(['done', 'failed']).toContain(slot.candidate.status);
      }
    });

    // 6. SIGINT inside an evaluation: a clean stop (exit 1, one line), the run marked stopped.
    {
      const c = startSearch([space, '--runs-dir', runs], dir);
      await c.killWhen((e) => e.event === 'evaluate', undefined, 'SIGINT');
      const x = await c.exit;
      expect(x.code).toBe(1);
      expect(x.stderr).toMatch(/^evo: search interrupted; continue it with: evo resume killed$/m);
      expect(await withStore(runs, async (s) => (await s.getRun())?.status)).toBe('stopped');
    }

    // 7. The last child runs to the end.
    const last = startSearch([space, '--runs-dir', runs, '--resume'], dir);
    const lastExit = await last.exit;
    expect(lastExit.code, lastExit.stderr).toBe(0);
    expect(last.events.at(-1)).toMatchObject({ event: 'run', status: 'finished' });
    expect(await withStore(runs, runSnapshot)).toEqual(reference);
    expect(await withStore(runs, async (s) => (await s.getRun())?.status)).toBe('finished');

    // No finished evaluation was repeated: an evaluation can finish twice only when a kill
    // landed between its end and the commit of its result, at most once per kill.
    const ends = endCounts(log);
    expect(ends.size).toBe(refCandidates);
    const repeats = [...ends.values()].reduce((a, n) => a + (n - 1), 0);
    expect(repeats).toBeLessThanOrEqual(kills);
    expect(readdirSync(candidatesDir)).toEqual([]);
    const interrupted = await withStore(runs, async (s) => (await s.events()).filter((e) => e.kind === 'interrupted').length);
    expect(interrupted).toBe(kills);
  });
});
