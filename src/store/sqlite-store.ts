/**
 * The embedded RunStore: one SQLite database per run (`runs/<name>/run.db` by default; the caller
 * passes the path), in WAL mode so readers (`evo runs`, `evo show`) never block the writer. Every
 * write is one IMMEDIATE transaction; synchronous=FULL by default makes each commit durable.
 */
import type { Database as Db } from 'better-sqlite3';
import { CandidateFinishedError, StoreError } from './errors.js';
import { releaseWriterLease, type WriterLease } from './lock.js';
import {
  checkEvent,
  checkGenerationWritable,
  checkNonNegativeInt,
  checkRunStatus,
  checkSlotReplay,
  deepFreeze,
  encodeNewCandidate,
  encodeNewGeneration,
  encodeNewResult,
  encodeNewRun,
  encodeRungResult,
  isFinished,
  isoTime,
  parseJsonText,
  summarizeGeneration,
  toJsonText,
} from './records.js';
import { openRunDatabase, type SqliteRunStoreOptions } from './sqlite-open.js';
import {
  bestIds,
  CANDIDATE_COLUMNS,
  candidateRecord,
  existingCandidateRow,
  lastGeneration,
  readCandidateRow,
  readResult,
  readRunRow,
  readScored,
  readScores,
  readSlot,
  readSlotFacts,
  readSlots,
  runRecord,
  type CandidateRow,
  type EventRow,
} from './sqlite-reads.js';
import type {
  CandidateInsert,
  CandidateRecord,
  CandidateStatus,
  EventKind,
  EventRecord,
  GenerationRecord,
  GenerationSummary,
  ItemResultRecord,
  JsonValue,
  NewCandidate,
  NewGeneration,
  NewResult,
  NewRun,
  NewRungResult,
  ObjectiveBest,
  ObjectiveSpec,
  OptimizerSnapshot,
  ResultRecord,
  RunOverview,
  RunRecord,
  RunStatus,
  RunStore,
  RungResultRecord,
  ScoreRecord,
  ScoredCandidate,
  SlotRecord,
} from './types.js';

export type { SqliteRunStoreOptions } from './sqlite-open.js';

/**
 * Opens (creating if needed) a run database. A writer takes the run's lease (RUN_LOCKED if a live
 * process holds it), migrates the schema and records an 'interrupted' event when it took over
 * from a writer that died; a reader (`readonly: true`) does none of that.
 */
export function openSqliteRunStore(file: string, options: SqliteRunStoreOptions = {}): SqliteRunStore {
  return new SqliteRunStore(file, options);
}

export class SqliteRunStore implements RunStore {
  readonly location: string;
  readonly readonly: boolean;
  /** The lease this writer holds (null for readers). */
  readonly lease: WriterLease | null;
  /** The previous writer's lease this open replaced (it was killed, crashed, or --break-lock), else null. */
  readonly replacedLease: WriterLease | null;
  /** The schema version the file had before this open migrated it (0: new file; readers: the current one). */
  readonly schemaVersionFound: number;
  readonly #db: Db;
  readonly #clock: () => number;
  #closed = false;
  #objectives: readonly ObjectiveSpec[] | undefined;

  constructor(file: string, options: SqliteRunStoreOptions = {}) {
    this.location = file;
    this.readonly = options.readonly ?? false;
    this.#clock = options.clock ?? Date.now;
    const opened = openRunDatabase(file, options, () => this.#now());
    this.#db = opened.db;
    this.lease = opened.lease;
    this.replacedLease = opened.replacedLease;
    this.schemaVersionFound = opened.schemaVersionFound;
  }

  async createRun(newRun: NewRun): Promise<RunRecord> {
    this.#writable();
    const e = encodeNewRun(newRun);
    const now = this.#now();
    this.#tx(() => {
      const existing = readRunRow(this.#db);
      if (existing !== undefined) throw new StoreError('RUN_EXISTS', `${this.location} already holds run '${existing.name}'; open it to resume instead of creating it`);
      this.#db
        .prepare(
          `INSERT INTO run (singleton, name, space_text, space_json, space_hash, seeds_json, objectives_json, package_version,
             generations_target, status, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)`,
        )
        .run(e.run.name, e.run.spaceText, e.spaceJson, e.run.spaceHash, e.seedsJson, e.objectivesJson, e.run.packageVersion, e.run.generations, now, now);
      this.#insertEvent(now, 'created', `run '${e.run.name}' created`, 'null');
    });
    return this.#requireRun();
  }

