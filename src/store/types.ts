/**
 * The run store's records and its contract (design.md, Contracts: RunStore).
 *
 * A run lives in one store: SQLite (`runs/<name>/run.db`) by default, in memory for tests and dry
 * runs, and later PostgreSQL for several machines. The interface is asynchronous so that a network
 * backend can implement it unchanged.
 */

/** A JSON value as stored: no undefined, no NaN or ±Infinity, no class instances. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

export type RunStatus = 'running' | 'stopped' | 'finished' | 'failed';

/**
 * pending: recorded, not yet handed to an evaluator. running: handed out at least once (a crash
 * leaves it here; resume hands it out again). done: has its result. failed: evaluation gave up.
 * done and failed are final.
 */
export type CandidateStatus = 'pending' | 'running' | 'done' | 'failed';

export type ObjectiveDirection = 'maximize' | 'minimize';

export interface ObjectiveSpec {
  /** The objective's name as evaluators report it (a key of `NewResult.scores`). */
  readonly name: string;
  readonly direction: ObjectiveDirection;
}

/** Everything that defines a run, frozen when it is created. */
export interface NewRun {
  /** The run's name; the SQLite store keeps it in `runs/<name>/`. Letters, digits, `.`, `_`, `-`. */
  readonly name: string;
  /** The search space file's text exactly as read (so `evo show` can print what was searched). */
  readonly spaceText: string;
  /** The parsed, schema-checked search space. */
  readonly space: JsonValue;
  /** Hash of the normalized space; a resume with a different hash is refused (assertSameSpace). */
  readonly spaceHash: string;
  /** Named seeds (search, merge, eval, ...). */
  readonly seeds: Readonly<Record<string, number | string>>;
  /** The evomerge version that created the run. */
  readonly packageVersion: string;
  /** The objectives every result must score, in display order. At least one. */
  readonly objectives: readonly ObjectiveSpec[];
  /** The number of generations the run aims for. */
  readonly generations: number;
}

export interface RunRecord extends NewRun {
  readonly status: RunStatus;
  /** ISO 8601 UTC. */
  readonly createdAt: string;
  /** ISO 8601 UTC; moves on every write. */
  readonly updatedAt: string;
}

/** A genome the optimizer asked for, in generation `generation` at position `index`. */
export interface NewCandidate {
  readonly generation: number;
  /** Position within the generation's ask (0-based); (generation, index) is a slot. */
  readonly index: number;
  readonly genome: JsonValue;
  /** The decoded mergekit config (YAML text, possibly several documents). */
  readonly config: string;
  /** Hash of the recipe (the config); unique per run. */
  readonly hash: string;
}

export interface CandidateRecord {
  /** 1, 2, 3, ... in the order candidates were first recorded. */
  readonly id: number;
  /** The generation and index of the slot where this recipe first appeared. */
  readonly generation: number;
  readonly index: number;
  readonly genome: JsonValue;
  readonly config: string;
  readonly hash: string;
  readonly status: CandidateStatus;
  /** How many times evaluation was started (startEvaluation calls, including crashed ones). */
  readonly attempts: number;
  /** Why evaluation failed (status failed), else null. */
  readonly error: string | null;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
}

/** What recordCandidate returns: the stored candidate, and whether this call created it. */
export interface CandidateInsert {
  readonly candidate: CandidateRecord;
  /** false when a candidate with the same recipe hash already existed (it is returned instead). */
  readonly created: boolean;
}

/** One objective's score with its uncertainty and sample size. */
export interface ObjectiveScore {
  readonly value: number;
  /** Standard error of `value`, when the evaluator estimates one. Default: null. */
  readonly stderr?: number | null;
  /** Lower and upper bounds of the confidence interval. Default: null. */
  readonly ciLow?: number | null;
  readonly ciHigh?: number | null;
  /** Number of items (questions, samples) the score rests on. */
  readonly n: number;
}

export interface NewItemResult {
  readonly objective: string;
  readonly itemId: string;
  /** Whether the answer was right, for tasks with a right answer; else null. Default: null. */
  readonly correct?: boolean | null;
  readonly score: number;
}

