import { describe, expect, it } from 'vitest';
import { plannedCost, raceGeneration, resolveRacingOptions, rungSchedule, selectSurvivors } from '../../src/eval/racing.js';
import { simulateRacing } from '../../src/eval/racing-simulation.js';
import { wilsonInterval } from '../../src/eval/stats.js';
import type { ItemResult } from '../../src/eval/types.js';

describe('rung schedule', () => {
  it('halves the field and doubles the items per rung up to the full limit', () => {
    // 16 → 8 → 4 → 2 candidates; 200/8, 200/4, 200/2, 200 items.
    expect(rungSchedule(200, 16)).toEqual([
      { items: 25, candidates: 16 },
      { items: 50, candidates: 8 },
      { items: 100, candidates: 4 },
      { items: 200, candidates: 2 },
    ]);
    // 16×25 + 8×25 + 4×50 + 2×100 = 1000 of 3200.
    expect(plannedCost(rungSchedule(200, 16), 16)).toEqual({ items: 1000, fullPass: 3200 });
  });

  it('never makes a first rung shorter than minFirstRungItems', () => {
    expect(rungSchedule(100, 32).map((r) => r.items)).toEqual([25, 50, 100]);
    expect(rungSchedule(100, 32, { minFirstRungItems: 5 }).map((r) => r.items)).toEqual([7, 13, 25, 50, 100]);
    expect(rungSchedule(10, 16).map((r) => r.items)).toEqual([10]);
    expect(rungSchedule(90, 9, { eta: 3, minSurvivors: 1, minFirstRungItems: 10 })).toEqual([
      { items: 10, candidates: 9 },
      { items: 30, candidates: 3 },
      { items: 90, candidates: 1 },
    ]);
  });

  it('rejects bad options, naming them', () => {
    expect(() => resolveRacingOptions({ eta: 1 })).toThrow(/racing\.eta/);
    expect(() => resolveRacingOptions({ minSurvivors: 0 })).toThrow(/racing\.minSurvivors/);
    expect(() => rungSchedule(0, 4)).toThrow(expect.objectContaining({ code: 'BAD_RACING_OPTION' }));
  });
});

describe('survivor selection', () => {
  const standing = (index: number, correct: number, n: number) => ({ index, score: correct / n, ci: wilsonInterval(correct, n), n });

  it('halving keeps the best k and anyone tied with the k-th', () => {
    const s = [standing(0, 10, 20), standing(1, 15, 20), standing(2, 12, 20), standing(3, 12, 20), standing(4, 3, 20)];
    expect(selectSurvivors(s, 2, 'halving')).toEqual([1, 2, 3]);
    expect(selectSurvivors(s, 1, 'halving')).toEqual([1]);
    expect(selectSurvivors(s, 9, 'halving')).toEqual([1, 2, 3, 0, 4]);
  });

  it('race drops only candidates whose interval lies below the leader’s', () => {
    // Leader 18/20: Wilson [0.699, 0.972]. 3/20 → [0.052, 0.360] is clearly worse; 12/20 → [0.387, 0.781] is not.
    const s = [standing(0, 18, 20), standing(1, 12, 20), standing(2, 3, 20)];
    expect(selectSurvivors(s, 1, 'race')).toEqual([0, 1]);
    expect(selectSurvivors(s, 3, 'race')).toEqual([0, 1, 2]);
  });
});

