/**
 * Pure functions shared by every RunStore backend: input checks, JSON encoding, freezing and the
 * summaries the store computes. Keeping them here makes the backends agree to the bit.
 */
import { CandidateFinishedError, StoreError } from './errors.js';
import type {
  CandidateStatus,
  EventKind,
  GenerationSummary,
  JsonValue,
  NewCandidate,
  NewGeneration,
  NewItemResult,
  NewResult,
  NewRun,
  NewRungResult,
  ObjectiveBest,
  ObjectiveDirection,
  ObjectiveScore,
  ObjectiveSpec,
  RunRecord,
  RunStatus,
  ScoreRecord,
} from './types.js';

/** Letters, digits, `.`, `_`, `-`; starts with a letter or digit; at most 100 characters. */
const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const RUN_STATUSES: readonly RunStatus[] = ['running', 'stopped', 'finished', 'failed'];
export const EVENT_KINDS: readonly EventKind[] = ['created', 'status', 'interrupted', 'resumed', 'note'];

export function isFinished(status: CandidateStatus): boolean {
  return status === 'done' || status === 'failed';
}

export function assertRunName(name: string): void {
  if (!RUN_NAME.test(name)) {
    throw new StoreError(
      'BAD_RUN_NAME',
      `run name ${JSON.stringify(name)} is not allowed: use letters, digits, '.', '_' or '-', starting with a letter or digit, at most 100 characters`,
    );
  }
}

