import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wilsonInterval } from '../../src/eval/stats.js';
import type { GenerationEvent, SearchEvent } from '../../src/search/run-events.js';
import { runSearch } from '../../src/search/runner.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';
import { withRunStore, writeFamily, writeSpace, type Family } from './runner-fixtures.js';

/**
 * Successive halving inside the search runner, on tiny real merges scored by a raceable test
 * evaluator whose per-item outcomes are seeded (runner-fixtures.ts, raced.mjs): the same search
 * with and without racing, item counts taken from the evaluator's own log, and the true accuracy
 * p of each run's chosen best compared.
 */

let dir = '';
let family: Family;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-racing-'));
  family = await writeFamily(path.join(dir, 'family'));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Items the evaluator scored, from its `end <hash> <first> <count>` lines. */
function itemsLogged(file: string): number {
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('end '))
    .reduce((a, l) => a + Number(l.split(' ')[3]), 0);
}

const COMMON = { population: 8, generations: 4, seed: 7, methods: ['task_arithmetic'], elitism: 2 };
const RACED = { items: 400, limit: 96, sharpness: 100 };

interface AccDetails {
  readonly evaluators: { readonly acc: { readonly p: number } };
  readonly race?: { readonly rung: number; readonly rungs: number; readonly stopped: boolean; readonly items: number; readonly fullItems: number };
}

