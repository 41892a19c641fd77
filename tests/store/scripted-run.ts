/**
 * A small deterministic search driven through the RunStore exactly as the runner will drive it
 * (the resume protocol of src/store/types.ts): a toy optimizer with JSON state, quantized genomes
 * so identical recipes recur, a deterministic evaluator that sometimes fails, and a Pareto front.
 * Run it to completion, or kill it anywhere and run it again on the same store: the result must be
 * the same. Used by the contract suite, the backend agreement test and the SIGKILL test's child.
 */
import { assertSameSpace } from '../../src/store/errors.js';
import type { JsonValue, NewRun, RunStore, SlotRecord } from '../../src/store/types.js';

export interface ScriptOptions {
  readonly generations: number;
  readonly population: number;
  /** Milliseconds each evaluation waits, so a kill can land between start and result. Default: 0. */
  readonly evalDelayMs?: number;
}

interface Genome {
  readonly w: readonly [number, number];
  readonly density: number;
}

interface OptimizerState {
  /** mulberry32 state. */
  readonly rng: number;
  readonly best: Genome;
  readonly bestAcc: number | null;
}

export function scriptedRun(generations: number): NewRun {
  return {
    name: 'scripted',
    spaceText: 'genes:\n  w: {min: 0, max: 1, step: 0.25}\n  density: {min: 0, max: 1, step: 0.25}\n',
    space: { genes: { w: { min: 0, max: 1, step: 0.25 }, density: { min: 0, max: 1, step: 0.25 } } },
    spaceHash: 'space-hash-1',
    seeds: { search: 7, merge: 11 },
    packageVersion: '0.0.0-test',
    objectives: [
      { name: 'acc', direction: 'maximize' },
      { name: 'cost', direction: 'minimize' },
    ],
    generations,
  };
}

