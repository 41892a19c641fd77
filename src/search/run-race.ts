import { EvoError } from '../errors.js';
import { raceGeneration, rungSchedule, type Rung } from '../eval/racing.js';
import { summarizeItems } from '../eval/stats.js';
import type { ItemResult } from '../eval/types.js';
import type { CandidateRecord, CandidateStatus, JsonValue, NewItemResult, ObjectiveScore, RungResultRecord } from '../store/types.js';
import {
  buildCandidate,
  evaluationCandidate,
  removeCandidate,
  scoreObjectives,
  SearchInterruptedError,
  type BuildOutcome,
  type ObjectivePlan,
  type PipelineContext,
  type PipelineStats,
} from './run-pipeline.js';
import { EvaluatorError, type ObjectiveEvaluator } from './run-evaluators.js';
import type { ObjectiveSpec } from './space.js';

/**
 * Successive halving of one generation inside the search runner (src/eval/racing.ts schedules;
 * this file builds, evaluates and records). Every new candidate of the generation answers the
 * first slice of the raced objective's seeded order (its other objectives are evaluated in full
 * once, in that first rung); the better part answers the next slice, and so on. A candidate is
 * recorded as done when it leaves the race, with its estimate so far (score, Wilson interval,
 * item count), which is what the optimizer is told.
 *
 * Store protocol: every rung of every candidate is one recordRungResult before the race cuts, so
 * a SIGKILL loses at most the slices in flight. A resumed run replays the recorded rungs through
 * the same scheduler (cuts are pure functions of the items), evaluates only what is missing, and
 * ends with the same results as a run never interrupted. Models of candidates still racing stay
 * on disk between rungs (up to the generation's size of them); a resumed run builds again those
 * it still needs.
 */

/** What a raced generation cost, in items of the raced objective. */
export interface RaceSummary {
  readonly objective: string;
  readonly rungs: readonly Rung[];
  /** Items the race scored (recorded in an earlier session included). */
  readonly itemsEvaluated: number;
  /** Items a full pass (every candidate on the full limit) would have scored. */
  readonly fullPassItems: number;
}

/** The raced objective's index, or -1 when the space races none. */
export function racedObjective(objectives: readonly ObjectiveSpec[]): number {
  return objectives.findIndex((o) => o.racing !== undefined);
}

/** Refuses, before any output, a raced objective whose evaluator cannot enumerate its items. */
export function assertRaceable(objectives: readonly ObjectiveSpec[], evaluators: readonly ObjectiveEvaluator[]): void {
  const r = racedObjective(objectives);
  if (r < 0) return;
  if (evaluators[r]?.subsetOrder === undefined) {
    throw new EvoError(
      'NOT_RACEABLE',
      `objectives[${r}].racing: the evaluator of objective ${objectives[r]?.name ?? ''} does not enumerate its items, so it cannot be raced ` +
        `(built-in tasks can; a module must export subsetOrder(options, {split, seed})); remove racing or use such an evaluator`,
    );
  }
}

function nowSeconds(): number {
  return performance.now() / 1000;
}

function itemOf(i: { readonly itemId: string; readonly correct: boolean | null; readonly score: number }): ItemResult {
  return { id: i.itemId, correct: i.correct, score: i.score };
}

/** Items as the scheduler ranks them: higher is better, so a minimized objective's scores are flipped. */
function orientedItem(item: ItemResult, maximize: boolean): ItemResult {
  return maximize ? item : { id: item.id, correct: item.correct === null ? null : !item.correct, score: 1 - item.score };
}

function scoreOfItems(items: readonly ItemResult[], confidence: number): ObjectiveScore {
  const s = summarizeItems(items, confidence);
  return { value: s.score, stderr: s.stderr, ciLow: s.ci[0], ciHigh: s.ci[1], n: s.n };
}