function bad(field: string, rule: string, got: unknown): StoreError {
  return new StoreError('BAD_INPUT', `${field} must be ${rule}, got ${describe(got)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value;
}

export function checkNonNegativeInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad(field, 'a non-negative integer', value);
  return value;
}

function checkFinite(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(field, 'a finite number', value);
  // SQLite stores -0.0 as integer 0; every backend does the same.
  return value === 0 ? 0 : value;
}

function checkNonNegative(value: unknown, field: string): number {
  const x = checkFinite(value, field);
  if (x < 0) throw bad(field, 'a finite number ≥ 0', value);
  return x;
}

function checkOptionalFinite(value: unknown, field: string): number | null {
  return value === undefined || value === null ? null : checkFinite(value, field);
}

function checkText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw bad(field, 'a non-empty string', value);
  return value;
}

/**
 * JSON text of `value`, refusing what JSON.stringify would silently change: NaN and ±Infinity
 * (→ null), typed arrays and Maps (→ objects of indices or {}), undefined in arrays (→ null),
 * bigint and functions. Undefined object properties are dropped, as in JSON.
 */
export function toJsonText(value: unknown, field: string): string {
  checkJson(value, field);
  return JSON.stringify(value);
}

function checkJson(value: unknown, path: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new StoreError('BAD_JSON', `${path}: ${value} is not representable in JSON`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item: unknown, i) => {
      if (item === undefined) throw new StoreError('BAD_JSON', `${path}[${i}]: undefined is not representable in JSON`);
      checkJson(item, `${path}[${i}]`);
    });
    return;
  }
  if (typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new StoreError(
        'BAD_JSON',
        `${path}: a ${describe(value)} is not plain JSON; convert it first (e.g. Array.from for typed arrays)`,
      );
    }
    for (const [key, item] of Object.entries(value)) {
      if (item !== undefined) checkJson(item, `${path}.${key}`);
    }
    return;
  }
  throw new StoreError('BAD_JSON', `${path}: a ${typeof value} is not representable in JSON`);
}

export function parseJsonText(text: string): JsonValue {
  return JSON.parse(text) as JsonValue;
}

/** Freezes `value` and everything reachable from it; returns it typed as itself. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** A run checked and with its JSON parts encoded, ready to store. */
export interface EncodedRun {
  readonly run: NewRun;
  readonly spaceJson: string;
  readonly seedsJson: string;
  readonly objectivesJson: string;
}

export function encodeNewRun(run: NewRun): EncodedRun {
  assertRunName(run.name);
  if (typeof run.spaceText !== 'string') throw bad('run.spaceText', 'a string', run.spaceText);
  checkText(run.spaceHash, 'run.spaceHash');
  checkText(run.packageVersion, 'run.packageVersion');
  if (typeof run.generations !== 'number' || !Number.isSafeInteger(run.generations) || run.generations < 1) {
    throw bad('run.generations', 'a positive integer', run.generations);
  }
  if (run.seeds === null || typeof run.seeds !== 'object' || Array.isArray(run.seeds)) throw bad('run.seeds', 'an object of named seeds', run.seeds);
  const seeds: Record<string, number | string> = {};
  for (const [key, seed] of Object.entries(run.seeds)) {
    if (typeof seed === 'string') seeds[key] = seed;
    else seeds[key] = checkFinite(seed, `run.seeds.${key}`);
  }
  if (!Array.isArray(run.objectives) || run.objectives.length === 0) throw bad('run.objectives', 'a non-empty array', run.objectives);
  const objectives: ObjectiveSpec[] = [];
  const seen = new Set<string>();
  run.objectives.forEach((o: ObjectiveSpec, i: number) => {
    const name = checkText(o.name, `run.objectives[${i}].name`);
    if (seen.has(name)) throw bad(`run.objectives[${i}].name`, 'unique', name);
    seen.add(name);
    if (o.direction !== 'maximize' && o.direction !== 'minimize') throw bad(`run.objectives[${i}].direction`, "'maximize' or 'minimize'", o.direction);
    objectives.push({ name, direction: o.direction });
  });
  const spaceJson = toJsonText(run.space, 'run.space');
  const normalized: NewRun = {
    name: run.name,
    spaceText: run.spaceText,
    space: parseJsonText(spaceJson),
    spaceHash: run.spaceHash,
    seeds,
    packageVersion: run.packageVersion,
    objectives,
    generations: run.generations,
  };
  return { run: normalized, spaceJson, seedsJson: JSON.stringify(seeds), objectivesJson: JSON.stringify(objectives) };
}

export interface EncodedCandidate {
  readonly generation: number;
  readonly index: number;
  readonly genomeJson: string;
  readonly config: string;
  readonly hash: string;
}

export function encodeNewCandidate(c: NewCandidate, field = 'candidate'): EncodedCandidate {
  return {
    generation: checkNonNegativeInt(c.generation, `${field}.generation`),
    index: checkNonNegativeInt(c.index, `${field}.index`),
    genomeJson: toJsonText(c.genome, `${field}.genome`),
    config: checkText(c.config, `${field}.config`),
    hash: checkText(c.hash, `${field}.hash`),
  };
}

export interface EncodedItem {
  readonly objective: string;
  readonly itemId: string;
  readonly correct: boolean | null;
  readonly score: number;
}

export interface EncodedResult {
  /** In the run's objective order. */
  readonly scores: readonly (ScoreRecord & { readonly objective: string })[];
  readonly itemsUsed: number;
  readonly seconds: number;
  readonly modelBytes: number | null;
  readonly detailsJson: string;
  readonly items: readonly EncodedItem[];
}

function encodeScore(s: ObjectiveScore, f: string): ScoreRecord {
  const ciLow = checkOptionalFinite(s.ciLow, `${f}.ciLow`);
  const ciHigh = checkOptionalFinite(s.ciHigh, `${f}.ciHigh`);
  if (ciLow !== null && ciHigh !== null && ciLow > ciHigh) throw bad(`${f}.ciLow`, `≤ ciHigh (${ciHigh})`, ciLow);
  const stderr = s.stderr === undefined || s.stderr === null ? null : checkNonNegative(s.stderr, `${f}.stderr`);
  return { value: checkFinite(s.value, `${f}.value`), stderr, ciLow, ciHigh, n: checkNonNegativeInt(s.n, `${f}.n`) };
}

function checkScoreKeys(scores: unknown, declared: ReadonlySet<string>, field: string): void {
  if (scores === null || typeof scores !== 'object') throw bad(`${field}: scores`, 'an object keyed by objective', scores);
  for (const name of Object.keys(scores)) {
    if (!declared.has(name)) {
      throw new StoreError('UNKNOWN_OBJECTIVE', `${field}: objective '${name}' is not one of the run's objectives (${[...declared].join(', ')})`);
    }
  }
}

