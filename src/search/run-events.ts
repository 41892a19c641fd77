import type { ObjectiveBest } from '../store/types.js';

/**
 * What the runner reports while it works: one event per step, plain JSON (the CLI's `--json`
 * mode writes one per line on stdout; the text mode prints the generation and run events on
 * stderr). Times are wall seconds.
 */

/** A candidate's build started (its merge runs while the previous candidate is evaluated). */
export interface BuildEvent {
  readonly event: 'build';
  readonly run: string;
  readonly generation: number;
  readonly id: number;
}

/** A candidate's evaluation started. */
export interface EvaluateEvent {
  readonly event: 'evaluate';
  readonly run: string;
  readonly generation: number;
  readonly id: number;
}

/** A candidate is finished: scored (done) or failed. */
export interface CandidateEvent {
  readonly event: 'candidate';
  readonly run: string;
  readonly generation: number;
  readonly id: number;
  readonly hash: string;
  readonly status: 'done' | 'failed';
  /** Objective name → value (empty when failed). */
  readonly scores: Readonly<Record<string, number>>;
  readonly error: string | null;
  /** Seconds its merge took. */
  readonly buildSeconds: number;
  /** Seconds its evaluation took (0 when the build failed). */
  readonly evaluateSeconds: number;
  /** Seconds the evaluator waited for this candidate's build to finish. */
  readonly waitSeconds: number;
}

/** A generation was told to the optimizer and recorded. */
export interface GenerationEvent {
  readonly event: 'generation';
  readonly run: string;
  readonly generation: number;
  /** The generation the run stops after (0-based: target − 1). */
  readonly lastGeneration: number;
  readonly slots: number;
  /** Candidates evaluated in this generation (new recipes that reached done). */
  readonly evaluations: number;
  readonly failures: number;
  /** Slots whose recipe had been evaluated before. */
  readonly reused: number;
  readonly best: Readonly<Record<string, ObjectiveBest | null>>;
  readonly median: Readonly<Record<string, number | null>>;
  /** Candidate ids of the run's Pareto front after this generation. */
  readonly front: readonly number[];
  readonly seconds: number;
  /** Evaluations per second in this process so far. */
  readonly evaluationsPerSecond: number;
  /** Estimated seconds to the last generation, from this process's mean generation time. */
  readonly etaSeconds: number;
  /** The generation's race (objectives with `racing:`), or null when every candidate got the full limit. */
  readonly race: GenerationRace | null;
}

/** What successive halving cost in a generation, in items of the raced objective. */
export interface GenerationRace {
  readonly objective: string;
  /** Cumulative items and planned candidates per rung. */
  readonly rungs: readonly { readonly items: number; readonly candidates: number }[];
  /** Items scored in the race (slices recorded before a resume included). */
  readonly itemsEvaluated: number;
  /** Items every new candidate on the full limit would have cost. */
  readonly fullPassItems: number;
}

/** How well building and evaluating overlapped in this process. */
export interface PipelineTiming {
  /** Candidates built and evaluated (or failed) in this process. */
  readonly candidates: number;
  readonly buildSeconds: number;
  readonly evaluateSeconds: number;
  /** Wall seconds from each generation's first build to its last result, summed. */
  readonly windowSeconds: number;
  /** Seconds the evaluator waited for builds (windowSeconds − evaluateSeconds, less bookkeeping). */
  readonly waitSeconds: number;
  /** The part of waitSeconds spent on each generation's first build, which nothing can overlap. */
  readonly firstBuildWaitSeconds: number;
  /** 1 − evaluateSeconds / windowSeconds. */
  readonly evaluatorIdleFraction: number;
  /** (buildSeconds + evaluateSeconds) / windowSeconds: the speed-up over building then evaluating in turn. */
  readonly overlapSpeedup: number;
}

/** The run stopped: finished, stopped (interrupted), or nothing left to do. */
export interface RunEvent {
  readonly event: 'run';
  readonly run: string;
  readonly status: 'finished' | 'stopped';
  /** Why it stopped: 'generations', 'max_evaluations', 'exhausted' (no new recipes), 'interrupted'. */
  readonly reason: 'generations' | 'max_evaluations' | 'exhausted' | 'interrupted';
  /** Generations recorded in the store. */
  readonly generations: number;
  /** Candidates in the store, and how many of them are done. */
  readonly candidates: number;
  readonly evaluations: number;
  readonly failures: number;
  readonly best: Readonly<Record<string, ObjectiveBest | null>>;
  readonly front: readonly number[];
  /** Wall seconds of this process's search. */
  readonly seconds: number;
  readonly timing: PipelineTiming;
  readonly store: string;
}

/** A non-fatal message (a planner warning, a resume note). */
export interface NoteEvent {
  readonly event: 'note';
  readonly run: string;
  readonly message: string;
}

export type SearchEvent = BuildEvent | EvaluateEvent | CandidateEvent | GenerationEvent | RunEvent | NoteEvent;
