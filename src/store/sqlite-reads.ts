/**
 * The SQLite run store's reads: row shapes of schema v1 and their conversion into the frozen
 * records of types.ts. Plain functions of a connection, shared by the store's queries and by the
 * checks its writes make inside their transactions.
 */
import type { Database } from 'better-sqlite3';
import { StoreError } from './errors.js';
import { deepFreeze, parseJsonText, type SlotFacts } from './records.js';
import type { CandidateRecord, CandidateStatus, EventKind, ObjectiveSpec, ResultRecord, RunRecord, RunStatus, ScoreRecord, ScoredCandidate } from './types.js';

export interface RunRow {
  name: string;
  space_text: string;
  space_json: string;
  space_hash: string;
  seeds_json: string;
  objectives_json: string;
  package_version: string;
  generations_target: number;
  status: RunStatus;
  created_at: string;
  updated_at: string;
}

export interface CandidateRow {
  id: number;
  generation: number;
  slot: number;
  genome_json: string;
  config_yaml: string;
  recipe_hash: string;
  status: CandidateStatus;
  attempts: number;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface SlotRow {
  slot: number;
  candidate_id: number;
  genome_json: string;
  recipe_hash: string;
}

export interface EventRow {
  id: number;
  at: string;
  kind: EventKind;
  message: string;
  data_json: string;
}

interface ResultRow {
  items_used: number;
  seconds: number;
  model_bytes: number | null;
  details_json: string;
  recorded_at: string;
}

interface ScoreRow {
  objective: string;
  value: number;
  stderr: number | null;
  ci_low: number | null;
  ci_high: number | null;
  n: number;
}

export const CANDIDATE_COLUMNS = 'id, generation, slot, genome_json, config_yaml, recipe_hash, status, attempts, error, created_at, started_at, finished_at';

const SLOT_QUERY = 'SELECT s.slot, s.candidate_id, s.genome_json, c.recipe_hash FROM slot s JOIN candidate c ON c.id = s.candidate_id WHERE s.generation = ?';

export function readRunRow(db: Database): RunRow | undefined {
  return db
    .prepare<[], RunRow>(
      `SELECT name, space_text, space_json, space_hash, seeds_json, objectives_json, package_version, generations_target,
         status, created_at, updated_at FROM run WHERE singleton = 1`,
    )
    .get();
}

export function runRecord(row: RunRow): RunRecord {
  return deepFreeze({
    name: row.name,
    spaceText: row.space_text,
    space: parseJsonText(row.space_json),
    spaceHash: row.space_hash,
    seeds: JSON.parse(row.seeds_json) as Record<string, number | string>,
    packageVersion: row.package_version,
    objectives: JSON.parse(row.objectives_json) as ObjectiveSpec[],
    generations: row.generations_target,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}

export function readCandidateRow(db: Database, id: number): CandidateRow | undefined {
  return db.prepare<[number], CandidateRow>(`SELECT ${CANDIDATE_COLUMNS} FROM candidate WHERE id = ?`).get(id);
}

/** The candidate, or UNKNOWN_CANDIDATE. */
export function existingCandidateRow(db: Database, id: number): CandidateRow {
  const row = readCandidateRow(db, id);
  if (row === undefined) throw new StoreError('UNKNOWN_CANDIDATE', `candidate ${id} does not exist in this run`);
  return row;
}

export function candidateRecord(row: CandidateRow): CandidateRecord {
  return deepFreeze({
    id: row.id,
    generation: row.generation,
    index: row.slot,
    genome: parseJsonText(row.genome_json),
    config: row.config_yaml,
    hash: row.recipe_hash,
    status: row.status,
    attempts: row.attempts,
    error: row.error,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  });
}

/** A candidate's scores, keyed in the run's objective order. */
export function readScores(db: Database, candidateId: number, objectives: readonly ObjectiveSpec[]): Record<string, ScoreRecord> {
  const rows = new Map(
    db
      .prepare<[number], ScoreRow>('SELECT objective, value, stderr, ci_low, ci_high, n FROM score WHERE candidate_id = ?')
      .all(candidateId)
      .map((r) => [r.objective, r]),
  );
  const scores: Record<string, ScoreRecord> = {};
  for (const o of objectives) {
    const r = rows.get(o.name);
    if (r !== undefined) scores[o.name] = { value: r.value, stderr: r.stderr, ciLow: r.ci_low, ciHigh: r.ci_high, n: r.n };
  }
  return scores;
}

export function readResult(db: Database, candidateId: number, objectives: readonly ObjectiveSpec[]): ResultRecord | null {
  const r = db
    .prepare<[number], ResultRow>('SELECT items_used, seconds, model_bytes, details_json, recorded_at FROM result WHERE candidate_id = ?')
    .get(candidateId);
  if (r === undefined) return null;
  return deepFreeze({
    candidateId,
    scores: readScores(db, candidateId, objectives),
    itemsUsed: r.items_used,
    seconds: r.seconds,
    modelBytes: r.model_bytes,
    details: parseJsonText(r.details_json),
    recordedAt: r.recorded_at,
  });
}

export function readScored(db: Database, row: CandidateRow, objectives: readonly ObjectiveSpec[]): ScoredCandidate {
  return deepFreeze({ candidate: candidateRecord(row), result: readResult(db, row.id, objectives) });
}

export function readSlot(db: Database, generation: number, index: number): SlotRow | undefined {
  return db.prepare<[number, number], SlotRow>(`${SLOT_QUERY} AND s.slot = ?`).get(generation, index);
}

export function readSlots(db: Database, generation: number): SlotRow[] {
  return db.prepare<[number], SlotRow>(`${SLOT_QUERY} ORDER BY s.slot`).all(generation);
}

/** What the generation checks and summary need about each slot of `generation`. */
export function readSlotFacts(db: Database, generation: number, objectives: readonly ObjectiveSpec[]): SlotFacts[] {
  return readSlots(db, generation).map((r) => {
    const c = existingCandidateRow(db, r.candidate_id);
    return {
      index: r.slot,
      candidateId: c.id,
      candidateGeneration: c.generation,
      candidateIndex: c.slot,
      status: c.status,
      scores: c.status === 'done' ? readScores(db, c.id, objectives) : null,
    };
  });
}

/** The last recorded generation, or undefined before the first. */
export function lastGeneration(db: Database): number | undefined {
  return db.prepare<[], { g: number | null }>('SELECT max(generation) AS g FROM generation').get()?.g ?? undefined;
}

/** Ids of the `limit` best done candidates on an objective in records.ts rankForBest's order. */
export function bestIds(db: Database, spec: ObjectiveSpec, limit: number): number[] {
  const order = spec.direction === 'maximize' ? 'DESC' : 'ASC';
  return db
    .prepare<[string, string, number], { candidate_id: number }>(
      `SELECT candidate_id FROM score WHERE objective = ? ORDER BY n >= (SELECT max(n) FROM score WHERE objective = ?) DESC, value ${order}, candidate_id ASC LIMIT ?`,
    )
    .all(spec.name, spec.name, limit)
    .map((r) => r.candidate_id);
}