  async getRun(): Promise<RunRecord | undefined> {
    this.#open();
    const row = readRunRow(this.#db);
    return row === undefined ? undefined : runRecord(row);
  }

  async setRunStatus(status: RunStatus, note?: string): Promise<RunRecord> {
    this.#writable();
    checkRunStatus(status);
    const now = this.#now();
    this.#tx(() => {
      const run = this.#requireRun();
      const message = `${run.status} → ${status}${note === undefined || note === '' ? '' : `: ${note}`}`;
      this.#insertEvent(now, 'status', message, JSON.stringify({ from: run.status, to: status }));
      this.#db.prepare('UPDATE run SET status = ?, updated_at = ? WHERE singleton = 1').run(status, now);
    });
    return this.#requireRun();
  }

  async recordCandidate(candidate: NewCandidate): Promise<CandidateInsert> {
    const [insert] = await this.recordCandidates([candidate]);
    if (insert === undefined) throw new Error('recordCandidates returned nothing for one candidate');
    return insert;
  }

  async recordCandidates(candidates: readonly NewCandidate[]): Promise<readonly CandidateInsert[]> {
    this.#writable();
    const encoded = candidates.map((c, i) => encodeNewCandidate(c, candidates.length === 1 ? 'candidate' : `candidates[${i}]`));
    const now = this.#now();
    const byHash = this.#db.prepare<[string], { id: number }>('SELECT id FROM candidate WHERE recipe_hash = ?');
    const insertCandidate = this.#db.prepare(
      `INSERT INTO candidate (generation, slot, genome_json, config_yaml, recipe_hash, status, attempts, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', 0, ?)`,
    );
    const insertSlot = this.#db.prepare('INSERT INTO slot (generation, slot, candidate_id, genome_json) VALUES (?, ?, ?, ?)');
    const plan = this.#tx(() => {
      this.#requireRun();
      const out: { id: number; created: boolean }[] = [];
      for (const c of encoded) {
        const known = readSlot(this.#db, c.generation, c.index);
        if (known !== undefined) {
          checkSlotReplay(c, { candidateHash: known.recipe_hash, genomeJson: known.genome_json, candidateId: known.candidate_id });
          out.push({ id: known.candidate_id, created: false });
          continue;
        }
        const existing = byHash.get(c.hash);
        const id = existing?.id ?? Number(insertCandidate.run(c.generation, c.index, c.genomeJson, c.config, c.hash, now).lastInsertRowid);
        insertSlot.run(c.generation, c.index, id, c.genomeJson);
        this.#touch(now);
        out.push({ id, created: existing === undefined });
      }
      return out;
    });
    return deepFreeze(plan.map((p) => ({ candidate: candidateRecord(existingCandidateRow(this.#db, p.id)), created: p.created })));
  }

  async startEvaluation(candidateId: number): Promise<CandidateRecord> {
    this.#writable();
    const now = this.#now();
    this.#tx(() => {
      this.#requireRun();
      const row = existingCandidateRow(this.#db, candidateId);
      if (isFinished(row.status)) throw new CandidateFinishedError(candidateId, row.status, 'startEvaluation');
      this.#db.prepare("UPDATE candidate SET status = 'running', attempts = attempts + 1, started_at = ? WHERE id = ?").run(now, candidateId);
      this.#touch(now);
    });
    return candidateRecord(existingCandidateRow(this.#db, candidateId));
  }

  async recordResult(candidateId: number, result: NewResult): Promise<ScoredCandidate> {
    this.#writable();
    const now = this.#now();
    this.#tx(() => {
      const run = this.#requireRun();
      const row = existingCandidateRow(this.#db, candidateId);
      if (isFinished(row.status)) throw new CandidateFinishedError(candidateId, row.status, 'recordResult');
      const e = encodeNewResult(result, run.objectives, candidateId);
      if (row.status !== 'running') {
        throw new StoreError('CANDIDATE_NOT_RUNNING', `candidate ${candidateId} is ${row.status}; call startEvaluation before recording its result`);
      }
      this.#db
        .prepare('INSERT INTO result (candidate_id, items_used, seconds, model_bytes, details_json, recorded_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(candidateId, e.itemsUsed, e.seconds, e.modelBytes, e.detailsJson, now);
      const score = this.#db.prepare('INSERT INTO score (candidate_id, objective, value, stderr, ci_low, ci_high, n) VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const s of e.scores) score.run(candidateId, s.objective, s.value, s.stderr, s.ciLow, s.ciHigh, s.n);
      const item = this.#db.prepare('INSERT INTO item_result (candidate_id, objective, item_id, correct, score) VALUES (?, ?, ?, ?, ?)');
      for (const i of e.items) item.run(candidateId, i.objective, i.itemId, i.correct === null ? null : i.correct ? 1 : 0, i.score);
      this.#db.prepare("UPDATE candidate SET status = 'done', finished_at = ? WHERE id = ?").run(now, candidateId);
      this.#touch(now);
    });
    return this.#scored(existingCandidateRow(this.#db, candidateId));
  }

  async recordRungResult(candidateId: number, rung: NewRungResult): Promise<RungResultRecord> {
    this.#writable();
    const now = this.#now();
    let recorded = 0;
    this.#tx(() => {
      const run = this.#requireRun();
      const row = existingCandidateRow(this.#db, candidateId);
      if (isFinished(row.status)) throw new CandidateFinishedError(candidateId, row.status, 'recordRungResult');
      const e = encodeRungResult(rung, run.objectives, candidateId, this.#readRungs(candidateId));
      if (row.status !== 'running') {
        throw new StoreError('CANDIDATE_NOT_RUNNING', `candidate ${candidateId} is ${row.status}; call startEvaluation before recording a rung`);
      }
      this.#db
        .prepare('INSERT INTO rung_result (candidate_id, rung, scores_json, items_used, seconds, details_json, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(candidateId, e.rung, e.scoresJson, e.itemsUsed, e.seconds, e.detailsJson, now);
      const item = this.#db.prepare('INSERT INTO rung_item (candidate_id, rung, objective, item_id, correct, score) VALUES (?, ?, ?, ?, ?, ?)');
      for (const i of e.items) item.run(candidateId, e.rung, i.objective, i.itemId, i.correct === null ? null : i.correct ? 1 : 0, i.score);
      this.#touch(now);
      recorded = e.rung;
    });
    return this.#readRungs(candidateId)[recorded] as RungResultRecord;
  }

  async rungResults(candidateId: number): Promise<readonly RungResultRecord[]> {
    this.#open();
    return this.#read(() => this.#readRungs(candidateId));
  }

  #readRungs(candidateId: number): readonly RungResultRecord[] {
    const rungs = this.#db
      .prepare<[number], { rung: number; scores_json: string; items_used: number; seconds: number; details_json: string; recorded_at: string }>(
        'SELECT rung, scores_json, items_used, seconds, details_json, recorded_at FROM rung_result WHERE candidate_id = ? ORDER BY rung',
      )
      .all(candidateId);
    const items = this.#db
      .prepare<[number], { rung: number; objective: string; item_id: string; correct: number | null; score: number }>(
        'SELECT rung, objective, item_id, correct, score FROM rung_item WHERE candidate_id = ? ORDER BY seq',
      )
      .all(candidateId);
    return deepFreeze(
      rungs.map((r) => ({
        candidateId,
        rung: r.rung,
        scores: parseJsonText(r.scores_json) as unknown as Record<string, ScoreRecord>,
        itemsUsed: r.items_used,
        seconds: r.seconds,
        details: parseJsonText(r.details_json),
        items: items
          .filter((i) => i.rung === r.rung)
          .map((i) => ({ candidateId, objective: i.objective, itemId: i.item_id, correct: i.correct === null ? null : i.correct === 1, score: i.score })),
        recordedAt: r.recorded_at,
      })),
    );
  }

  async recordFailure(candidateId: number, error: string): Promise<CandidateRecord> {
    this.#writable();
    const now = this.#now();
    this.#tx(() => {
      this.#requireRun();
      const row = existingCandidateRow(this.#db, candidateId);
      if (isFinished(row.status)) throw new CandidateFinishedError(candidateId, row.status, 'recordFailure');
      if (typeof error !== 'string') throw new StoreError('BAD_INPUT', `failure of candidate ${candidateId}: error must be a string`);
      if (row.status !== 'running') {
        throw new StoreError('CANDIDATE_NOT_RUNNING', `candidate ${candidateId} is ${row.status}; call startEvaluation before recording its failure`);
      }
      this.#db.prepare("UPDATE candidate SET status = 'failed', error = ?, finished_at = ? WHERE id = ?").run(error, now, candidateId);
      this.#touch(now);
    });
    return candidateRecord(existingCandidateRow(this.#db, candidateId));
  }

  async recordGeneration(generation: NewGeneration): Promise<GenerationRecord> {
    this.#writable();
    const g = encodeNewGeneration(generation);
    const now = this.#now();
    const summary = this.#tx(() => {
      const run = this.#requireRun();
      const facts = readSlotFacts(this.#db, g.generation, run.objectives);
      checkGenerationWritable(g, lastGeneration(this.#db), facts, (id) => readCandidateRow(this.#db, id)?.status);
      const s = summarizeGeneration(g, run.objectives, facts, now);
      this.#db
        .prepare('INSERT INTO generation (generation, optimizer_state_json, rng_state_json, summary_json, seconds, recorded_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(g.generation, g.optimizerStateJson, g.rngStateJson, JSON.stringify(s), g.seconds, now);
      const member = this.#db.prepare('INSERT INTO front_member (generation, position, candidate_id) VALUES (?, ?, ?)');
      g.front.forEach((id, position) => member.run(g.generation, position, id));
      this.#touch(now);
      return s;
    });
    return deepFreeze({ summary, front: [...g.front] });
  }

  async appendEvent(kind: EventKind, message: string, data: JsonValue = null): Promise<EventRecord> {
    this.#writable();
    checkEvent(kind, message);
    const dataJson = toJsonText(data, 'event data');
    const now = this.#now();
    const id = this.#tx(() => this.#insertEvent(now, kind, message, dataJson));
    return deepFreeze({ id, at: now, kind, message, data: parseJsonText(dataJson) });
  }

  async candidate(id: number): Promise<CandidateRecord | undefined> {
    this.#open();
    const row = readCandidateRow(this.#db, id);
    return row === undefined ? undefined : candidateRecord(row);
  }

  async candidateByHash(hash: string): Promise<CandidateRecord | undefined> {
    this.#open();
    const row = this.#db.prepare<[string], CandidateRow>(`SELECT ${CANDIDATE_COLUMNS} FROM candidate WHERE recipe_hash = ?`).get(hash);
    return row === undefined ? undefined : candidateRecord(row);
  }

  async candidates(): Promise<readonly CandidateRecord[]> {
    this.#open();
    const rows = this.#db.prepare<[], CandidateRow>(`SELECT ${CANDIDATE_COLUMNS} FROM candidate ORDER BY id`).all();
    return deepFreeze(rows.map(candidateRecord));
  }

  async candidatesOfGeneration(generation: number): Promise<readonly SlotRecord[]> {
    this.#open();
    return this.#read(() =>
      deepFreeze(
        readSlots(this.#db, generation).map((r) => {
          const scored = this.#scored(existingCandidateRow(this.#db, r.candidate_id));
          return { generation, index: r.slot, genome: parseJsonText(r.genome_json), candidate: scored.candidate, result: scored.result };
        }),
      ),
    );
  }

  async pendingCandidates(): Promise<readonly CandidateRecord[]> {
    this.#open();
    const rows = this.#db.prepare<[], CandidateRow>(`SELECT ${CANDIDATE_COLUMNS} FROM candidate WHERE status IN ('pending', 'running') ORDER BY id`).all();
    return deepFreeze(rows.map(candidateRecord));
  }

  async result(candidateId: number): Promise<ResultRecord | undefined> {
    this.#open();
    return this.#read(() => readResult(this.#db, candidateId, this.#objectivesOf()) ?? undefined);
  }

  async results(): Promise<readonly ResultRecord[]> {
    this.#open();
    return this.#read(() => {
      const ids = this.#db.prepare<[], { candidate_id: number }>('SELECT candidate_id FROM result ORDER BY candidate_id').all();
      return deepFreeze(ids.flatMap((r) => readResult(this.#db, r.candidate_id, this.#objectivesOf()) ?? []));
    });
  }

  async itemResults(candidateId: number): Promise<readonly ItemResultRecord[]> {
    this.#open();
    const rows = this.#db
      .prepare<[number], { objective: string; item_id: string; correct: number | null; score: number }>(
        'SELECT objective, item_id, correct, score FROM item_result WHERE candidate_id = ? ORDER BY seq',
      )
      .all(candidateId);
    return deepFreeze(rows.map((r) => ({ candidateId, objective: r.objective, itemId: r.item_id, correct: r.correct === null ? null : r.correct === 1, score: r.score })));
  }

  async latestOptimizerState(): Promise<OptimizerSnapshot | undefined> {
    this.#open();
    const row = this.#db
      .prepare<[], { generation: number; optimizer_state_json: string; rng_state_json: string }>(
        'SELECT generation, optimizer_state_json, rng_state_json FROM generation ORDER BY generation DESC LIMIT 1',
      )
      .get();
    if (row === undefined) return undefined;
    return deepFreeze({ generation: row.generation, optimizerState: parseJsonText(row.optimizer_state_json), rngState: parseJsonText(row.rng_state_json) });
  }

  async front(generation?: number): Promise<readonly ScoredCandidate[]> {
    this.#open();
    return this.#read(() => {
      const g = generation ?? lastGeneration(this.#db);
      if (g === undefined) return deepFreeze([]);
      const ids = this.#db.prepare<[number], { candidate_id: number }>('SELECT candidate_id FROM front_member WHERE generation = ? ORDER BY position').all(g);
      return deepFreeze(ids.map((r) => this.#scored(existingCandidateRow(this.#db, r.candidate_id))));
    });
  }

  async best(objective: string, limit = 1): Promise<readonly ScoredCandidate[]> {
    this.#open();
    const run = this.#requireRun();
    const spec = run.objectives.find((o) => o.name === objective);
    if (spec === undefined) {
      throw new StoreError('UNKNOWN_OBJECTIVE', `objective '${objective}' is not one of run '${run.name}''s objectives (${run.objectives.map((o) => o.name).join(', ')})`);
    }
    checkNonNegativeInt(limit, 'best(): limit');
    return this.#read(() => deepFreeze(bestIds(this.#db, spec, limit).map((id) => this.#scored(existingCandidateRow(this.#db, id)))));
  }

  async generationSummaries(): Promise<readonly GenerationSummary[]> {
    this.#open();
    const rows = this.#db.prepare<[], { summary_json: string }>('SELECT summary_json FROM generation ORDER BY generation').all();
    return deepFreeze(rows.map((r) => JSON.parse(r.summary_json) as GenerationSummary));
  }

  async events(): Promise<readonly EventRecord[]> {
    this.#open();
    const rows = this.#db.prepare<[], EventRow>('SELECT id, at, kind, message, data_json FROM event ORDER BY id').all();
    return deepFreeze(rows.map((r) => ({ id: r.id, at: r.at, kind: r.kind, message: r.message, data: parseJsonText(r.data_json) })));
  }

  async overview(): Promise<RunOverview | undefined> {
    this.#open();
    return this.#read(() => this.#overview());
  }

  #overview(): RunOverview | undefined {
    const row = readRunRow(this.#db);
    if (row === undefined) return undefined;
    const run = runRecord(row);
    const counts = new Map(
      this.#db.prepare<[], { status: CandidateStatus; n: number }>('SELECT status, count(*) AS n FROM candidate GROUP BY status').all().map((r) => [r.status, r.n]),
    );
    const count = (s: CandidateStatus): number => counts.get(s) ?? 0;
    const best: Record<string, ObjectiveBest | null> = {};
    for (const o of run.objectives) {
      const id = bestIds(this.#db, o, 1)[0];
      const s = id === undefined ? undefined : readScores(this.#db, id, run.objectives)[o.name];
      best[o.name] = id === undefined || s === undefined ? null : { candidateId: id, value: s.value, ciLow: s.ciLow, ciHigh: s.ciHigh, n: s.n };
    }
    return deepFreeze({
      name: run.name,
      status: run.status,
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
      objectives: run.objectives,
      generationsTarget: run.generations,
      generationsDone: this.#db.prepare<[], { n: number }>('SELECT count(*) AS n FROM generation').get()?.n ?? 0,
      candidates: count('pending') + count('running') + count('done') + count('failed'),
      evaluations: count('done'),
      failures: count('failed'),
      unfinished: count('pending') + count('running'),
      best,
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.lease !== null) releaseWriterLease(this.#db, this.lease.token);
    } finally {
      this.#db.close();
    }
  }

  /** Runs reads in one (deferred) transaction, so they see one snapshot while a writer commits. */
  #read<T>(fn: () => T): T {
    return this.#db.inTransaction ? fn() : this.#db.transaction(fn).deferred();
  }

  /** Runs `fn` in one IMMEDIATE transaction (rolled back if it throws). */
  #tx<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  #open(): void {
    if (this.#closed) throw new StoreError('STORE_CLOSED', `${this.location}: the run store is closed`);
  }

  #writable(): void {
    this.#open();
    if (this.readonly) throw new StoreError('STORE_READONLY', `${this.location}: opened read-only; open it without readonly to write`);
  }

  #now(): string {
    return isoTime(this.#clock());
  }

  #requireRun(): RunRecord {
    const row = readRunRow(this.#db);
    if (row === undefined) throw new StoreError('RUN_MISSING', `${this.location} holds no run yet; call createRun first`);
    return runRecord(row);
  }

  /** The run's objectives; they never change once the run exists. */
  #objectivesOf(): readonly ObjectiveSpec[] {
    if (this.#objectives === undefined) {
      const row = readRunRow(this.#db);
      if (row === undefined) return [];
      this.#objectives = JSON.parse(row.objectives_json) as ObjectiveSpec[];
    }
    return this.#objectives;
  }

  #scored(row: CandidateRow): ScoredCandidate {
    return readScored(this.#db, row, this.#objectivesOf());
  }

  #touch(now: string): void {
    this.#db.prepare('UPDATE run SET updated_at = ? WHERE singleton = 1').run(now);
  }

  #insertEvent(at: string, kind: EventKind, message: string, dataJson: string): number {
    return Number(this.#db.prepare('INSERT INTO event (at, kind, message, data_json) VALUES (?, ?, ?, ?)').run(at, kind, message, dataJson).lastInsertRowid);
  }
}