/** An evaluation's outcome, recorded with the candidate's move to done. */
export interface NewResult {
  /** One entry per objective of the run, no more, no less. */
  readonly scores: Readonly<Record<string, ObjectiveScore>>;
  /** Items evaluated in total (over all objectives). */
  readonly itemsUsed: number;
  /** Wall seconds the evaluation took (materializing included, if the runner counts it). */
  readonly seconds: number;
  /** Size of the materialized candidate on disk, in bytes, when known. Default: null. */
  readonly modelBytes?: number | null;
  /** Evaluator-specific details (rungs, prompts, versions). Default: null. */
  readonly details?: JsonValue;
  /** Per-item results, for evaluators that report them. Default: none. */
  readonly items?: readonly NewItemResult[];
}

/**
 * One rung of a candidate's race inside its generation (successive halving, src/eval/racing.ts):
 * the items it answered in this rung, recorded before the race decides whether it goes on, so a
 * killed run resumes mid-race without scoring them again. Rungs of a candidate are 0, 1, 2, ...
 */
export interface NewRungResult {
  readonly rung: number;
  /** Scores of the objectives evaluated in this rung, each on this rung's items alone. At least one. */
  readonly scores: Readonly<Record<string, ObjectiveScore>>;
  /** Items evaluated in this rung (over its objectives). */
  readonly itemsUsed: number;
  /** Wall seconds of this rung's evaluation. */
  readonly seconds: number;
  /** Evaluator details of this rung. Default: null. */
  readonly details?: JsonValue;
  /** Per-item results; an item never repeats across a candidate's rungs. Default: none. */
  readonly items?: readonly NewItemResult[];
}

export interface RungResultRecord {
  readonly candidateId: number;
  readonly rung: number;
  /** Only the objectives evaluated in this rung. */
  readonly scores: Readonly<Record<string, ScoreRecord>>;
  readonly itemsUsed: number;
  readonly seconds: number;
  readonly details: JsonValue;
  readonly items: readonly ItemResultRecord[];
  readonly recordedAt: string;
}

export interface ScoreRecord {
  readonly value: number;
  readonly stderr: number | null;
  readonly ciLow: number | null;
  readonly ciHigh: number | null;
  readonly n: number;
}

export interface ResultRecord {
  readonly candidateId: number;
  readonly scores: Readonly<Record<string, ScoreRecord>>;
  readonly itemsUsed: number;
  readonly seconds: number;
  readonly modelBytes: number | null;
  readonly details: JsonValue;
  readonly recordedAt: string;
}

export interface ItemResultRecord {
  readonly candidateId: number;
  readonly objective: string;
  readonly itemId: string;
  readonly correct: boolean | null;
  readonly score: number;
}

/** A candidate with its result (null until it is done). */
export interface ScoredCandidate {
  readonly candidate: CandidateRecord;
  readonly result: ResultRecord | null;
}

/**
 * One slot of a generation's ask: the genome the optimizer proposed there and the candidate it
 * maps to (which may have first appeared in an earlier slot, when the recipes are identical).
 */
export interface SlotRecord {
  readonly generation: number;
  readonly index: number;
  readonly genome: JsonValue;
  readonly candidate: CandidateRecord;
  readonly result: ResultRecord | null;
}

/** Recorded once per generation, after the optimizer was told the generation's results. */
export interface NewGeneration {
  readonly generation: number;
  /** The optimizer's saveState() after tell(). */
  readonly optimizerState: JsonValue;
  /** The RNG streams' saved state after tell(). */
  readonly rngState: JsonValue;
  /** Candidate ids of the Pareto front over all results so far, in the order to display them. */
  readonly front: readonly number[];
  /** Wall seconds the generation took. */
  readonly seconds: number;
}

export interface ObjectiveBest {
  readonly candidateId: number;
  readonly value: number;
  readonly ciLow: number | null;
  readonly ciHigh: number | null;
  readonly n: number;
}

