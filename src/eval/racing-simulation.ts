import seedrandom from 'seedrandom';
import { raceGeneration, resolveRacingOptions } from './racing.js';
import type { RacingOptions } from './racing.js';
import { normalQuantile } from './stats.js';
import type { ItemResult } from './types.js';

/**
 * A simulated generation with known true accuracies, to measure what successive halving saves
 * and what it costs in selection quality. Items differ in difficulty (a Rasch model:
 * P(right) = σ(θ_c − b_j), b_j ~ N(0, itemSpread²)), so candidates' results are correlated
 * through the shared items, as they are for real models answering the same questions.
 */

export interface RacingSimulationOptions {
  /** True accuracy of each candidate over the whole item population (each in (0, 1)). */
  readonly accuracies: readonly number[];
  /** Items of a full evaluation. */
  readonly limit: number;
  /** Independent generations simulated. */
  readonly trials: number;
  readonly seed: number;
  /** Standard deviation of item difficulties in logits. Default: 1.5. */
  readonly itemSpread?: number;
  readonly racing?: RacingOptions;
}

export interface RacingSimulationSummary {
  readonly trials: number;
  readonly population: number;
  readonly limit: number;
  /** Mean of items evaluated / (population × limit). */
  readonly itemsFraction: number;
  /** How often the truly best candidate reached the last rung. */
  readonly bestSurvives: number;
  /** How often the race's top finalist is the truly best candidate. */
  readonly racePicksBest: number;
  /** How often the best of a full pass (every candidate on every item) is the truly best. */
  readonly fullPassPicksBest: number;
  /** Mean true-accuracy gap between the truly best and the race's pick. */
  readonly raceRegret: number;
  /** The same for the full pass's pick. */
  readonly fullPassRegret: number;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** θ such that the mean of σ(θ − b) over the difficulty grid equals p (bisection). */
function abilityFor(p: number, grid: readonly number[]): number {
  let lo = -30;
  let hi = 30;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    const m = grid.reduce((acc, b) => acc + sigmoid(mid - b), 0) / grid.length;
    if (m < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function argmax(values: readonly number[]): number {
  let best = 0;
  values.forEach((v, i) => {
    if (v > (values[best] ?? -Infinity)) best = i;
  });
  return best;
}

export async function simulateRacing(options: RacingSimulationOptions): Promise<RacingSimulationSummary> {
  const spread = options.itemSpread ?? 1.5;
  const racing = resolveRacingOptions(options.racing);
  const population = options.accuracies.length;
  const grid = Array.from({ length: 400 }, (_, k) => spread * normalQuantile((k + 0.5) / 400));
  const theta = options.accuracies.map((p) => abilityFor(p, grid));
  const trueBest = argmax(options.accuracies);
  const bestAccuracy = options.accuracies[trueBest] ?? 0;
  const prng = seedrandom.alea(`racing-simulation:${options.seed}`);
  const uniform = (): number => Math.min(1 - 1e-12, Math.max(1e-12, prng.double()));
  let fraction = 0;
  let survives = 0;
  let racePicks = 0;
  let fullPicks = 0;
  let raceRegret = 0;
  let fullRegret = 0;
  for (let t = 0; t < options.trials; t++) {
    const difficulty = Array.from({ length: options.limit }, () => spread * normalQuantile(uniform()));
    const order = difficulty.map((_, j) => `item-${j}`);
    // Outcomes drawn up front, so the race and the full pass see the same answers.
    const outcome = theta.map((th) => difficulty.map((b) => uniform() < sigmoid(th - b)));
    const itemResult = (c: number, j: number): ItemResult => {
      const correct = outcome[c]?.[j] ?? false;
      return { id: `item-${j}`, correct, score: correct ? 1 : 0 };
    };
    const race = await raceGeneration(
      theta.map((_, c) => c),
      order,
      options.limit,
      async (c, ids) => ids.map((id) => itemResult(c, Number(id.slice(5)))),
      racing,
    );
    const lastRung = race.rungs.length - 1;
    const finalists = race.entries.filter((e) => e.rung === lastRung);
    let pick = finalists[0];
    for (const e of finalists) if (pick === undefined || e.score > pick.score) pick = e;
    const fullScores = outcome.map((row) => row.filter(Boolean).length);
    const fullPick = argmax(fullScores);
    fraction += race.itemsEvaluated / race.fullPassItems;
    if (finalists.some((e) => e.candidate === trueBest)) survives++;
    if (pick?.candidate === trueBest) racePicks++;
    if (fullPick === trueBest) fullPicks++;
    raceRegret += bestAccuracy - (options.accuracies[pick?.candidate ?? 0] ?? 0);
    fullRegret += bestAccuracy - (options.accuracies[fullPick] ?? 0);
  }
  const n = Math.max(1, options.trials);
  return {
    trials: options.trials,
    population,
    limit: options.limit,
    itemsFraction: fraction / n,
    bestSurvives: survives / n,
    racePicksBest: racePicks / n,
    fullPassPicksBest: fullPicks / n,
    raceRegret: raceRegret / n,
    fullPassRegret: fullRegret / n,
  };
}
