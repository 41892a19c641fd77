import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { LlamaCppBackend } from '../eval/backend.js';
import { generationSeed } from '../eval/subset.js';
import type { InferenceBackend } from '../eval/types.js';
import type { KernelChoice } from '../merge/worker-protocol.js';
import type { JsonValue, NewCandidate, ResultRecord, RunStore, SlotRecord } from '../store/types.js';
import { CandidateBuilder, CheckpointCache, decodeCandidate } from './candidate-builder.js';
import { buildGenomeSchema, type GenomeSchema } from './genome.js';
import { initialGenomes } from './initial-genomes.js';
import { createOptimizer, optimizerFromState, recipeKeyHooks } from './optimizer-factory.js';
import type { Evaluated, Optimizer, OptimizerState } from './optimizer.js';
import { paretoFront } from './pareto.js';
import { RngStreams } from './rng.js';
import type { PipelineStats, PipelineTiming, RunEvent, SearchEvent } from './run-events.js';
import { loadEvaluators } from './run-evaluators.js';
import { openRun, type OpenRunOptions } from './run-open.js';
import { candidateDir, runPipeline, SearchInterruptedError } from './run-pipeline.js';
import { assertRaceable, racedObjective, runRacedGeneration, type RaceSummary } from './run-race.js';
import { RunSpaceError } from './run-space.js';
import type { ObjectiveSpec, SearchSpace } from './space.js';

/**
 * The search loop (design.md's data flow end to end), driven through the RunStore's resume
 * protocol so that a run killed at any moment continues to the same result:
 *
 *   restore the optimizer from the last recorded generation (or create it from the space's seed)
 *   for each generation g not yet recorded:
 *     ask → decode → recordCandidates (a replay after a crash records nothing new)
 *     build + evaluate the generation's unfinished candidates (run-pipeline.ts)
 *     tell the optimizer every slot of g (in slot order) → recordGeneration (states, front)
 *
 * The optimizer's state, RNG included, is saved with each generation, and asking is deterministic
 * given that state, so the genomes asked again after a crash are the ones asked before.
 */

export interface SearchOptions extends Omit<OpenRunOptions, 'packageVersion'> {
  /** Merge worker threads per candidate build. Default: the number of CPUs. */
  readonly jobs?: number;
  /** Working-memory budget of one merge, in bytes. Default: the materializer's. */
  readonly maxMemoryBytes?: number;
  /** Merge kernels. Default: 'native'. */
  readonly kernels?: KernelChoice;
  /**
   * Build the next candidate while the current one is evaluated (two candidates on disk at a
   * time). false: build, evaluate, build, ... (one at a time; the baseline the overlap is measured
   * against). Default: true.
   */
  readonly overlap?: boolean;
  /** Keep every candidate's model in `<run dir>/candidates/<id>/`. Default: false (deleted after evaluation). */
  readonly keepCandidates?: boolean;
  /** Interrupts the search: in-flight work is dropped, the run is marked stopped. Default: none. */
  readonly signal?: AbortSignal;
  /** Receives every event (see run-events.ts). Default: none. */
  readonly onEvent?: (event: SearchEvent) => void;
  /** Recorded with a new run. Default: '0.0.0'. */
  readonly packageVersion?: string;
  /**
   * Opens the inference backend, when an objective's evaluator needs one (built-in tasks, modules
   * exporting `needs = 'backend'`). Default: llama.cpp (LlamaCppBackend.open()), GGUFs written
   * during each candidate's build.
   */
  readonly openBackend?: () => Promise<InferenceBackend>;
}

/** Optimizers maximize; a minimized objective is negated on the way in. */
function oriented(o: ObjectiveSpec, value: number): number {
  return o.maximize ? value : -value;
}

