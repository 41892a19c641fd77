import { EvoError } from '../errors.js';
import { summarizeItems } from './stats.js';
import type { ItemResult } from './types.js';

/**
 * Successive halving inside a generation. Every candidate answers the first slice of the
 * generation's item order; the better part goes on to the next, longer slice; and so on until
 * the last rung reaches the full `limit`. All candidates see the same items (a prefix of one
 * seeded order), so their estimates are unbiased estimates of the same quantity and comparable,
 * each with the interval of its own sample size. The scheduling decisions are pure functions of
 * the per-item results; `raceGeneration` only drives them.
 */

export type RacingRule = 'halving' | 'race';

export interface RacingOptions {
  /** Growth of the rung length and shrink of the field per rung. Default: 2. */
  readonly eta?: number;
  /**
   * 'halving': the best ⌈n/eta⌉ continue (ties at the cut continue too). 'race': a candidate
   * stops only when its interval lies wholly below the leader's (costs more, never drops one
   * that is not clearly worse). Default: 'halving'.
   */
  readonly rule?: RacingRule;
  /** Fewest items in the first rung. Default: 16. */
  readonly minFirstRungItems?: number;
  /** Fewest candidates that reach the last rung. Default: 2 (the best and a runner-up get full estimates). */
  readonly minSurvivors?: number;
  /** Confidence of the intervals the 'race' rule compares. Default: 0.95. */
  readonly confidence?: number;
}

export interface ResolvedRacingOptions {
  readonly eta: number;
  readonly rule: RacingRule;
  readonly minFirstRungItems: number;
  readonly minSurvivors: number;
  readonly confidence: number;
}

export class RacingError extends EvoError {
  constructor(message: string) {
    super('BAD_RACING_OPTION', message);
    this.name = 'RacingError';
  }
}

export function resolveRacingOptions(options: RacingOptions = {}): ResolvedRacingOptions {
  const r: ResolvedRacingOptions = {
    eta: options.eta ?? 2,
    rule: options.rule ?? 'halving',
    minFirstRungItems: options.minFirstRungItems ?? 16,
    minSurvivors: options.minSurvivors ?? 2,
    confidence: options.confidence ?? 0.95,
  };
  if (!(r.eta > 1) || !Number.isFinite(r.eta)) throw new RacingError(`racing.eta must be a number > 1, got ${r.eta}`);
  if (r.rule !== 'halving' && r.rule !== 'race') throw new RacingError(`racing.rule must be halving or race, got ${String(r.rule)}`);
  if (!Number.isSafeInteger(r.minFirstRungItems) || r.minFirstRungItems < 1) throw new RacingError(`racing.minFirstRungItems must be a positive integer, got ${r.minFirstRungItems}`);
  if (!Number.isSafeInteger(r.minSurvivors) || r.minSurvivors < 1) throw new RacingError(`racing.minSurvivors must be a positive integer, got ${r.minSurvivors}`);
  if (!(r.confidence > 0 && r.confidence < 1)) throw new RacingError(`racing.confidence must be in (0, 1), got ${r.confidence}`);
  return r;
}

/** One rung: the cumulative items each surviving candidate has answered at its end, and the planned field size. */
export interface Rung {
  readonly items: number;
  /** Candidates planned to run this rung ('halving'; 'race' may keep more). */
  readonly candidates: number;
}

/**
 * The rungs for a field of `population` candidates and `limit` items per full evaluation:
 * rung k (from the last) has ⌈limit / etaᵏ⌉ items, with as many rungs as halving the field down
 * to `minSurvivors` needs, but no rung shorter than `minFirstRungItems`.
 */
export function rungSchedule(limit: number, population: number, options: RacingOptions = {}): Rung[] {
  const o = resolveRacingOptions(options);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RacingError(`limit must be a positive integer, got ${limit}`);
  if (!Number.isSafeInteger(population) || population < 1) throw new RacingError(`population must be a positive integer, got ${population}`);
  const field: number[] = [population];
  while ((field.at(-1) ?? 1) > o.minSurvivors) field.push(Math.max(o.minSurvivors, Math.ceil((field.at(-1) ?? 1) / o.eta)));
  let rungs = field.length;
  while (rungs > 1 && Math.ceil(limit / o.eta ** (rungs - 1)) < Math.min(o.minFirstRungItems, limit)) rungs--;
  const out: Rung[] = [];
  for (let k = 0; k < rungs; k++) {
    const items = Math.ceil(limit / o.eta ** (rungs - 1 - k));
    const candidates = Math.min(population, field[k] ?? o.minSurvivors);
    if (out.length > 0 && items <= (out.at(-1)?.items ?? 0)) continue;
    out.push({ items, candidates });
  }
  return out;
}

/** Planned cost of a schedule in item evaluations, and the cost of a full pass. */
export function plannedCost(rungs: readonly Rung[], population: number): { items: number; fullPass: number } {
  let items = 0;
  let before = 0;
  for (const r of rungs) {
    items += r.candidates * (r.items - before);
    before = r.items;
  }
  return { items, fullPass: population * (rungs.at(-1)?.items ?? 0) };
}

/** A candidate's standing after a rung. */
export interface Standing {
  /** Index of the candidate in the field. */
  readonly index: number;
  readonly score: number;
  readonly ci: readonly [number, number];
  readonly n: number;
}

/** Standings of candidates from their item results so far. */
export function standingsOf(results: ReadonlyMap<number, readonly ItemResult[]>, confidence = 0.95): Standing[] {
  return [...results.entries()].map(([index, items]) => {
    const s = summarizeItems(items, confidence);
    return { index, score: s.score, ci: s.ci, n: s.n };
  });
}