describe('raceGeneration', () => {
  it('scores prefixes of one order, spends what the schedule plans, and returns every estimate', async () => {
    const order = Array.from({ length: 40 }, (_, i) => `q${i}`);
    // Candidate c answers item i right when (i * 7 + c * 3) % 10 < c: accuracy grows with c.
    const answer = (c: number, id: string): ItemResult => {
      const i = Number(id.slice(1));
      const correct = (i * 7 + c * 3) % 10 < c;
      return { id, correct, score: correct ? 1 : 0 };
    };
    const asked: { c: number; ids: readonly string[] }[] = [];
    const out = await raceGeneration([1, 2, 5, 8], order, 40, async (c, ids) => {
      asked.push({ c, ids });
      return ids.map((id) => answer(c, id));
    }, { minFirstRungItems: 10 });
    // Four candidates halve once, to the two survivors: 20 items for all, then 20 more for two.
    expect(out.rungs).toEqual([
      { items: 20, candidates: 4 },
      { items: 40, candidates: 2 },
    ]);
    // Accuracies are 10%, 20%, 50%, 80%: candidates 5 and 8 go on to q20..q39.
    expect(asked.filter((a) => a.ids[0] === 'q0').map((a) => a.c)).toEqual([1, 2, 5, 8]);
    expect(asked.filter((a) => a.ids[0] === 'q20').map((a) => a.c)).toEqual([5, 8]);
    expect(out.itemsEvaluated).toBe(4 * 20 + 2 * 20);
    expect(out.fullPassItems).toBe(160);
    const [e1, , e5, e8] = out.entries;
    expect(e1).toMatchObject({ candidate: 1, n: 20, rung: 0, score: 0.1 });
    expect(e8).toMatchObject({ candidate: 8, n: 40, rung: 1, score: 0.8 });
    expect(e5?.items.map((r) => r.id)).toEqual(order);
    for (const e of out.entries) {
      expect(e.ci[0]).toBeLessThanOrEqual(e.score);
      expect(e.ci[1]).toBeGreaterThanOrEqual(e.score);
    }
  });

  it('drops a failed candidate, reports who stops after which rung, and prepares each rung', async () => {
    const order = Array.from({ length: 40 }, (_, i) => `q${i}`);
    // Candidate c is right on item i when i % 10 < c; candidate 9 fails in its first slice.
    const rungsSeen: [number, readonly number[]][] = [];
    const stops: [number, number, number][] = [];
    const out = await raceGeneration(
      [3, 9, 6, 1, 7],
      order,
      40,
      async (c, ids) => (c === 9 ? null : ids.map((id) => ({ id, correct: Number(id.slice(1)) % 10 < c, score: Number(id.slice(1)) % 10 < c ? 1 : 0 }))),
      { minFirstRungItems: 10 },
      {
        onRung: (k, indices) => void rungsSeen.push([k, [...indices]]),
        onStop: (i, k, items) => void stops.push([i, k, items.length]),
      },
    );
    // 5 → 3 → 2 candidates over 10, 20, 40 items.
    expect(out.rungs.map((r) => [r.items, r.candidates])).toEqual([
      [10, 5],
      [20, 3],
      [40, 2],
    ]);
    // Index 1 (candidate 9) failed: it neither survives nor "stops". Rung 0 keeps 7, 6, 3.
    expect(rungsSeen).toEqual([
      [0, [0, 1, 2, 3, 4]],
      [1, [0, 2, 4]],
      [2, [2, 4]],
    ]);
    expect(stops).toEqual([
      [3, 0, 10],
      [0, 1, 20],
      [2, 2, 40],
      [4, 2, 40],
    ]);
    expect(out.entries[1]).toMatchObject({ failed: true, n: 0, rung: 0 });
    expect(out.entries[4]).toMatchObject({ failed: false, n: 40, rung: 2, score: 0.7 });
    expect(out.itemsEvaluated).toBe(4 * 10 + 3 * 10 + 2 * 20);
  });

  it('rejects a slice scorer that answers other items', async () => {
    await expect(raceGeneration([0, 1], ['a', 'b'], 2, async (_, ids) => ids.map((id) => ({ id: `${id}!`, correct: true, score: 1 })))).rejects.toMatchObject({
      code: 'BAD_RACING_OPTION',
    });
  });
});