/** The Pareto front over every result so far, best first on the first objective (ties: lower id). */
export function frontOf(results: readonly ResultRecord[], objectives: readonly ObjectiveSpec[]): number[] {
  const points = results.map((r) => objectives.map((o) => oriented(o, r.scores[o.name]?.value ?? Number.NaN)));
  const front = paretoFront(points).map((i) => ({ id: results[i]?.candidateId ?? 0, first: points[i]?.[0] ?? 0 }));
  return front.sort((a, b) => b.first - a.first || a.id - b.id).map((p) => p.id);
}

/** A slot as the optimizer is told it: failed candidates get NaN (the worst value). */
function toldOf(slot: SlotRecord, objectives: readonly ObjectiveSpec[]): Evaluated {
  const scores = slot.result?.scores;
  return {
    genome: slot.genome as unknown as Evaluated['genome'],
    objectives: objectives.map((o) => {
      const s = scores?.[o.name];
      return s === undefined ? Number.NaN : oriented(o, s.value);
    }),
    uncertainty: objectives.map((o) => scores?.[o.name]?.stderr ?? 0),
  };
}

function restoreOptimizer(space: SearchSpace, schema: GenomeSchema, saved: JsonValue | undefined, runName: string): Optimizer {
  const hooks = recipeKeyHooks(schema);
  if (saved === undefined) return createOptimizer(schema, new RngStreams(space.optimizer.seed), { hooks, initial: initialGenomes(schema, space.optimizer.initial) });
  const state = saved as unknown as OptimizerState;
  const same = state.shape.continuous === schema.shape.continuous && JSON.stringify(state.shape.categorical) === JSON.stringify(schema.shape.categorical);
  if (state.kind !== space.optimizer.kind || !same) {
    throw new RunSpaceError(
      'GENOME_CHANGED',
      `run '${runName}': the saved ${state.kind} optimizer has ${state.shape.continuous} continuous and ${state.shape.categorical.length} categorical genes, ` +
        `the space now gives a ${space.optimizer.kind} optimizer with ${schema.shape.continuous} and ${schema.shape.categorical.length}; start a new run (another name)`,
    );
  }
  return optimizerFromState(state, hooks);
}

/**
 * Removes what a killed run left in the work folder: models (and GGUFs) of candidates that will
 * be built again, and anything else that is not a kept candidate's.
 */
async function clearStaleWork(workDir: string, store: RunStore): Promise<void> {
  const unfinished = new Set((await store.pendingCandidates()).map((c) => String(c.id)));
  const entries = await readdir(workDir).catch(() => [] as string[]);
  for (const name of entries) {
    const id = /^(\d+)(\.gguf)?$/.exec(name)?.[1];
    if (id === undefined || unfinished.has(id)) await rm(path.join(workDir, name), { recursive: true, force: true });
  }
}

class TimingTotals {
  candidates = 0;
  buildSeconds = 0;
  evaluateSeconds = 0;
  windowSeconds = 0;
  waitSeconds = 0;
  firstBuildWaitSeconds = 0;
  /** The stats added last (one generation's). */
  last: PipelineStats = { candidates: 0, buildSeconds: 0, evaluateSeconds: 0, windowSeconds: 0, waitSeconds: 0, firstBuildWaitSeconds: 0 };

  add(s: PipelineStats): void {
    this.last = s;
    this.candidates += s.candidates;
    this.buildSeconds += s.buildSeconds;
    this.evaluateSeconds += s.evaluateSeconds;
    this.windowSeconds += s.windowSeconds;
    this.waitSeconds += s.waitSeconds;
    this.firstBuildWaitSeconds += s.firstBuildWaitSeconds;
  }

  summary(): PipelineTiming {
    const w = this.windowSeconds;
    return {
      candidates: this.candidates,
      buildSeconds: this.buildSeconds,
      evaluateSeconds: this.evaluateSeconds,
      windowSeconds: w,
      waitSeconds: this.waitSeconds,
      firstBuildWaitSeconds: this.firstBuildWaitSeconds,
      evaluatorIdleFraction: w > 0 ? Math.max(0, 1 - this.evaluateSeconds / w) : 0,
      overlapSpeedup: w > 0 ? (this.buildSeconds + this.evaluateSeconds) / w : 1,
    };
  }
}