/** Items checked and encoded; `seen` holds the (objective, item) keys already taken (earlier rungs). */
function encodeItems(items: readonly NewItemResult[], declared: ReadonlySet<string>, field: string, seen: Set<string> = new Set()): EncodedItem[] {
  const out: EncodedItem[] = [];
  items.forEach((item: NewItemResult, i: number) => {
    const f = `${field}: items[${i}]`;
    if (!declared.has(item.objective)) {
      throw new StoreError('UNKNOWN_OBJECTIVE', `${f}: objective '${String(item.objective)}' is not one of the run's objectives`);
    }
    const itemId = checkText(item.itemId, `${f}.itemId`);
    const key = JSON.stringify([item.objective, itemId]);
    if (seen.has(key)) throw bad(`${f}.itemId`, `unique per objective ('${item.objective}')`, itemId);
    seen.add(key);
    const correct = item.correct === undefined || item.correct === null ? null : item.correct;
    if (correct !== null && typeof correct !== 'boolean') throw bad(`${f}.correct`, 'a boolean or null', correct);
    out.push({ objective: item.objective, itemId, correct, score: checkFinite(item.score, `${f}.score`) });
  });
  return out;
}

export function encodeNewResult(result: NewResult, objectives: readonly ObjectiveSpec[], candidateId: number): EncodedResult {
  const field = `result of candidate ${candidateId}`;
  const declared = new Set(objectives.map((o) => o.name));
  checkScoreKeys(result.scores, declared, field);
  const scores = objectives.map((o) => {
    const s = result.scores[o.name];
    if (s === undefined) throw bad(`${field}: scores.${o.name}`, 'present (every objective of the run is scored)', s);
    return { objective: o.name, ...encodeScore(s, `${field}: scores.${o.name}`) };
  });
  const items = encodeItems(result.items ?? [], declared, field);
  const modelBytes = result.modelBytes === undefined || result.modelBytes === null ? null : checkNonNegativeInt(result.modelBytes, `${field}: modelBytes`);
  return {
    scores,
    itemsUsed: checkNonNegativeInt(result.itemsUsed, `${field}: itemsUsed`),
    seconds: checkNonNegative(result.seconds, `${field}: seconds`),
    modelBytes,
    detailsJson: toJsonText(result.details ?? null, `${field}: details`),
    items,
  };
}

export interface EncodedRungResult {
  readonly rung: number;
  readonly scoresJson: string;
  readonly itemsUsed: number;
  readonly seconds: number;
  readonly detailsJson: string;
  readonly items: readonly EncodedItem[];
}

/**
 * Checks one rung of a candidate's race. `earlier` are the rungs already recorded for it: the new
 * one must come next (0, 1, 2, ...), and its items must not repeat an item of an earlier rung
 * (a rung scores the next slice of one order, never an item twice).
 */
export function encodeRungResult(
  r: NewRungResult,
  objectives: readonly ObjectiveSpec[],
  candidateId: number,
  earlier: readonly { readonly rung: number; readonly items: readonly { readonly objective: string; readonly itemId: string }[] }[],
): EncodedRungResult {
  const field = `rung ${String(r.rung)} of candidate ${candidateId}`;
  const rung = checkNonNegativeInt(r.rung, `${field}: rung`);
  if (rung !== earlier.length) {
    throw new StoreError('RUNG_OUT_OF_ORDER', `${field}: candidate ${candidateId} has ${earlier.length} rung(s) recorded, so the next is rung ${earlier.length}, got ${rung}`);
  }
  const declared = new Set(objectives.map((o) => o.name));
  checkScoreKeys(r.scores, declared, field);
  const scores: Record<string, ScoreRecord> = {};
  for (const o of objectives) {
    const s = r.scores[o.name];
    if (s !== undefined) scores[o.name] = encodeScore(s, `${field}: scores.${o.name}`);
  }
  if (Object.keys(scores).length === 0) throw bad(`${field}: scores`, 'at least one objective', r.scores);
  const seen = new Set(earlier.flatMap((e) => e.items.map((i) => JSON.stringify([i.objective, i.itemId]))));
  return {
    rung,
    scoresJson: JSON.stringify(scores),
    itemsUsed: checkNonNegativeInt(r.itemsUsed, `${field}: itemsUsed`),
    seconds: checkNonNegative(r.seconds, `${field}: seconds`),
    detailsJson: toJsonText(r.details ?? null, `${field}: details`),
    items: encodeItems(r.items ?? [], declared, field, seen),
  };
}