function rank(standings: readonly Standing[]): Standing[] {
  return [...standings].sort((a, b) => b.score - a.score || a.index - b.index);
}

/**
 * Which candidates continue to the next rung. 'halving': the best `keep` by score, plus any
 * tied with the last of them. 'race': everyone whose interval's upper end reaches the leader's
 * lower end, and at least the best `keep`. Returns candidate indices, best first (ties by index).
 */
export function selectSurvivors(standings: readonly Standing[], keep: number, rule: RacingRule): number[] {
  const ranked = rank(standings);
  if (ranked.length <= keep) return ranked.map((s) => s.index);
  if (rule === 'halving') {
    const cut = ranked[keep - 1]?.score ?? -Infinity;
    return ranked.filter((s, i) => i < keep || s.score === cut).map((s) => s.index);
  }
  const leader = ranked[0];
  if (leader === undefined) return [];
  return ranked.filter((s, i) => i < keep || s.ci[1] >= leader.ci[0]).map((s) => s.index);
}

/** A candidate's outcome of a race. */
export interface RaceEntry<C> {
  readonly candidate: C;
  /** Item results in order (a prefix of the generation's item order). */
  readonly items: readonly ItemResult[];
  readonly score: number;
  readonly ci: readonly [number, number];
  readonly stderr: number;
  readonly n: number;
  /** Index of the last rung this candidate ran (the last rung of the schedule for finalists). */
  readonly rung: number;
  /** scoreSlice gave up on it (returned null) in rung `rung`; it left the race there. */
  readonly failed: boolean;
}

export interface RaceOutcome<C> {
  /** One entry per candidate, in the input order. */
  readonly entries: readonly RaceEntry<C>[];
  readonly rungs: readonly Rung[];
  /** Items scored (by scoreSlice, recorded ones included). */
  readonly itemsEvaluated: number;
  /** What every candidate on `limit` items would have cost. */
  readonly fullPassItems: number;
}

/** Hooks a caller uses to prefetch work and commit candidates as they leave the race. */
export interface RaceHooks {
  /** Before rung `rung` runs, with the indices of the candidates it will score, in order. */
  readonly onRung?: (rung: number, indices: readonly number[]) => void | Promise<void>;
  /**
   * A candidate left the race after `rung` without failing: eliminated by the cut, or a
   * finalist at the end. Called in index order after each rung's selection.
   */
  readonly onStop?: (index: number, rung: number, items: readonly ItemResult[]) => void | Promise<void>;
}

/**
 * Runs successive halving over a field. `scoreSlice(candidate, itemIds, rung)` scores one
 * candidate on the next slice of `order` (the caller loads the model and calls its evaluator
 * with `budget.itemIds`, or returns results it recorded before); it must return one result per
 * id, in order, or null when the candidate failed (it leaves the race). Candidates of a rung run
 * one after another, in field order. The schedule and every cut are pure functions of the
 * results, so replaying recorded results gives the same race.
 */
export async function raceGeneration<C>(
  candidates: readonly C[],
  order: readonly string[],
  limit: number,
  scoreSlice: (candidate: C, itemIds: readonly string[], rung: number) => Promise<readonly ItemResult[] | null>,
  options: RacingOptions = {},
  hooks: RaceHooks = {},
): Promise<RaceOutcome<C>> {
  const o = resolveRacingOptions(options);
  const full = Math.min(limit, order.length);
  if (candidates.length === 0) return { entries: [], rungs: [], itemsEvaluated: 0, fullPassItems: 0 };
  const rungs = rungSchedule(full, candidates.length, o);
  const results = new Map<number, ItemResult[]>(candidates.map((_, i) => [i, []]));
  const lastRung = new Map<number, number>();
  const failed = new Set<number>();
  let alive = candidates.map((_, i) => i);
  let spent = 0;
  for (const [k, rung] of rungs.entries()) {
    await hooks.onRung?.(k, alive);
    for (const index of alive) {
      const done = results.get(index) ?? [];
      const slice = order.slice(done.length, rung.items);
      lastRung.set(index, k);
      if (slice.length === 0) continue;
      const got = await scoreSlice(candidates[index] as C, slice, k);
      if (got === null) {
        failed.add(index);
        continue;
      }
      if (got.length !== slice.length || got.some((r, j) => r.id !== slice[j])) {
        throw new RacingError(`scoreSlice returned ${got.length} results for ${slice.length} items, or not in the order asked`);
      }
      done.push(...got);
      results.set(index, done);
      spent += got.length;
    }
    const running = alive.filter((i) => !failed.has(i));
    const next = rungs[k + 1];
    const standing = standingsOf(new Map(running.map((i) => [i, results.get(i) ?? []])), o.confidence);
    const keep = next === undefined ? [] : selectSurvivors(standing, o.rule === 'halving' ? next.candidates : o.minSurvivors, o.rule);
    const kept = new Set(keep);
    for (const i of running) if (!kept.has(i)) await hooks.onStop?.(i, k, results.get(i) ?? []);
    if (next === undefined) break;
    alive = [...kept].sort((a, b) => a - b);
  }
  const entries = candidates.map((candidate, i) => {
    const items = results.get(i) ?? [];
    const s = summarizeItems(items, o.confidence);
    return { candidate, items, score: s.score, ci: s.ci, stderr: s.stderr, n: s.n, rung: lastRung.get(i) ?? 0, failed: failed.has(i) };
  });
  return { entries, rungs, itemsEvaluated: spent, fullPassItems: candidates.length * full };
}
