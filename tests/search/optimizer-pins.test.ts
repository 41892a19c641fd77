/**
 * Pins exactly what ga, nsga2 and random ask, and the state they save, for fixed seeds: a resumed
 * run replays saved states, so "same seed, same run" must survive refactors of the optimizers.
 * tests/search/fixtures/optimizer-pins.json was captured from the code at commit 5347168, before
 * their shared bookkeeping (seen keys, initial queue, unseen asks) moved into one module.
 *
 * The scenarios reach every branch of that bookkeeping: initial genomes (one a duplicate), a
 * coarse key hook whose collisions force the mutate-again and random fallbacks, a warm start told
 * before the first ask, a failed (NaN) result, and a space so small that ask comes back short.
 *
 * A change that is meant to alter the draws rewrites the fixture (and breaks old resumes; say so):
 * EVOMERGE_WRITE_FIXTURES=1 npx vitest run tests/search/optimizer-pins.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GaOptimizer } from '../../src/search/ga.js';
import type { Genome, GenomeShape } from '../../src/search/genome-vector.js';
import { Nsga2Optimizer } from '../../src/search/nsga2.js';
import type { Evaluated, Optimizer, OptimizerHooks } from '../../src/search/optimizer.js';
import { optimizerFromState } from '../../src/search/optimizer-factory.js';
import { RandomSearch } from '../../src/search/random-search.js';
import { RngStreams } from '../../src/search/rng.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'optimizer-pins.json');

const KINDS = ['ga', 'nsga2', 'random'] as const;
type Kind = (typeof KINDS)[number];

const VARIATION = { crossoverRate: 0.9, mutationRate: null, categoricalMutationRate: null, sbxEta: 15, mutationEta: 20 } as const;

function make(kind: Kind, shape: GenomeShape, seed: number, population: number, initial: readonly Genome[], hooks: OptimizerHooks): Optimizer {
  const rng = new RngStreams(seed);
  const objectiveWeights = [1, 0.5];
  switch (kind) {
    case 'ga':
      return new GaOptimizer(shape, { population, elitism: 2, tournamentSize: 3, ...VARIATION, objectiveWeights, initial }, rng, hooks);
    case 'nsga2':
      return new Nsga2Optimizer(shape, { population, ...VARIATION, objectiveWeights, initial }, rng, hooks);
    case 'random':
      return new RandomSearch(shape, { population, objectiveWeights, initial }, rng, hooks);
    default: {
      const never: never = kind;
      return never;
    }
  }
}

/** Two objectives of both gene kinds; the third asked genome of each batch fails (NaN). */
function score(batch: readonly Genome[]): Evaluated[] {
  return batch.map((genome, i) => {
    const c = genome.continuous.reduce((s, x, j) => s + (x - 0.2 * (j + 1)) ** 2, 0);
    const k = genome.categorical.reduce((s, v) => s + v, 0);
    return { genome, objectives: i === 2 ? [Number.NaN, 0] : [-c - 0.1 * k, -Math.abs((genome.continuous[0] ?? 0) - 0.5) + 0.05 * k] };
  });
}

/** Keys that collide for genomes whose continuous genes agree to one decimal. */
const coarseKey: OptimizerHooks = {
  keyOf: (g) => JSON.stringify([g.continuous.map((x) => Math.round(x * 10)), g.categorical]),
};

/** Nine keys in all: small mutations stay inside their cell, so a random genome must stand in. */
const veryCoarseKey: OptimizerHooks = {
  keyOf: (g) => JSON.stringify(g.continuous.map((x) => Math.round(x * 2))),
};

interface Trace {
  readonly asks: Genome[][];
  /** saveState() after the last tell, as JSON text (key order included: it is what the store keeps). */
  readonly state: string;
}

function trace(opt: Optimizer, generations: number, warm?: readonly Genome[]): Trace {
  if (warm) opt.tell(score(warm));
  const asks: Genome[][] = [];
  for (let g = 0; g < generations; g++) {
    const batch = opt.ask(opt.nextBatchSize());
    asks.push(batch);
    opt.tell(score(batch));
  }
  return { asks, state: JSON.stringify(opt.saveState()) };
}

const SHAPE: GenomeShape = { continuous: 3, categorical: [3, 2] };
const START: Genome = { continuous: [0.2, 0.4, 0.6], categorical: [2, 1] };

const SCENARIOS: Record<string, (kind: Kind) => Trace> = {
  'initial genomes and a coarse key': (kind) =>
    trace(make(kind, SHAPE, 11, 6, [START, { ...START, continuous: [0.21, 0.4, 0.6] }, { continuous: [0.9, 0.1, 0.5], categorical: [0, 0] }], coarseKey), 5),
  'a warm start told before the first ask': (kind) =>
    trace(make(kind, SHAPE, 12, 5, [], {}), 4, [START, { continuous: [0.7, 0.7, 0.1], categorical: [1, 0] }, { continuous: [0.3, 0.9, 0.5], categorical: [0, 1] }]),
  'a key so coarse that mutation seldom escapes it': (kind) => trace(make(kind, { continuous: 2, categorical: [] }, 14, 4, [], veryCoarseKey), 4),
  'a space of four genomes, exhausted': (kind) => trace(make(kind, { continuous: 0, categorical: [2, 2] }, 13, 3, [], {}), 3),
};

type Pins = Record<Kind, Record<string, Trace>>;

function current(): Pins {
  const out = {} as Pins;
  for (const kind of KINDS) out[kind] = Object.fromEntries(Object.entries(SCENARIOS).map(([name, f]) => [name, f(kind)]));
  return out;
}

if (process.env.EVOMERGE_WRITE_FIXTURES === '1') writeFileSync(FIXTURE, `${JSON.stringify(current(), null, 1)}\n`);
const pinned = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Pins;

describe.each(KINDS)('%s asks what it asked at 5347168', (kind) => {
  it.each(Object.keys(SCENARIOS))('%s', (name) => {
    const want = pinned[kind][name];
    const got = SCENARIOS[name]?.(kind);
    expect(want).toBeDefined();
    expect(got?.asks).toEqual(want?.asks);
    expect(got?.state).toBe(want?.state);
  });

  it('a restored state asks what the original asks next', () => {
    const a = make(kind, SHAPE, 11, 6, [START], coarseKey);
    trace(a, 2);
    const b = optimizerFromState(JSON.parse(JSON.stringify(a.saveState())), coarseKey);
    expect(trace(b, 2)).toEqual(trace(a, 2));
  });
});

describe('the pinned scenarios', () => {
  it('cover short asks, failed results and key collisions', () => {
    const exhausted = pinned.random['a space of four genomes, exhausted'];
    expect(exhausted?.asks.map((b) => b.length)).toEqual([3, 1, 0]);
    for (const kind of KINDS) {
      const asks = pinned[kind]['initial genomes and a coarse key']?.asks.flat() ?? [];
      // The duplicate initial genome is never asked, and no two asks share a coarse key.
      expect(asks[0]).toEqual(START);
      expect(asks[1]).toEqual({ continuous: [0.9, 0.1, 0.5], categorical: [0, 0] });
      const keys = asks.map((g) => coarseKey.keyOf?.(g));
      expect(new Set(keys).size).toBe(keys.length);
    }
  });
});