export interface EncodedGeneration {
  readonly generation: number;
  readonly optimizerStateJson: string;
  readonly rngStateJson: string;
  readonly front: readonly number[];
  readonly seconds: number;
}

export function encodeNewGeneration(g: NewGeneration): EncodedGeneration {
  const generation = checkNonNegativeInt(g.generation, 'generation.generation');
  const field = `generation ${generation}`;
  if (!Array.isArray(g.front)) throw bad(`${field}: front`, 'an array of candidate ids', g.front);
  const front = g.front.map((id: unknown, i: number) => checkNonNegativeInt(id, `${field}: front[${i}]`));
  if (new Set(front).size !== front.length) throw bad(`${field}: front`, 'free of repeated ids', front.join(','));
  return {
    generation,
    optimizerStateJson: toJsonText(g.optimizerState, `${field}: optimizerState`),
    rngStateJson: toJsonText(g.rngState, `${field}: rngState`),
    front,
    seconds: checkNonNegative(g.seconds, `${field}: seconds`),
  };
}

export function checkEvent(kind: EventKind, message: string): void {
  if (!EVENT_KINDS.includes(kind)) throw bad('event kind', `one of ${EVENT_KINDS.join(', ')}`, kind);
  if (typeof message !== 'string') throw bad('event message', 'a string', message);
}

export function checkRunStatus(status: RunStatus): void {
  if (!RUN_STATUSES.includes(status)) throw bad('run status', `one of ${RUN_STATUSES.join(', ')}`, status);
}

/** The 'status' event setRunStatus records: `running → stopped: note`, with from/to as data. */
export function statusEvent(from: RunStatus, to: RunStatus, note: string | undefined): { readonly message: string; readonly dataJson: string } {
  return { message: `${from} → ${to}${note === undefined || note === '' ? '' : `: ${note}`}`, dataJson: JSON.stringify({ from, to }) };
}

/** The candidates of one recordCandidates call, checked and encoded; errors name `candidate` or `candidates[i]`. */
export function encodeNewCandidates(candidates: readonly NewCandidate[]): EncodedCandidate[] {
  return candidates.map((c, i) => encodeNewCandidate(c, candidates.length === 1 ? 'candidate' : `candidates[${i}]`));
}

/** What a candidate write needs to know about the stored candidate. */
interface CandidateState {
  readonly status: CandidateStatus;
}

/** startEvaluation's check: a finished candidate is never started again. */
export function checkStartable(row: CandidateState, candidateId: number): void {
  if (isFinished(row.status)) throw new CandidateFinishedError(candidateId, row.status, 'startEvaluation');
}

function checkRunning(row: CandidateState, candidateId: number, what: 'result' | 'failure'): void {
  if (row.status !== 'running') {
    throw new StoreError('CANDIDATE_NOT_RUNNING', `candidate ${candidateId} is ${row.status}; call startEvaluation before recording its ${what}`);
  }
}

/**
 * recordResult's checks, in the order every backend makes them: the candidate is not finished,
 * the result is well-formed for the run's objectives, the candidate is running.
 */
export function encodeResultOf(row: CandidateState, candidateId: number, result: NewResult, objectives: readonly ObjectiveSpec[]): EncodedResult {
  if (isFinished(row.status)) throw new CandidateFinishedError(candidateId, row.status, 'recordResult');
  const encoded = encodeNewResult(result, objectives, candidateId);
  checkRunning(row, candidateId, 'result');
  return encoded;
}