/** One mulberry32 step: the next state and a float in [0, 1). */
function nextRandom(state: number): [number, number] {
  const s = (state + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return [s, ((t ^ (t >>> 14)) >>> 0) / 4294967296];
}

const quantize = (x: number): number => Math.min(1, Math.max(0, Math.round(x * 4) / 4));

function ask(state: OptimizerState, population: number): { genomes: Genome[]; rng: number } {
  let rng = state.rng;
  const draw = (): number => {
    const [s, r] = nextRandom(rng);
    rng = s;
    return r;
  };
  const genomes: Genome[] = [];
  for (let i = 0; i < population; i++) {
    genomes.push({
      w: [quantize(state.best.w[0] + (draw() - 0.5) * 0.8), quantize(state.best.w[1] + (draw() - 0.5) * 0.8)],
      density: quantize(state.best.density + (draw() - 0.5) * 0.8),
    });
  }
  return { genomes, rng };
}

function tell(state: OptimizerState, rng: number, slots: readonly SlotRecord[]): OptimizerState {
  let best = state.best;
  let bestAcc = state.bestAcc;
  for (const s of slots) {
    const acc = s.result?.scores.acc?.value;
    if (acc !== undefined && (bestAcc === null || acc > bestAcc)) {
      bestAcc = acc;
      best = s.genome as unknown as Genome;
    }
  }
  return { rng, best, bestAcc };
}

export function recipeHash(g: Genome): string {
  return `w${g.w[0]}-${g.w[1]}-d${g.density}`;
}

function configOf(g: Genome): string {
  return `merge_method: dare_linear\nmodels:\n  - model: a\n    parameters: {weight: ${g.w[0]}, density: ${g.density}}\n  - model: b\n    parameters: {weight: ${g.w[1]}, density: ${g.density}}\n`;
}

/** Deterministic scores; density 0 fails (an evaluator error), as real evaluations sometimes do. */
export function evaluateGenome(g: Genome): { acc: number; cost: number } | 'fail' {
  if (g.density === 0) return 'fail';
  const acc = 1 - (g.w[0] - 0.75) ** 2 - (g.w[1] - 0.25) ** 2 - (g.density - 0.5) ** 2 / 4;
  return { acc, cost: g.density * 10 + g.w[0] + g.w[1] };
}

/** Non-dominated done candidates (acc up, cost down), in id order. */
export function paretoFront(entries: readonly { id: number; acc: number; cost: number }[]): number[] {
  return entries
    .filter((a) => !entries.some((b) => b.id !== a.id && b.acc >= a.acc && b.cost <= a.cost && (b.acc > a.acc || b.cost < a.cost)))
    .map((e) => e.id)
    .sort((x, y) => x - y);
}

/** Runs (or resumes) the scripted search on `store` until its last generation is recorded. */
export async function runScripted(store: RunStore, options: ScriptOptions): Promise<void> {
  const spec = scriptedRun(options.generations);
  const run = await store.getRun();
  if (run === undefined) {
    await store.createRun(spec);
  } else {
    assertSameSpace(run.spaceHash, spec.spaceHash, false, run.name);
    await store.appendEvent('resumed', `resumed with ${(await store.pendingCandidates()).length} unfinished candidates`);
  }
  const snapshot = await store.latestOptimizerState();
  let state: OptimizerState =
    snapshot === undefined ? { rng: 7, best: { w: [0.5, 0.5], density: 0.5 }, bestAcc: null } : (snapshot.optimizerState as unknown as OptimizerState);
  for (let g = snapshot === undefined ? 0 : snapshot.generation + 1; g < options.generations; g++) {
    const { genomes, rng } = ask(state, options.population);
    await store.recordCandidates(
      genomes.map((genome, index) => ({ generation: g, index, genome: genome as unknown as JsonValue, config: configOf(genome), hash: recipeHash(genome) })),
    );
    for (const c of await store.pendingCandidates()) {
      await store.startEvaluation(c.id);
      if (options.evalDelayMs !== undefined && options.evalDelayMs > 0) await new Promise((r) => setTimeout(r, options.evalDelayMs));
      const scores = evaluateGenome(c.genome as unknown as Genome);
      if (scores === 'fail') {
        await store.recordFailure(c.id, 'density 0 leaves nothing to merge');
      } else {
        await store.recordResult(c.id, {
          scores: {
            acc: { value: scores.acc, ciLow: scores.acc - 0.05, ciHigh: scores.acc + 0.05, stderr: 0.025, n: 100 },
            cost: { value: scores.cost, n: 1 },
          },
          itemsUsed: 101,
          seconds: 0.5,
          modelBytes: 1000 + c.id,
          details: { rung: 0 },
          items: [
            { objective: 'acc', itemId: 'q1', correct: scores.acc > 0.8, score: scores.acc > 0.8 ? 1 : 0 },
            { objective: 'acc', itemId: 'q2', correct: null, score: scores.acc },
          ],
        });
      }
    }
    state = tell(state, rng, await store.candidatesOfGeneration(g));
    const results = await store.results();
    const front = paretoFront(results.map((r) => ({ id: r.candidateId, acc: r.scores.acc?.value ?? 0, cost: r.scores.cost?.value ?? 0 })));
    await store.recordGeneration({ generation: g, optimizerState: state as unknown as JsonValue, rngState: { rng: state.rng }, front, seconds: 0.25 * (g + 1) });
  }
  const final = await store.getRun();
  if (final?.status !== 'finished') await store.setRunStatus('finished', 'all generations recorded');
}

/** Everything a deterministic run must reproduce: no timestamps, attempts or events. */
export async function snapshotOf(store: RunStore): Promise<unknown> {
  const summaries = await store.generationSummaries();
  return {
    candidates: (await store.candidates()).map((c) => ({ id: c.id, generation: c.generation, index: c.index, genome: c.genome, config: c.config, hash: c.hash, status: c.status, error: c.error })),
    slots: await Promise.all(summaries.map(async (s) => (await store.candidatesOfGeneration(s.generation)).map((x) => [x.index, x.candidate.id, x.genome]))),
    results: (await store.results()).map(({ recordedAt: _, ...rest }) => rest),
    items: await Promise.all((await store.candidates()).map((c) => store.itemResults(c.id))),
    fronts: await Promise.all(summaries.map(async (s) => (await store.front(s.generation)).map((x) => x.candidate.id))),
    summaries: summaries.map(({ recordedAt: _, ...rest }) => rest),
    optimizer: await store.latestOptimizerState(),
    status: (await store.getRun())?.status,
  };
}

export class SimulatedCrash extends Error {}

const WRITES = new Set([
  'createRun',
  'setRunStatus',
  'recordCandidate',
  'recordCandidates',
  'startEvaluation',
  'recordResult',
  'recordFailure',
  'recordGeneration',
  'appendEvent',
]);

/**
 * The real store, except that the write after the first `writes` ones throws SimulatedCrash
 * instead of happening: the runner dies between two transactions, as under SIGKILL.
 */
export function crashingAfter(store: RunStore, writes: number): RunStore {
  let count = 0;
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || !WRITES.has(prop) || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (...args: unknown[]) => {
        count += 1;
        if (count > writes) return Promise.reject(new SimulatedCrash(`crash before write ${count} (${prop})`));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