/**
 * Starts or continues a search and runs it to its generation target (or max_evaluations, or until
 * the optimizer has no new recipe). Returns the final 'run' event; throws SearchInterruptedError
 * when `signal` fires (the run is then marked stopped) and any other EvoError on failure (the run
 * is marked failed; `evo resume` continues it).
 */
export async function runSearch(options: SearchOptions): Promise<RunEvent> {
  const started = performance.now() / 1000;
  const emit = options.onEvent ?? ((): void => {});
  const signal = options.signal ?? new AbortController().signal;
  // Stored model references are absolute paths or hub ids; relative ones would be the cwd's.
  const checkpoints = new CheckpointCache(process.cwd());
  // Everything that can be checked without the store is checked before a run is created or touched.
  const opened = await openRun({ ...options, packageVersion: options.packageVersion ?? '0.0.0' }, async (space) => {
    const base = await checkpoints.load(space.baseModel);
    const schema = buildGenomeSchema(space, base.config.numHiddenLayers);
    const evaluators = await loadEvaluators(space);
    assertRaceable(space.objectives, evaluators);
    return { schema, evaluators };
  });
  const { store, space, run, dbFile, targetGenerations } = opened;
  const { schema, evaluators } = opened.prepared;
  const runName = run.name;
  const timing = new TimingTotals();
  let backend: InferenceBackend | null = null;
  try {
    const snapshot = await store.latestOptimizerState();
    let generation = snapshot === undefined ? 0 : snapshot.generation + 1;
    if (opened.existed && run.status === 'finished' && generation >= targetGenerations) {
      // Nothing to do: report the run as it stands, without writing to it.
      emit({ event: 'note', run: runName, message: `run '${runName}' already has ${generation} generation(s); pass --generations N to continue it` });
      const done = await summaryEvent(store, runName, 'finished', 'generations', started, timing.summary());
      emit(done);
      return done;
    }
    if (opened.existed) {
      const unfinished = (await store.pendingCandidates()).length;
      await store.appendEvent('resumed', `resumed (status was ${run.status}; ${unfinished} unfinished candidate(s) to evaluate again)`, { unfinished });
      emit({ event: 'note', run: runName, message: `continuing run '${runName}' (${unfinished} unfinished candidate(s))` });
    }
    if ((await store.getRun())?.status !== 'running') await store.setRunStatus('running', opened.existed ? 'resumed' : undefined);
    const builder = new CandidateBuilder({
      mergeSeed: space.mergeSeed,
      checkpoints,
      ...(options.jobs !== undefined ? { jobs: options.jobs } : {}),
      ...(options.maxMemoryBytes !== undefined ? { maxMemoryBytes: options.maxMemoryBytes } : {}),
      ...(options.kernels !== undefined ? { kernels: options.kernels } : {}),
      onWarning: (message) => emit({ event: 'note', run: runName, message }),
    });
    if (evaluators.some((e) => e.needs === 'backend')) backend = await (options.openBackend ?? (() => LlamaCppBackend.open()))();
    const optimizer = restoreOptimizer(space, schema, snapshot?.optimizerState, runName);
    const workDir = path.join(path.dirname(dbFile), 'candidates');
    await clearStaleWork(workDir, store);

    let reason: RunEvent['reason'] = 'generations';
    let sessionGenerations = 0;
    let sessionEvaluations = 0;
    const pipeline = {
      runName,
      store,
      builder,
      schema,
      objectives: space.objectives,
      evaluators,
      workDir,
      keepCandidates: options.keepCandidates ?? false,
      overlap: options.overlap ?? true,
      spaceDir: space.spaceDir,
      subsetSeed: (g: number) => generationSeed(space.optimizer.seed, g),
      backend,
      gguf: evaluators.some((e) => e.needs === 'gguf') || backend?.needs === 'gguf',
      signal,
      emit,
    };
    while (generation < targetGenerations) {
      if (signal.aborted) throw new SearchInterruptedError(runName);
      const genStart = performance.now() / 1000;
      let batch = optimizer.nextBatchSize();
      if (space.optimizer.maxEvaluations !== null) {
        const spent = (await store.candidates()).filter((c) => c.generation < generation).length;
        batch = Math.min(batch, space.optimizer.maxEvaluations - spent);
        if (batch <= 0) {
          reason = 'max_evaluations';
          break;
        }
      }
      const genomes = optimizer.ask(batch);
      if (genomes.length === 0) {
        reason = 'exhausted';
        break;
      }
      const slots: NewCandidate[] = genomes.map((genome, index) => {
        const d = decodeCandidate(schema, genome);
        return { generation, index, genome: genome as unknown as JsonValue, config: d.configText, hash: d.hash };
      });
      await store.recordCandidates(slots);
      let race: RaceSummary | null = null;
      if (racedObjective(space.objectives) >= 0) {
        const raced = await runRacedGeneration(generation, pipeline);
        timing.add(raced.stats);
        race = raced.race;
      } else {
        timing.add(await runPipeline(await store.pendingCandidates(), pipeline));
      }
      const stats = timing.last;

      const told = (await store.candidatesOfGeneration(generation)).map((s) => toldOf(s, space.objectives));
      optimizer.tell(told);
      const state = optimizer.saveState();
      const front = frontOf(await store.results(), space.objectives);
      const seconds = performance.now() / 1000 - genStart;
      const recorded = await store.recordGeneration({
        generation,
        optimizerState: state as unknown as JsonValue,
        rngState: state.rng as unknown as JsonValue,
        front,
        seconds,
      });
      sessionGenerations++;
      sessionEvaluations += stats.candidates;
      const elapsed = performance.now() / 1000 - started;
      const s = recorded.summary;
      emit({
        event: 'generation',
        run: runName,
        generation,
        lastGeneration: targetGenerations - 1,
        slots: s.slots,
        evaluations: s.evaluations,
        failures: s.failures,
        reused: s.reused,
        best: s.best,
        median: s.median,
        front,
        seconds,
        evaluationsPerSecond: elapsed > 0 ? sessionEvaluations / elapsed : 0,
        etaSeconds: (elapsed / sessionGenerations) * Math.max(0, targetGenerations - 1 - generation),
        race: race === null ? null : { objective: race.objective, rungs: race.rungs, itemsEvaluated: race.itemsEvaluated, fullPassItems: race.fullPassItems },
      });
      generation++;
    }
    await store.setRunStatus('finished', reason === 'generations' ? `${targetGenerations} generations recorded` : reason);
    const done = await summaryEvent(store, runName, 'finished', reason, started, timing.summary());
    emit(done);
    return done;
  } catch (err) {
    if (err instanceof SearchInterruptedError) {
      await store.setRunStatus('stopped', 'interrupted').catch(() => undefined);
      const stopped = await summaryEvent(store, runName, 'stopped', 'interrupted', started, timing.summary()).catch(() => null);
      if (stopped !== null) emit(stopped);
    } else {
      const message = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
      await store.setRunStatus('failed', message).catch(() => undefined);
    }
    throw err;
  } finally {
    await backend?.close();
    await store.close();
  }
}

async function summaryEvent(
  store: RunStore,
  runName: string,
  status: RunEvent['status'],
  reason: RunEvent['reason'],
  startedSeconds: number,
  timing: PipelineTiming,
): Promise<RunEvent> {
  const overview = await store.overview();
  const front = await store.front();
  return {
    event: 'run',
    run: runName,
    status,
    reason,
    generations: overview?.generationsDone ?? 0,
    candidates: overview?.candidates ?? 0,
    evaluations: overview?.evaluations ?? 0,
    failures: overview?.failures ?? 0,
    best: overview?.best ?? {},
    front: front.map((f) => f.candidate.id),
    seconds: performance.now() / 1000 - startedSeconds,
    timing,
    store: store.location,
  };
}

export { candidateDir, SearchInterruptedError };