/** recordRungResult's checks: the candidate is not finished, the rung is well-formed and follows the earlier ones, the candidate is running. */
export function encodeRungResultOf(
  row: CandidateState,
  candidateId: number,
  rung: NewRungResult,
  objectives: readonly ObjectiveSpec[],
  earlier: Parameters<typeof encodeRungResult>[3],
): ReturnType<typeof encodeRungResult> {
  if (isFinished(row.status)) throw new CandidateFinishedError(candidateId, row.status, 'recordRungResult');
  const encoded = encodeRungResult(rung, objectives, candidateId, earlier);
  if (row.status !== 'running') {
    throw new StoreError('CANDIDATE_NOT_RUNNING', `candidate ${candidateId} is ${row.status}; call startEvaluation before recording a rung`);
  }
  return encoded;
}

/** recordFailure's checks: the candidate is not finished, the error is a string, the candidate is running. */
export function checkFailureWritable(row: CandidateState, candidateId: number, error: unknown): void {
  if (isFinished(row.status)) throw new CandidateFinishedError(candidateId, row.status, 'recordFailure');
  if (typeof error !== 'string') throw new StoreError('BAD_INPUT', `failure of candidate ${candidateId}: error must be a string`);
  checkRunning(row, candidateId, 'failure');
}

/** best()'s checks: the objective is one of the run's (its spec is returned) and the limit a non-negative integer. */
export function checkBestQuery(run: RunRecord, objective: string, limit: number): ObjectiveSpec {
  const spec = run.objectives.find((o) => o.name === objective);
  if (spec === undefined) {
    throw new StoreError('UNKNOWN_OBJECTIVE', `objective '${objective}' is not one of run '${run.name}''s objectives (${run.objectives.map((o) => o.name).join(', ')})`);
  }
  checkNonNegativeInt(limit, 'best(): limit');
  return spec;
}

/** Negative when `a` is better than `b` on an objective; ties go to the lower candidate id. */
export function compareForObjective(direction: ObjectiveDirection, a: { id: number; value: number }, b: { id: number; value: number }): number {
  if (a.value !== b.value) return direction === 'maximize' ? b.value - a.value : a.value - b.value;
  return a.id - b.id;
}

interface RankedScore {
  readonly id: number;
  readonly value: number;
  readonly n: number;
}

/**
 * `scores` in best()'s order: candidates scored on the largest item count among them come first
 * (under racing, the finalists: an estimate from a first rung's few items does not outrank a full
 * evaluation), then by value as compareForObjective. A new array; the input is not reordered.
 */
export function rankForBest<T extends RankedScore>(direction: ObjectiveDirection, scores: readonly T[]): T[] {
  let fullN = 0;
  for (const s of scores) fullN = Math.max(fullN, s.n);
  return [...scores].sort((a, b) => {
    const aFull = a.n >= fullN;
    const bFull = b.n >= fullN;
    if (aFull !== bFull) return aFull ? -1 : 1;
    return compareForObjective(direction, a, b);
  });
}

/** Median of the values (mean of the middle two for an even count), or null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? 0;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] ?? 0) + hi) / 2;
}

/** What the summary needs about one slot. */
export interface SlotFacts {
  readonly index: number;
  readonly candidateId: number;
  readonly candidateGeneration: number;
  readonly candidateIndex: number;
  readonly status: CandidateStatus;
  readonly scores: Readonly<Record<string, ScoreRecord>> | null;
}

/** The best done candidate per objective among `entries` (in best()'s order, rankForBest). */
export function bestPerObjective(
  objectives: readonly ObjectiveSpec[],
  entries: readonly { readonly id: number; readonly scores: Readonly<Record<string, ScoreRecord>> }[],
): Record<string, ObjectiveBest | null> {
  const best: Record<string, ObjectiveBest | null> = {};
  for (const o of objectives) {
    const scored = entries.flatMap((e) => {
      const s = e.scores[o.name];
      return s === undefined ? [] : [{ id: e.id, value: s.value, n: s.n, s }];
    });
    const top = rankForBest(o.direction, scored)[0];
    best[o.name] = top === undefined ? null : { candidateId: top.id, value: top.s.value, ciLow: top.s.ciLow, ciHigh: top.s.ciHigh, n: top.s.n };
  }
  return best;
}