/** Races the new candidates of `generation` (resuming a race a killed run left). */
export async function runRacedGeneration(generation: number, ctx: PipelineContext): Promise<{ readonly stats: PipelineStats; readonly race: RaceSummary }> {
  const r = racedObjective(ctx.objectives);
  const objective = ctx.objectives[r];
  const evaluator = ctx.evaluators[r];
  const racing = objective?.racing;
  if (objective === undefined || evaluator?.subsetOrder === undefined || racing === undefined) throw new Error('internal: runRacedGeneration without a raceable objective');
  const windowStart = nowSeconds();
  const order = await evaluator.subsetOrder(ctx.subsetSeed(generation));
  if (order.length === 0) throw new EvaluatorError('EVALUATOR_RESULT', `objective ${objective.name}: subsetOrder returned no items, so nothing can be raced`);
  const limit = objective.limit ?? Number.POSITIVE_INFINITY;
  const full = Math.min(limit, order.length);

  // The field: every candidate first recorded in this generation (reused recipes keep their results).
  const byId = new Map<number, CandidateRecord>();
  for (const s of await ctx.store.candidatesOfGeneration(generation)) if (s.candidate.generation === generation) byId.set(s.candidate.id, s.candidate);
  const field = [...byId.values()].sort((a, b) => a.id - b.id);
  const status = new Map<number, CandidateStatus>(field.map((c) => [c.id, c.status]));
  const recorded = new Map<number, RungResultRecord[]>();
  for (const c of field) recorded.set(c.id, [...(await ctx.store.rungResults(c.id))]);

  const inner = new AbortController();
  const onAbort = (): void => inner.abort();
  ctx.signal.addEventListener('abort', onAbort);
  if (ctx.signal.aborted) inner.abort();
  const builds = new Map<number, Promise<BuildOutcome>>();
  const buildOf = (c: CandidateRecord): Promise<BuildOutcome> => {
    let b = builds.get(c.id);
    if (b === undefined) builds.set(c.id, (b = buildCandidate(c, ctx, inner.signal)));
    return b;
  };
  let queue: CandidateRecord[] = [];
  let buildSeconds = 0;
  let evaluateSeconds = 0;
  let waitSeconds = 0;
  let firstBuildWaitSeconds = 0;
  let finished = 0;
  let firstWait = true;

  const needsWork = (c: CandidateRecord, rung: number): boolean => status.get(c.id) === 'running' || status.get(c.id) === 'pending' ? recorded.get(c.id)?.[rung] === undefined : false;
  const release = async (c: CandidateRecord): Promise<void> => {
    builds.delete(c.id);
    await removeCandidate(ctx.workDir, c.id);
  };
  const fail = async (c: CandidateRecord, error: string, seconds: { build: number; evaluate: number; wait: number }): Promise<null> => {
    await release(c);
    await ctx.store.recordFailure(c.id, error);
    status.set(c.id, 'failed');
    finished++;
    ctx.emit({ event: 'candidate', run: ctx.runName, generation, id: c.id, hash: c.hash, status: 'failed', scores: {}, error, buildSeconds: seconds.build, evaluateSeconds: seconds.evaluate, waitSeconds: seconds.wait });
    return null;
  };

  const scoreSlice = async (c: CandidateRecord, itemIds: readonly string[], rung: number): Promise<readonly ItemResult[] | null> => {
    const known = recorded.get(c.id)?.[rung];
    if (known !== undefined) return known.items.filter((i) => i.objective === objective.name).map((i) => orientedItem(itemOf(i), objective.maximize));
    const now = status.get(c.id);
    if (now === 'failed') return null;
    if (now === 'done') {
      throw new EvoError('RESUME_DIVERGED', `run '${ctx.runName}': candidate ${c.id} is done after ${recorded.get(c.id)?.length ?? 0} rung(s), yet the replayed race asks it for rung ${rung}`);
    }
    const waitStart = nowSeconds();
    const outcome = await buildOf(c);
    const waited = nowSeconds() - waitStart;
    waitSeconds += waited;
    if (firstWait) firstBuildWaitSeconds += waited;
    firstWait = false;
    if (outcome.kind === 'fatal') {
      if (inner.signal.aborted) throw new SearchInterruptedError(ctx.runName);
      throw outcome.error;
    }
    if (ctx.signal.aborted) throw new SearchInterruptedError(ctx.runName);
    // Build the next candidate of this rung that needs a model while this one is scored.
    const following = queue[queue.indexOf(c) + 1];
    if (ctx.overlap && following !== undefined) void buildOf(following);
    if (outcome.kind === 'failed') {
      buildSeconds += outcome.seconds;
      return fail(c, outcome.error, { build: outcome.seconds, evaluate: 0, wait: waited });
    }
    if (rung === 0) buildSeconds += outcome.seconds;
    const plan: ObjectivePlan[] = rung === 0 ? ctx.objectives.map((_, i) => ({ objective: i, itemIds: i === r ? itemIds : undefined })) : [{ objective: r, itemIds }];
    const t0 = nowSeconds();
    const { outcomes, failure } = await scoreObjectives(c, evaluationCandidate(c, outcome.built, outcome.gguf, ctx.schema), plan, ctx, inner.signal);
    const seconds = nowSeconds() - t0;
    evaluateSeconds += seconds;
    if (failure !== null) return fail(c, failure, { build: outcome.seconds, evaluate: seconds, wait: waited });
    const scores: Record<string, ObjectiveScore> = {};
    const details: Record<string, JsonValue> = {};
    const items: NewItemResult[] = [];
    let itemsUsed = 0;
    let raced: ItemResult[] = [];
    plan.forEach((p, i) => {
      const o = ctx.objectives[p.objective];
      const got = outcomes[i];
      if (o === undefined || got === undefined) return;
      details[o.name] = got.details;
      items.push(...got.items);
      itemsUsed += got.itemsUsed;
      if (p.objective !== r) {
        scores[o.name] = got.score;
        return;
      }
      raced = got.items.map((x) => ({ id: x.itemId, correct: x.correct ?? null, score: x.score }));
      if (raced.length !== itemIds.length || raced.some((x, j) => x.id !== itemIds[j] || x.score < 0 || x.score > 1)) {
        throw new EvaluatorError(
          'EVALUATOR_RESULT',
          `objective ${o.name} is raced, so its evaluator must return items for exactly the ${itemIds.length} ids of context.itemIds, in order, each scored in [0, 1]; ` +
            `got ${raced.length} item(s)${raced.length > 0 ? ` starting ${raced[0]?.id ?? ''}` : ''}`,
        );
      }
      scores[o.name] = scoreOfItems(raced, racing.confidence);
    });
    const rec = await ctx.store.recordRungResult(c.id, {
      rung,
      scores,
      itemsUsed,
      seconds,
      details: { evaluators: details, ...(rung === 0 ? { modelBytes: outcome.built.summary.bytesWritten, buildSeconds: outcome.seconds } : {}) },
      items,
    });
    recorded.get(c.id)?.push(rec);
    return raced.map((x) => orientedItem(x, objective.maximize));
  };

  const onStop = async (index: number, rung: number, rungCount: number): Promise<void> => {
    const c = field[index];
    if (c === undefined || status.get(c.id) === 'done') return;
    const rungs = recorded.get(c.id) ?? [];
    const first = rungs[0];
    if (first === undefined) throw new Error(`internal: candidate ${c.id} stopped without a rung`);
    const all = rungs.flatMap((x) => x.items);
    const scores: Record<string, ObjectiveScore> = {};
    const evaluators: Record<string, JsonValue> = {};
    const firstDetails = (first.details ?? {}) as { readonly evaluators?: Record<string, JsonValue>; readonly modelBytes?: number; readonly buildSeconds?: number };
    ctx.objectives.forEach((o, i) => {
      if (i === r) {
        scores[o.name] = scoreOfItems(all.filter((x) => x.objective === o.name).map(itemOf), racing.confidence);
        evaluators[o.name] = ((rungs.at(-1)?.details ?? {}) as { readonly evaluators?: Record<string, JsonValue> }).evaluators?.[o.name] ?? null;
      } else {
        const s = first.scores[o.name];
        if (s !== undefined) scores[o.name] = s;
        evaluators[o.name] = firstDetails.evaluators?.[o.name] ?? null;
      }
    });
    const seconds = rungs.reduce((a, x) => a + x.seconds, 0);
    if (!ctx.keepCandidates) await release(c);
    await ctx.store.recordResult(c.id, {
      scores,
      itemsUsed: rungs.reduce((a, x) => a + x.itemsUsed, 0),
      seconds,
      modelBytes: firstDetails.modelBytes ?? null,
      details: {
        evaluators,
        race: { objective: objective.name, rung, rungs: rungCount, stopped: rung < rungCount - 1, items: scores[objective.name]?.n ?? 0, fullItems: full },
        timing: { buildSeconds: firstDetails.buildSeconds ?? 0, evaluateSeconds: seconds },
      },
      items: all.map((x) => ({ objective: x.objective, itemId: x.itemId, correct: x.correct, score: x.score })),
    });
    status.set(c.id, 'done');
    finished++;
    ctx.emit({
      event: 'candidate',
      run: ctx.runName,
      generation,
      id: c.id,
      hash: c.hash,
      status: 'done',
      scores: Object.fromEntries(Object.entries(scores).map(([k, s]) => [k, s.value])),
      error: null,
      buildSeconds: firstDetails.buildSeconds ?? 0,
      evaluateSeconds: seconds,
      waitSeconds: 0,
    });
  };

  const rungCount = field.length === 0 ? 0 : rungSchedule(full, field.length, racing).length;
  try {
    const outcome = await raceGeneration(field, order, full, scoreSlice, racing, {
      onRung: (k, indices) => {
        queue = indices.flatMap((i) => (field[i] !== undefined && needsWork(field[i], k) ? [field[i]] : []));
      },
      onStop: (index, rung) => onStop(index, rung, rungCount),
    });
    const race: RaceSummary = { objective: objective.name, rungs: outcome.rungs, itemsEvaluated: outcome.itemsEvaluated, fullPassItems: outcome.fullPassItems };
    return {
      stats: { candidates: finished, buildSeconds, evaluateSeconds, windowSeconds: nowSeconds() - windowStart, waitSeconds, firstBuildWaitSeconds },
      race,
    };
  } catch (err) {
    throw ctx.signal.aborted && !(err instanceof SearchInterruptedError) ? new SearchInterruptedError(ctx.runName) : err;
  } finally {
    // Stop builds in flight, wait for them (the materializer removes its temp files), and drop
    // every model still on disk (kept candidates' models stay, as without racing).
    inner.abort();
    await Promise.allSettled([...builds.values()]);
    for (const c of field) if (!(ctx.keepCandidates && status.get(c.id) === 'done')) await removeCandidate(ctx.workDir, c.id);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}