/** Computed by the store from the generation's slots when the generation is recorded. */
export interface GenerationSummary {
  readonly generation: number;
  /** Slots asked in this generation. */
  readonly slots: number;
  /** Candidates first recorded in this generation that reached done (new evaluations). */
  readonly evaluations: number;
  /** Candidates first recorded in this generation that failed. */
  readonly failures: number;
  /** Slots whose recipe had been recorded before (not evaluated again). */
  readonly reused: number;
  readonly seconds: number;
  readonly frontSize: number;
  /** Per objective: the best done candidate among this generation's slots, or null if none. */
  readonly best: Readonly<Record<string, ObjectiveBest | null>>;
  /** Per objective: the median value over this generation's done slots' candidates, or null. */
  readonly median: Readonly<Record<string, number | null>>;
  readonly recordedAt: string;
}

export interface GenerationRecord {
  readonly summary: GenerationSummary;
  readonly front: readonly number[];
}

export interface OptimizerSnapshot {
  readonly generation: number;
  readonly optimizerState: JsonValue;
  readonly rngState: JsonValue;
}

export type EventKind = 'created' | 'status' | 'interrupted' | 'resumed' | 'note';

export interface EventRecord {
  /** 1, 2, 3, ... */
  readonly id: number;
  readonly at: string;
  readonly kind: EventKind;
  readonly message: string;
  readonly data: JsonValue;
}

/** A run at a glance (for `evo runs`). */
export interface RunOverview {
  readonly name: string;
  readonly status: RunStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly objectives: readonly ObjectiveSpec[];
  readonly generationsTarget: number;
  /** Generations recorded (told and saved). */
  readonly generationsDone: number;
  readonly candidates: number;
  /** Candidates done (evaluated with a result). */
  readonly evaluations: number;
  readonly failures: number;
  /** Candidates pending or running. */
  readonly unfinished: number;
  /** Per objective: the best done candidate of the run, or null if none. */
  readonly best: Readonly<Record<string, ObjectiveBest | null>>;
}

/**
 * The run store. Its contract, which every backend passes (tests/store/contract.ts):
 *
 * - Each record* / create / set / append call is ONE transaction: after a crash (SIGKILL, power
 *   loss with the SQLite default synchronous=FULL) the store holds either all of it or none of it.
 *   In particular a result and the candidate's move to `done` commit together, and a generation's
 *   optimizer state, RNG state, summary and front commit together.
 * - Rows come back deeply frozen (Object.freeze) and are never changed afterwards; a later read
 *   returns a new record. Input objects are copied (through JSON where they are JSON), never kept.
 * - A finished candidate (done or failed) is never rewritten: startEvaluation, recordResult and
 *   recordFailure on it throw CandidateFinishedError (code CANDIDATE_FINISHED). A recorded
 *   generation is never rewritten either (GENERATION_RECORDED).
 * - Recipe hashes are unique per run: recording a candidate whose hash exists returns the existing
 *   candidate (created: false), so identical recipes are evaluated once. Re-recording a slot
 *   (generation, index) with the same hash and genome is a no-op that returns the same candidate;
 *   with a different one it throws RESUME_DIVERGED (the optimizer did not replay deterministically).
 * - Ids (candidates, events) are 1, 2, 3, ... in recording order, without gaps, so a run that is
 *   resumed and replayed assigns the same ids as one never interrupted.
 * - Failed checks throw a StoreError before anything is written.
 * - One writer and any number of readers at a time. A second writer is refused (RunLockedError,
 *   code RUN_LOCKED) by the SQLite store; a lease left by a dead process on the same host is taken
 *   over and an 'interrupted' event recorded. Readers see only committed transactions. Calls on
 *   one store object may overlap: each is atomic by itself, and their order is the caller's.
 *
 * Resume protocol this supports: getRun + assertSameSpace; latestOptimizerState → fromState;
 * for the next unrecorded generation g: ask, recordCandidate(s) (replays return the same ids),
 * evaluate pendingCandidates() (startEvaluation, then recordResult or recordFailure), tell the
 * optimizer candidatesOfGeneration(g) in slot order, recordGeneration.
 */