export function summarizeGeneration(
  g: EncodedGeneration,
  objectives: readonly ObjectiveSpec[],
  slots: readonly SlotFacts[],
  recordedAt: string,
): GenerationSummary {
  const firstHere = slots.filter((s) => s.candidateGeneration === g.generation && s.candidateIndex === s.index);
  const distinct = new Map<number, Readonly<Record<string, ScoreRecord>>>();
  for (const s of slots) if (s.status === 'done' && s.scores !== null) distinct.set(s.candidateId, s.scores);
  const entries = [...distinct].map(([id, scores]) => ({ id, scores }));
  const med: Record<string, number | null> = {};
  for (const o of objectives) {
    med[o.name] = median(
      entries.flatMap((e) => {
        const s = e.scores[o.name];
        return s === undefined ? [] : [s.value];
      }),
    );
  }
  return {
    generation: g.generation,
    slots: slots.length,
    evaluations: firstHere.filter((s) => s.status === 'done').length,
    failures: firstHere.filter((s) => s.status === 'failed').length,
    reused: slots.length - firstHere.length,
    seconds: g.seconds,
    frontSize: g.front.length,
    best: bestPerObjective(objectives, entries),
    median: med,
    recordedAt,
  };
}

/** The checks recordGeneration makes before writing, shared so both backends word them alike. */
export function checkGenerationWritable(
  g: EncodedGeneration,
  lastRecorded: number | undefined,
  slots: readonly SlotFacts[],
  frontStatus: (id: number) => CandidateStatus | undefined,
): void {
  if (lastRecorded !== undefined && g.generation <= lastRecorded) {
    throw new StoreError(
      g.generation === lastRecorded ? 'GENERATION_RECORDED' : 'GENERATION_OUT_OF_ORDER',
      g.generation === lastRecorded
        ? `generation ${g.generation} is already recorded; a recorded generation is never rewritten`
        : `generation ${g.generation} comes before the last recorded generation ${lastRecorded}`,
    );
  }
  if (lastRecorded !== undefined && g.generation !== lastRecorded + 1) {
    throw new StoreError('GENERATION_OUT_OF_ORDER', `generation ${g.generation} skips ahead: the last recorded generation is ${lastRecorded}, so the next is ${lastRecorded + 1}`);
  }
  if (slots.length === 0) {
    throw new StoreError('GENERATION_INCOMPLETE', `generation ${g.generation} has no recorded candidates; record the ask before the generation`);
  }
  const open = slots.filter((s) => !isFinished(s.status)).map((s) => s.candidateId);
  if (open.length > 0) {
    throw new StoreError('GENERATION_INCOMPLETE', `generation ${g.generation} still has unfinished candidates: ${[...new Set(open)].join(', ')}`);
  }
  for (const id of g.front) {
    const status = frontStatus(id);
    if (status !== 'done') {
      throw new StoreError(
        status === undefined ? 'UNKNOWN_CANDIDATE' : 'BAD_INPUT',
        status === undefined ? `generation ${g.generation}: front names candidate ${id}, which does not exist` : `generation ${g.generation}: front names candidate ${id}, which is ${status}, not done`,
      );
    }
  }
}

/** The slot re-record check: same slot, same recipe and genome, or the replay diverged. */
export function checkSlotReplay(
  c: EncodedCandidate,
  existing: { readonly candidateHash: string; readonly genomeJson: string; readonly candidateId: number },
): void {
  if (existing.candidateHash !== c.hash || existing.genomeJson !== c.genomeJson) {
    const what = existing.candidateHash !== c.hash ? `recipe ${existing.candidateHash} (candidate ${existing.candidateId}), now asked ${c.hash}` : 'a different genome with the same recipe';
    throw new StoreError(
      'RESUME_DIVERGED',
      `generation ${c.generation} slot ${c.index} was recorded with ${what}: the optimizer did not replay deterministically (check the saved optimizer/RNG state)`,
    );
  }
}
