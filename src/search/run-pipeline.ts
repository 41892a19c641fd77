import { rm } from 'node:fs/promises';
import path from 'node:path';
import { EvoError } from '../errors.js';
import type { InferenceBackend } from '../eval/types.js';
import { ConfigError } from '../merge/config-issue.js';
import { PlanError } from '../merge/plan-error.js';
import type { CandidateRecord, JsonValue, NewItemResult, ObjectiveScore, RunStore } from '../store/types.js';
import type { Genome } from './genome-vector.js';
import type { GenomeSchema } from './genome.js';
import { namedGenes, type BuiltCandidate, type CandidateBuilder } from './candidate-builder.js';
import type { SearchEvent } from './run-events.js';
import type { EvaluationCandidate, ObjectiveEvaluator, ObjectiveOutcome } from './run-evaluators.js';
import type { ObjectiveSpec } from './space.js';

/**
 * Builds and evaluates one generation's unfinished candidates with the merge of candidate k+1
 * running (on the merge pool's threads) while the evaluator scores candidate k, so the evaluator
 * waits only for the first build of a generation and for builds slower than evaluations.
 *
 * Store protocol per candidate: startEvaluation when its build starts (a crash from then on leaves
 * it `running`, and a resume builds and evaluates it again), then recordResult or recordFailure in
 * one transaction with its scores. Nothing else is written, so a SIGKILL anywhere loses at most the
 * candidates in flight, and no finished evaluation is ever repeated.
 */

/** The search was interrupted (SIGINT / SIGTERM, or the caller's AbortSignal). */
export class SearchInterruptedError extends EvoError {
  constructor(runName: string) {
    super('INTERRUPTED', `search interrupted; continue it with: evo resume ${runName}`);
    this.name = 'SearchInterruptedError';
  }
}

export interface PipelineContext {
  readonly runName: string;
  readonly store: RunStore;
  readonly builder: CandidateBuilder;
  readonly schema: GenomeSchema;
  readonly objectives: readonly ObjectiveSpec[];
  readonly evaluators: readonly ObjectiveEvaluator[];
  /** Folder holding one model directory per candidate in flight. */
  readonly workDir: string;
  /** Keep each candidate's model directory after its evaluation. */
  readonly keepCandidates: boolean;
  /** Folder of the space file (handed to evaluators). */
  readonly spaceDir: string;
  /** The item-subset seed of a generation (the same for all its candidates). */
  readonly subsetSeed: (generation: number) => number;
  /** The inference backend the objectives that need one share; the candidate is loaded into it once. */
  readonly backend: InferenceBackend | null;
  /** Write `<id>.gguf` beside each candidate's folder as part of its build (llama.cpp evaluators). */
  readonly gguf: boolean;
  /** Build candidate k+1 while candidate k is evaluated (false: one after the other). */
  readonly overlap: boolean;
  readonly signal: AbortSignal;
  readonly emit: (event: SearchEvent) => void;
}

/** Times of one generation's pipeline, in wall seconds. */
export interface PipelineStats {
  readonly candidates: number;
  readonly buildSeconds: number;
  readonly evaluateSeconds: number;
  readonly windowSeconds: number;
  readonly waitSeconds: number;
  readonly firstBuildWaitSeconds: number;
}

export type BuildOutcome =
  | { readonly kind: 'built'; readonly built: BuiltCandidate; readonly gguf: string | undefined; readonly seconds: number }
  | { readonly kind: 'failed'; readonly error: string; readonly seconds: number }
  | { readonly kind: 'fatal'; readonly error: unknown };

function nowSeconds(): number {
  return performance.now() / 1000;
}

/** Errors that belong to one recipe (its config cannot be planned), not to the run. */
function isRecipeError(err: unknown): err is EvoError {
  return err instanceof ConfigError || err instanceof PlanError;
}

/** The directory a candidate is built into. */
export function candidateDir(workDir: string, id: number): string {
  return path.join(workDir, String(id));
}

/** The GGUF written beside a candidate's directory when an evaluator needs one. */
export function candidateGguf(workDir: string, id: number): string {
  return path.join(workDir, `${id}.gguf`);
}

export async function removeCandidate(workDir: string, id: number): Promise<void> {
  await rm(candidateDir(workDir, id), { recursive: true, force: true });
  await rm(candidateGguf(workDir, id), { force: true });
}

/**
 * Starts a candidate's evaluation in the store and builds its model (and GGUF) into the work
 * folder. A recipe the planner rejects is that candidate's failure; anything else is fatal.
 */