export interface RunStore {
  /** Where the store lives: a file path, or ':memory:'. */
  readonly location: string;
  readonly readonly: boolean;

  /** Creates the run (status running). Throws RUN_EXISTS if the store already holds one. */
  createRun(run: NewRun): Promise<RunRecord>;
  /** The run, or undefined if createRun was never called. */
  getRun(): Promise<RunRecord | undefined>;
  /** Moves the run to `status` and records a 'status' event with `note`. */
  setRunStatus(status: RunStatus, note?: string): Promise<RunRecord>;

  /** Records a candidate before evaluation (status pending), deduplicated by recipe hash. */
  recordCandidate(candidate: NewCandidate): Promise<CandidateInsert>;
  /** Records several candidates in one transaction (e.g. a whole generation's ask). */
  recordCandidates(candidates: readonly NewCandidate[]): Promise<readonly CandidateInsert[]>;
  /** pending | running → running, attempts + 1. */
  startEvaluation(candidateId: number): Promise<CandidateRecord>;
  /** running → done, with the result, its scores and item results, in one transaction. */
  recordResult(candidateId: number, result: NewResult): Promise<ScoredCandidate>;
  /**
   * Records one rung of a running candidate's race (items and scores of that rung) in one
   * transaction. Rungs come in order from 0 (RUNG_OUT_OF_ORDER otherwise); a finished candidate
   * throws CANDIDATE_FINISHED. The candidate's final recordResult is made separately.
   */
  recordRungResult(candidateId: number, rung: NewRungResult): Promise<RungResultRecord>;
  /** running → failed, with the reason. */
  recordFailure(candidateId: number, error: string): Promise<CandidateRecord>;
  /**
   * Records a generation after tell(): states, front and a computed summary. Every slot of the
   * generation must be finished, and generations are recorded in order without gaps.
   */
  recordGeneration(generation: NewGeneration): Promise<GenerationRecord>;
  appendEvent(kind: EventKind, message: string, data?: JsonValue): Promise<EventRecord>;

  candidate(id: number): Promise<CandidateRecord | undefined>;
  candidateByHash(hash: string): Promise<CandidateRecord | undefined>;
  /** All candidates in id order. */
  candidates(): Promise<readonly CandidateRecord[]>;
  /** The slots of a generation in index order, each with its candidate and result. */
  candidatesOfGeneration(generation: number): Promise<readonly SlotRecord[]>;
  /** Candidates recorded and not finished (pending or running), in id order: re-queue on resume. */
  pendingCandidates(): Promise<readonly CandidateRecord[]>;
  result(candidateId: number): Promise<ResultRecord | undefined>;
  /** All results in candidate id order. */
  results(): Promise<readonly ResultRecord[]>;
  /** A candidate's per-item results in the order they were recorded. */
  itemResults(candidateId: number): Promise<readonly ItemResultRecord[]>;
  /** A candidate's recorded rungs in rung order ([] for a candidate never raced). */
  rungResults(candidateId: number): Promise<readonly RungResultRecord[]>;
  /** The optimizer and RNG state of the last recorded generation, or undefined before the first. */
  latestOptimizerState(): Promise<OptimizerSnapshot | undefined>;
  /** The front of `generation` (default: the last recorded), with results; [] before the first. */
  front(generation?: number): Promise<readonly ScoredCandidate[]>;
  /**
   * The `limit` best done candidates on `objective` (default 1), best first, ties by lower id.
   * Throws UNKNOWN_OBJECTIVE for a name the run does not declare.
   */
  best(objective: string, limit?: number): Promise<readonly ScoredCandidate[]>;
  /** Every recorded generation's summary, in generation order. */
  generationSummaries(): Promise<readonly GenerationSummary[]>;
  events(): Promise<readonly EventRecord[]>;
  /** Counts and best values; undefined if the run was never created. */
  overview(): Promise<RunOverview | undefined>;

  /** Releases the writer lease and closes the backend. Further calls throw STORE_CLOSED. */
  close(): Promise<void>;
}