describe('evo search with racing', () => {
  it('scores every candidate on the same first slice, continues the better part, and costs a fraction of a full pass', async () => {
    const logRaced = path.join(dir, 'log-raced');
    const logFull = path.join(dir, 'log-full');
    const racedSpace = await writeSpace(family, { ...COMMON, name: 'raced', evaluatorOptions: { log: logRaced }, raced: { ...RACED, racing: '{min_first_rung_items: 12}' } });
    const fullSpace = await writeSpace(family, { ...COMMON, name: 'full', evaluatorOptions: { log: logFull }, raced: { ...RACED, racing: null } });
    const runs = path.join(dir, 'runs');
    const events: SearchEvent[] = [];
    await runSearch({ spaceFile: racedSpace, runsDir: runs, jobs: 1, onEvent: (e) => events.push(e) });
    await runSearch({ spaceFile: fullSpace, runsDir: runs, jobs: 1 });
    const races = events.filter((e): e is GenerationEvent => e.event === 'generation').map((g) => g.race);
    expect(races).toHaveLength(COMMON.generations);

    await withRunStore(runs, 'raced', async (s) => {
      let told = 0;
      for (let g = 0; g < COMMON.generations; g++) {
        const race = races[g];
        if (race === null || race === undefined) throw new Error(`generation ${g} was not raced`);
        // 8 new candidates in generation 0 (then 6: the GA carries 2 elites), halved twice: 24, 48, 96 items.
        const fresh = [...new Map((await s.candidatesOfGeneration(g)).filter((x) => x.candidate.generation === g).map((x) => [x.candidate.id, x])).values()];
        expect(race.rungs.map((r) => r.items)).toEqual([24, 48, 96]);
        expect(race.fullPassItems).toBe(fresh.length * 96);
        let spent = 0;
        const firstSlices = new Set<string>();
        const rung0 = new Map<number, number>();
        for (const x of fresh) {
          const rungs = await s.rungResults(x.candidate.id);
          expect(rungs.length).toBeGreaterThanOrEqual(1);
          firstSlices.add(JSON.stringify(rungs[0]?.items.map((i) => i.itemId)));
          rung0.set(x.candidate.id, rungs[0]?.scores.acc?.value ?? Number.NaN);
          spent += rungs.reduce((a, r) => a + r.itemsUsed, 0);
          // The result is the estimate over every rung's items, with its Wilson interval and n.
          const result = x.result;
          const items = await s.itemResults(x.candidate.id);
          expect(items.map((i) => i.itemId)).toEqual(rungs.flatMap((r) => r.items.map((i) => i.itemId)));
          const right = items.filter((i) => i.correct === true).length;
          const [lo, hi] = wilsonInterval(right, items.length);
          expect(result?.scores.acc).toMatchObject({ value: right / items.length, n: items.length });
          expect(result?.scores.acc?.ciLow).toBeCloseTo(lo, 12);
          expect(result?.scores.acc?.ciHigh).toBeCloseTo(hi, 12);
          expect([24, 48, 96]).toContain(items.length);
          const race = (result?.details as unknown as AccDetails | undefined)?.race;
          expect(race).toMatchObject({ rung: rungs.length - 1, rungs: 3, stopped: rungs.length < 3, items: items.length, fullItems: 96 });
        }
        // Same items for every candidate: one first slice, the seeded order's first 24.
        expect(firstSlices.size).toBe(1);
        expect(spent).toBe(race.itemsEvaluated);
        // The better part continued: whoever went on had a rung-0 estimate at least the best stopped one's.
        const went = fresh.filter((x) => (x.result?.scores.acc?.n ?? 0) > 24).map((x) => rung0.get(x.candidate.id) ?? 0);
        const stopped = fresh.filter((x) => x.result?.scores.acc?.n === 24).map((x) => rung0.get(x.candidate.id) ?? 0);
        expect(went.length).toBeGreaterThanOrEqual(race.rungs[1]?.candidates ?? 0);
        expect(Math.min(...went)).toBeGreaterThanOrEqual(Math.max(...stopped));
        told += fresh.length;
      }
      // The optimizer was told each candidate's estimate and its standard error (the last generation's population).
      const state = (await s.latestOptimizerState())?.optimizerState as { population: { objectives: number[]; uncertainty?: number[] }[] };
      const results = await s.results();
      for (const m of state.population) {
        const match = results.find((r) => r.scores.acc?.value === m.objectives[0] && r.scores.acc?.stderr === m.uncertainty?.[0]);
        expect(match, JSON.stringify(m)).toBeDefined();
      }
      expect(told).toBe(8 + 6 * 3);
    });

    // The saving, counted by the evaluator itself, and whether the chosen best agrees.
    const racedItems = itemsLogged(logRaced);
    const fullItems = itemsLogged(logFull);
    expect(racedItems).toBe(races.reduce((a, r) => a + (r?.itemsEvaluated ?? 0), 0));
    expect(fullItems).toBe(races.reduce((a, r) => a + (r?.fullPassItems ?? 0), 0));
    const pOf = (r: { details: unknown } | null | undefined): number => (r?.details as unknown as AccDetails).evaluators.acc.p;
    const summary = (name: string) =>
      withRunStore(runs, name, async (s) => {
        const [best] = await s.best('acc');
        // Generation 0 asks the same 8 genomes in both runs (nothing was told yet): its best can be compared directly.
        const gen0 = (await s.candidatesOfGeneration(0)).filter((x) => x.result !== null);
        const gen0Best = [...gen0].sort((a, b) => (b.result?.scores.acc?.value ?? 0) - (a.result?.scores.acc?.value ?? 0) || a.candidate.id - b.candidate.id)[0];
        const ps = (await s.results()).map(pOf);
        const finalists = (await s.results()).filter((r) => r.scores.acc?.n === RACED.limit).sort((a, b) => (b.scores.acc?.value ?? 0) - (a.scores.acc?.value ?? 0));
        return { bestN: best?.result?.scores.acc?.n ?? 0, finalistP: pOf(finalists[0]), best: best?.candidate.hash, bestP: pOf(best?.result), maxP: Math.max(...ps), gen0Best: gen0Best?.candidate.hash, gen0BestP: pOf(gen0Best?.result), gen0MaxP: Math.max(...gen0.map((x) => pOf(x.result))) };
      });
    const raced = await summary('raced');
    const full = await summary('full');
    console.log(
      `racing: ${racedItems} items vs full pass ${fullItems} (${((100 * racedItems) / fullItems).toFixed(1)}%) over ${COMMON.generations} generations of ${COMMON.population}; ` +
        `generation 0 best: raced p=${raced.gen0BestP.toFixed(3)}, full p=${full.gen0BestP.toFixed(3)} (true best p=${full.gen0MaxP.toFixed(3)}), same=${String(raced.gen0Best === full.gen0Best)}; ` +
        `run best (by value): raced p=${raced.bestP.toFixed(3)} n=${raced.bestN}, full p=${full.bestP.toFixed(3)}; raced best of those on the full limit p=${raced.finalistP.toFixed(3)}; ` +
        `best p ever evaluated: raced ${raced.maxP.toFixed(3)}, full ${full.maxP.toFixed(3)}`,
    );
    expect(racedItems / fullItems).toBeLessThan(0.6);
    expect(raced.gen0Best).toBe(full.gen0Best);
    // On this seed both runs also end with the same best recipe (all runs here are deterministic).
    expect(raced.best).toBe(full.best);
  }, 300_000);

  it('refuses, before any output, to race an evaluator that cannot enumerate its items', async () => {
    const file = await writeSpace(family, { ...COMMON, name: 'unraceable', raced: { ...RACED, racing: '{}' } });
    await writeFile(file, (await readFile(file, 'utf8')).replace('./raced.mjs', './closeness.mjs'));
    const runs = path.join(dir, 'runs-unraceable');
    await expect(runSearch({ spaceFile: file, runsDir: runs, jobs: 1 })).rejects.toMatchObject({
      code: 'NOT_RACEABLE',
      message: expect.stringMatching(/^objectives\[0\]\.racing: the evaluator of objective acc does not enumerate its items/),
    });
    expect(existsSync(path.join(runs, 'unraceable'))).toBe(false);
  });

  it('races a minimized objective toward its lowest estimates', async () => {
    const file = await writeSpace(family, { ...COMMON, generations: 1, name: 'minimized', raced: { ...RACED, racing: '{min_first_rung_items: 12}' } });
    await writeFile(file, (await readFile(file, 'utf8')).replace(`limit: ${RACED.limit}`, `limit: ${RACED.limit}, maximize: false`));
    const runs = path.join(dir, 'runs-minimized');
    await runSearch({ spaceFile: file, runsDir: runs, jobs: 1 });
    await withRunStore(runs, 'minimized', async (s) => {
      const fresh = (await s.candidatesOfGeneration(0)).map((x) => x.result);
      const rung0 = async (id: number): Promise<number> => (await s.rungResults(id))[0]?.scores.acc?.value ?? Number.NaN;
      const went: number[] = [];
      const stopped: number[] = [];
      for (const r of fresh) (r?.scores.acc?.n === 24 ? stopped : went).push(await rung0(r?.candidateId ?? 0));
      expect(stopped.length).toBeGreaterThanOrEqual(1);
      // The lower part continued: every survivor's first-rung estimate is at most the lowest stopped one's.
      expect(Math.max(...went)).toBeLessThanOrEqual(Math.min(...stopped));
      const [best] = await s.best('acc');
      expect(best?.result?.scores.acc?.value).toBe(Math.min(...fresh.map((r) => r?.scores.acc?.value ?? 1)));
    });
  }, 300_000);
});