export async function buildCandidate(c: CandidateRecord, ctx: PipelineContext, signal: AbortSignal): Promise<BuildOutcome> {
  const t0 = nowSeconds();
  try {
    await ctx.store.startEvaluation(c.id);
    ctx.emit({ event: 'build', run: ctx.runName, generation: c.generation, id: c.id });
    // A killed run may have left a partial directory for this candidate.
    await removeCandidate(ctx.workDir, c.id);
    const built = await ctx.builder.build(c.config, candidateDir(ctx.workDir, c.id), `candidate ${c.id} of run ${ctx.runName}`, signal);
    let gguf: string | undefined;
    if (ctx.gguf && !signal.aborted) {
      gguf = candidateGguf(ctx.workDir, c.id);
      await ctx.builder.writeGguf(built.dir, gguf);
    }
    return { kind: 'built', built, gguf, seconds: nowSeconds() - t0 };
  } catch (err) {
    if (isRecipeError(err) && !signal.aborted) return { kind: 'failed', error: err.message, seconds: nowSeconds() - t0 };
    return { kind: 'fatal', error: err };
  }
}

/** Builds and evaluates `pending` (one generation's unfinished candidates, in id order). */
export async function runPipeline(pending: readonly CandidateRecord[], ctx: PipelineContext): Promise<PipelineStats> {
  const inner = new AbortController();
  const onAbort = (): void => inner.abort();
  ctx.signal.addEventListener('abort', onAbort);
  if (ctx.signal.aborted) inner.abort();
  const windowStart = nowSeconds();
  let buildSeconds = 0;
  let evaluateSeconds = 0;
  let waitSeconds = 0;
  let firstBuildWaitSeconds = 0;
  let count = 0;

  const startBuild = (c: CandidateRecord): Promise<BuildOutcome> => buildCandidate(c, ctx, inner.signal);
  const discard = async (outcome: BuildOutcome | null, id: number): Promise<void> => {
    if (outcome?.kind === 'built') await removeCandidate(ctx.workDir, id);
  };

  let next: Promise<BuildOutcome> | null = pending[0] ? startBuild(pending[0]) : null;
  let nextId = pending[0]?.id ?? 0;
  try {
    for (let i = 0; i < pending.length; i++) {
      const c = pending[i];
      const current = next;
      if (!c || !current) break;
      const waitStart = nowSeconds();
      const outcome = await current;
      next = null;
      const waited = nowSeconds() - waitStart;
      waitSeconds += waited;
      if (i === 0) firstBuildWaitSeconds += waited;
      if (outcome.kind === 'fatal') {
        if (inner.signal.aborted) throw new SearchInterruptedError(ctx.runName);
        throw outcome.error;
      }
      if (ctx.signal.aborted) {
        await discard(outcome, c.id);
        throw new SearchInterruptedError(ctx.runName);
      }
      const following = pending[i + 1];
      const startFollowing = (): void => {
        if (following === undefined || ctx.signal.aborted) return;
        next = startBuild(following);
        nextId = following.id;
      };
      if (ctx.overlap) startFollowing();
      buildSeconds += outcome.seconds;
      count++;
      if (outcome.kind === 'failed') {
        await ctx.store.recordFailure(c.id, outcome.error);
        ctx.emit({ event: 'candidate', run: ctx.runName, generation: c.generation, id: c.id, hash: c.hash, status: 'failed', scores: {}, error: outcome.error, buildSeconds: outcome.seconds, evaluateSeconds: 0, waitSeconds: waited });
        if (!ctx.overlap) startFollowing();
        continue;
      }
      // The model is removed before its result is committed, so a done candidate never leaves one
      // behind (a kill in between leaves the candidate unfinished, and it is built again).
      const release = async (): Promise<void> => {
        if (!ctx.keepCandidates) await removeCandidate(ctx.workDir, c.id);
      };
      try {
        evaluateSeconds += await evaluateAndRecord(c, outcome.built, outcome.gguf, outcome.seconds, waited, ctx, inner.signal, release);
      } finally {
        await release();
      }
      if (!ctx.overlap) startFollowing();
    }
  } catch (err) {
    // Stop the build in flight, wait for it (the materializer removes its temp files) and drop it.
    inner.abort();
    if (next !== null) await discard(await next, nextId);
    throw ctx.signal.aborted && !(err instanceof SearchInterruptedError) ? new SearchInterruptedError(ctx.runName) : err;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
  return {
    candidates: count,
    buildSeconds,
    evaluateSeconds,
    windowSeconds: pending.length === 0 ? 0 : nowSeconds() - windowStart,
    waitSeconds,
    firstBuildWaitSeconds,
  };
}

/** What one objective is asked in an evaluation: its index in the space, and the racing slice (undefined: its seeded subset). */
export interface ObjectivePlan {
  readonly objective: number;
  readonly itemIds: readonly string[] | undefined;
}

/** The candidate as evaluators receive it. */
export function evaluationCandidate(c: CandidateRecord, built: BuiltCandidate, gguf: string | undefined, schema: GenomeSchema): EvaluationCandidate {
  return {
    id: String(c.id),
    candidateId: c.id,
    dir: built.dir,
    gguf,
    config: built.config,
    configText: c.config,
    genome: namedGenes(schema, c.genome as unknown as Genome),
    hash: c.hash,
    generation: c.generation,
  };
}

/**
 * Loads the candidate into the backend (when an objective needs it) and runs the planned
 * objectives in order, stopping at the first failure. Returns the outcomes so far and the
 * candidate's failure, if any (a model the engine cannot load, or a non-finite score).
 */
export async function scoreObjectives(
  c: CandidateRecord,
  candidate: EvaluationCandidate,
  plan: readonly ObjectivePlan[],
  ctx: PipelineContext,
  signal: AbortSignal,
): Promise<{ readonly outcomes: readonly ObjectiveOutcome[]; readonly failure: string | null }> {
  ctx.emit({ event: 'evaluate', run: ctx.runName, generation: c.generation, id: c.id });
  const needsBackend = plan.some((p) => ctx.evaluators[p.objective]?.needs === 'backend');
  if (ctx.backend !== null && needsBackend) {
    try {
      await ctx.backend.useModel({ id: candidate.id, dir: candidate.dir, gguf: candidate.gguf }, signal);
    } catch (err) {
      if (signal.aborted) throw new SearchInterruptedError(ctx.runName);
      // A merge the engine cannot load is this candidate's failure (a broken engine fails at start-up).
      return { outcomes: [], failure: `${ctx.backend.name} cannot load candidate ${c.id}: ${err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)}` };
    }
  }
  const outcomes: ObjectiveOutcome[] = [];
  for (const p of plan) {
    // An interruption between objectives drops the candidate; after the last one, its finished
    // evaluation is still recorded.
    if (signal.aborted) throw new SearchInterruptedError(ctx.runName);
    const objective = ctx.objectives[p.objective];
    const evaluator = ctx.evaluators[p.objective];
    if (!evaluator || !objective) throw new Error(`internal: no evaluator for objective ${p.objective}`);
    const outcome = await evaluator.evaluate(candidate, {
      objective: objective.name,
      limit: p.itemIds?.length ?? objective.limit ?? Number.POSITIVE_INFINITY,
      seed: ctx.subsetSeed(c.generation),
      split: 'search',
      itemIds: p.itemIds,
      generation: c.generation,
      backend: evaluator.needs === 'backend' ? (ctx.backend ?? undefined) : undefined,
      signal,
      spaceDir: ctx.spaceDir,
    });
    outcomes.push(outcome);
    if (outcome.failure !== null) return { outcomes, failure: outcome.failure };
  }
  return { outcomes, failure: null };
}

/** Runs every objective's evaluator on a built candidate and records the result; returns its seconds. */
async function evaluateAndRecord(
  c: CandidateRecord,
  built: BuiltCandidate,
  gguf: string | undefined,
  buildSeconds: number,
  waited: number,
  ctx: PipelineContext,
  signal: AbortSignal,
  release: () => Promise<void>,
): Promise<number> {
  const candidate = evaluationCandidate(c, built, gguf, ctx.schema);
  const t0 = nowSeconds();
  const { outcomes, failure } = await scoreObjectives(c, candidate, ctx.objectives.map((_, objective) => ({ objective, itemIds: undefined })), ctx, signal);
  const seconds = nowSeconds() - t0;
  await release();
  const base = { run: ctx.runName, generation: c.generation, id: c.id, hash: c.hash, buildSeconds, evaluateSeconds: seconds, waitSeconds: waited };
  if (failure !== null) {
    await ctx.store.recordFailure(c.id, failure);
    ctx.emit({ event: 'candidate', ...base, status: 'failed', scores: {}, error: failure });
    return seconds;
  }
  const scores: Record<string, ObjectiveScore> = {};
  const details: Record<string, JsonValue> = {};
  const items: NewItemResult[] = [];
  let itemsUsed = 0;
  ctx.objectives.forEach((o, i) => {
    const outcome = outcomes[i];
    if (!outcome) return;
    scores[o.name] = outcome.score;
    details[o.name] = outcome.details;
    items.push(...outcome.items);
    itemsUsed += outcome.itemsUsed;
  });
  await ctx.store.recordResult(c.id, {
    scores,
    itemsUsed,
    seconds,
    modelBytes: built.summary.bytesWritten,
    details: { evaluators: details, timing: { buildSeconds, evaluateSeconds: seconds } },
    items,
  });
  ctx.emit({ event: 'candidate', ...base, status: 'done', scores: Object.fromEntries(Object.entries(scores).map(([k, s]) => [k, s.value])), error: null });
  return seconds;
}