describe('measured saving on a simulated population with known accuracies', () => {
  // 16 candidates, accuracies 0.30 … 0.60 (the best 0.04 above the runner-up), 200 items each.
  const accuracies = Array.from({ length: 16 }, (_, i) => (i === 15 ? 0.6 : 0.3 + i * 0.0187));

  it('successive halving costs under a third of a full pass and keeps the best most of the time', async () => {
    const s = await simulateRacing({ accuracies, limit: 200, trials: 200, seed: 11 });
    console.log(
      `[racing] halving: ${(s.itemsFraction * 100).toFixed(1)}% of a full pass; best survives ${(s.bestSurvives * 100).toFixed(0)}%, ` +
        `race picks best ${(s.racePicksBest * 100).toFixed(0)}% vs full pass ${(s.fullPassPicksBest * 100).toFixed(0)}%; regret ${s.raceRegret.toFixed(4)} vs ${s.fullPassRegret.toFixed(4)}`,
    );
    // The schedule plans 1000 of 3200 item evaluations; ties at a cut can only add a little.
    expect(s.itemsFraction).toBeGreaterThanOrEqual(1000 / 3200);
    expect(s.itemsFraction).toBeLessThan(0.34);
    expect(s.bestSurvives).toBeGreaterThan(0.7);
    // A race never picks better than the full pass does by more than noise.
    expect(s.racePicksBest).toBeLessThanOrEqual(s.fullPassPicksBest + 0.1);
  });

  it('the race rule spends more and keeps the best more often', async () => {
    const halving = await simulateRacing({ accuracies, limit: 200, trials: 100, seed: 5 });
    const race = await simulateRacing({ accuracies, limit: 200, trials: 100, seed: 5, racing: { rule: 'race' } });
    console.log(`[racing] race rule: ${(race.itemsFraction * 100).toFixed(1)}% of a full pass; best survives ${(race.bestSurvives * 100).toFixed(0)}%`);
    expect(race.itemsFraction).toBeGreaterThan(halving.itemsFraction);
    expect(race.bestSurvives).toBeGreaterThanOrEqual(halving.bestSurvives);
  });

  it('a scheduler that kept the worst would be caught: reversed accuracies are tracked too', async () => {
    const reversed = [...accuracies].reverse();
    const s = await simulateRacing({ accuracies: reversed, limit: 200, trials: 50, seed: 2 });
    expect(s.bestSurvives).toBeGreaterThan(0.7);
  });
});

describe('raceEvaluator (a real evaluator, a stub model per candidate)', () => {
  it('loads each candidate before its slices and scores prefixes of the evaluator’s seeded order', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const { GenericTaskEvaluator } = await import('../../evaluators/generic.js');
    const { raceEvaluator } = await import('../../src/eval/race-evaluator.js');
    const { StubBackend } = await import('./stub-backend.js');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'evo-race-'));
    try {
      const rows = Array.from({ length: 32 }, (_, i) => JSON.stringify({ id: `q${i}`, prompt: `n=${i}`, answer: 'yes' }));
      await writeFile(path.join(dir, 'search.jsonl'), `${rows.join('\n')}\n`);
      await writeFile(path.join(dir, 'test.jsonl'), `${rows[0]}\n`);
      const ev = await GenericTaskEvaluator.fromPath(dir);
      // Candidate k answers "yes" when i mod 4 < k: accuracies 0, 1/4, 1/2, 3/4.
      let current = '';
      const backend = new StubBackend((r) => (Number(/n=(\d+)/.exec(r.prompt)?.[1]) % 4 < Number(current) ? 'yes' : 'no'));
      const useModel = backend.useModel.bind(backend);
      backend.useModel = async (m) => {
        current = m.id;
        await useModel(m);
      };
      const candidates = ['0', '1', '2', '3'].map((id) => ({ id, dir: `/runs/${id}`, config: null, genome: {} }));
      const out = await raceEvaluator(candidates, ev, backend, { limit: 32, seed: 4 }, { minFirstRungItems: 8 });
      const order = await ev.subsetOrder('search', 4);
      expect(out.rungs.map((r) => r.items)).toEqual([16, 32]);
      expect(backend.models.map((m) => m.id)).toEqual(['0', '1', '2', '3', '2', '3']);
      expect(out.entries.map((e) => e.n)).toEqual([16, 16, 32, 32]);
      expect(out.entries[3]?.items.map((i) => i.id)).toEqual(order);
      expect(out.entries[3]?.score).toBe(0.75);
      expect(out.itemsEvaluated).toBe(4 * 16 + 2 * 16);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
