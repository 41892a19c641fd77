/**
 * A RunStore held in memory, for tests and dry runs. It keeps the same contract as the SQLite
 * store: every write checks everything first and only then changes state, so a failed call leaves
 * the store as it was (the in-memory form of "one transaction").
 */
import { StoreError } from './errors.js';
import {
  bestPerObjective,
  checkBestQuery,
  checkEvent,
  checkFailureWritable,
  checkGenerationWritable,
  checkRunStatus,
  checkSlotReplay,
  checkStartable,
  rankForBest,
  deepFreeze,
  encodeNewCandidates,
  encodeNewGeneration,
  encodeNewRun,
  encodeRungResultOf,
  encodeResultOf,
  isFinished,
  isoTime,
  parseJsonText,
  statusEvent,
  summarizeGeneration,
  toJsonText,
  type EncodedCandidate,
  type EncodedItem,
  type EncodedRungResult,
  type SlotFacts,
} from './records.js';
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

export interface MemoryRunStoreOptions {
  /** Milliseconds since the epoch, for timestamps. Default: Date.now. */
  readonly clock?: () => number;
}

interface CandidateRow {
  id: number;
  generation: number;
  index: number;
  genomeJson: string;
  config: string;
  hash: string;
  status: CandidateStatus;
  attempts: number;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

interface SlotRow {
  readonly candidateId: number;
  readonly candidateHash: string;
  readonly genomeJson: string;
}

interface ResultRow {
  readonly scores: Readonly<Record<string, ScoreRecord>>;
  readonly itemsUsed: number;
  readonly seconds: number;
  readonly modelBytes: number | null;
  readonly detailsJson: string;
  readonly recordedAt: string;
  readonly items: readonly EncodedItem[];
}

interface GenerationRow {
  readonly summary: GenerationSummary;
  readonly front: readonly number[];
  readonly optimizerStateJson: string;
  readonly rngStateJson: string;
}

interface EventRow {
  readonly at: string;
  readonly kind: EventKind;
  readonly message: string;
  readonly dataJson: string;
}

export function createMemoryRunStore(options: MemoryRunStoreOptions = {}): RunStore {
  return new MemoryRunStore(options.clock ?? Date.now);
}

class MemoryRunStore implements RunStore {
  readonly location = ':memory:';
  readonly readonly = false;
  readonly #clock: () => number;
  #closed = false;
  #run: RunRecord | undefined;
  /** Row i holds candidate id i + 1. */
  readonly #candidates: CandidateRow[] = [];
  readonly #byHash = new Map<string, number>();
  readonly #slots = new Map<number, Map<number, SlotRow>>();
  readonly #results = new Map<number, ResultRow>();
  /** Per candidate, its rungs in order. */
  readonly #rungs = new Map<number, (EncodedRungResult & { readonly recordedAt: string })[]>();
  /** Recorded generations in order. */
  readonly #generations: GenerationRow[] = [];
  readonly #events: EventRow[] = [];

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  async createRun(newRun: NewRun): Promise<RunRecord> {
    this.#open();
    const encoded = encodeNewRun(newRun);
    if (this.#run !== undefined) throw new StoreError('RUN_EXISTS', `the store already holds run '${this.#run.name}'; open it to resume instead of creating it`);
    const now = this.#now();
    this.#run = deepFreeze({ ...encoded.run, status: 'running', createdAt: now, updatedAt: now });
    this.#events.push({ at: now, kind: 'created', message: `run '${encoded.run.name}' created`, dataJson: 'null' });
    return this.#run;
  }

  async getRun(): Promise<RunRecord | undefined> {
    this.#open();
    return this.#run;
  }

  async setRunStatus(status: RunStatus, note?: string): Promise<RunRecord> {
    this.#open();
    checkRunStatus(status);
    const run = this.#requireRun();
    const now = this.#now();
    this.#events.push({ at: now, kind: 'status', ...statusEvent(run.status, status, note) });
    this.#run = deepFreeze({ ...run, status, updatedAt: now });
    return this.#run;
  }

  async recordCandidate(candidate: NewCandidate): Promise<CandidateInsert> {
    const [insert] = await this.recordCandidates([candidate]);
    if (insert === undefined) throw new Error('recordCandidates returned nothing for one candidate');
    return insert;
  }

  async recordCandidates(candidates: readonly NewCandidate[]): Promise<readonly CandidateInsert[]> {
    this.#open();
    const encoded = encodeNewCandidates(candidates);
    this.#requireRun();
    // Plan against committed state plus what this call adds, then commit.
    const newRows: CandidateRow[] = [];
    const newHashes = new Map<string, number>();
    const newSlots = new Map<string, { readonly c: EncodedCandidate; readonly row: SlotRow }>();
    const plan: { id: number; created: boolean }[] = [];
    const now = this.#now();
    for (const c of encoded) {
      const slotKey = `${c.generation}:${c.index}`;
      const known = this.#slots.get(c.generation)?.get(c.index) ?? newSlots.get(slotKey)?.row;
      if (known !== undefined) {
        checkSlotReplay(c, known);
        plan.push({ id: known.candidateId, created: false });
        continue;
      }
      let id = this.#byHash.get(c.hash) ?? newHashes.get(c.hash);
      const created = id === undefined;
      if (id === undefined) {
        id = this.#candidates.length + newRows.length + 1;
        newHashes.set(c.hash, id);
        newRows.push({
          id,
          generation: c.generation,
          index: c.index,
          genomeJson: c.genomeJson,
          config: c.config,
          hash: c.hash,
          status: 'pending',
          attempts: 0,
          error: null,
          createdAt: now,
          startedAt: null,
          finishedAt: null,
        });
      }
      newSlots.set(slotKey, { c, row: { candidateId: id, candidateHash: c.hash, genomeJson: c.genomeJson } });
      plan.push({ id, created });
    }
    this.#candidates.push(...newRows);
    for (const [hash, id] of newHashes) this.#byHash.set(hash, id);
    for (const { c, row } of newSlots.values()) {
      let gen = this.#slots.get(c.generation);
      if (gen === undefined) this.#slots.set(c.generation, (gen = new Map()));
      gen.set(c.index, row);
    }
    if (newSlots.size > 0) this.#touch(now);
    return deepFreeze(plan.map((p) => ({ candidate: this.#candidateRecord(this.#existing(p.id)), created: p.created })));
  }

  async startEvaluation(candidateId: number): Promise<CandidateRecord> {
    this.#open();
    this.#requireRun();
    const row = this.#existing(candidateId);
    checkStartable(row, candidateId);
    const now = this.#now();
    row.status = 'running';
    row.attempts += 1;
    row.startedAt = now;
    this.#touch(now);
    return this.#candidateRecord(row);
  }

  async recordResult(candidateId: number, result: NewResult): Promise<ScoredCandidate> {
    this.#open();
    const run = this.#requireRun();
    const row = this.#existing(candidateId);
    const encoded = encodeResultOf(row, candidateId, result, run.objectives);
    const now = this.#now();
    const scores: Record<string, ScoreRecord> = {};
    for (const s of encoded.scores) scores[s.objective] = { value: s.value, stderr: s.stderr, ciLow: s.ciLow, ciHigh: s.ciHigh, n: s.n };
    this.#results.set(candidateId, {
      scores: deepFreeze(scores),
      itemsUsed: encoded.itemsUsed,
      seconds: encoded.seconds,
      modelBytes: encoded.modelBytes,
      detailsJson: encoded.detailsJson,
      recordedAt: now,
      items: encoded.items,
    });
    row.status = 'done';
    row.finishedAt = now;
    this.#touch(now);
    return this.#scored(row);
  }

  async recordRungResult(candidateId: number, rung: NewRungResult): Promise<RungResultRecord> {
    this.#open();
    const run = this.#requireRun();
    const row = this.#existing(candidateId);
    const earlier = this.#rungs.get(candidateId) ?? [];
    const encoded = encodeRungResultOf(row, candidateId, rung, run.objectives, earlier);
    const now = this.#now();
    this.#rungs.set(candidateId, [...earlier, { ...encoded, recordedAt: now }]);
    this.#touch(now);
    return this.#rungRecords(candidateId).at(-1) as RungResultRecord;
  }

  async rungResults(candidateId: number): Promise<readonly RungResultRecord[]> {
    this.#open();
    return this.#rungRecords(candidateId);
  }

  #rungRecords(candidateId: number): readonly RungResultRecord[] {
    return deepFreeze(
      (this.#rungs.get(candidateId) ?? []).map((r) => ({
        candidateId,
        rung: r.rung,
        scores: parseJsonText(r.scoresJson) as unknown as Record<string, ScoreRecord>,
        itemsUsed: r.itemsUsed,
        seconds: r.seconds,
        details: parseJsonText(r.detailsJson),
        items: r.items.map((i) => ({ candidateId, objective: i.objective, itemId: i.itemId, correct: i.correct, score: i.score })),
        recordedAt: r.recordedAt,
      })),
    );
  }

  async recordFailure(candidateId: number, error: string): Promise<CandidateRecord> {
    this.#open();
    this.#requireRun();
    const row = this.#existing(candidateId);
    checkFailureWritable(row, candidateId, error);
    const now = this.#now();
    row.status = 'failed';
    row.error = error;
    row.finishedAt = now;
    this.#touch(now);
    return this.#candidateRecord(row);
  }

  async recordGeneration(generation: NewGeneration): Promise<GenerationRecord> {
    this.#open();
    const g = encodeNewGeneration(generation);
    const run = this.#requireRun();
    const facts = this.#slotFacts(g.generation);
    checkGenerationWritable(g, this.#generations.at(-1)?.summary.generation, facts, (id) => this.#candidates[id - 1]?.status);
    const now = this.#now();
    const summary = deepFreeze(summarizeGeneration(g, run.objectives, facts, now));
    const front = deepFreeze([...g.front]);
    this.#generations.push({ summary, front, optimizerStateJson: g.optimizerStateJson, rngStateJson: g.rngStateJson });
    this.#touch(now);
    return deepFreeze({ summary, front });
  }

  async appendEvent(kind: EventKind, message: string, data: JsonValue = null): Promise<EventRecord> {
    this.#open();
    checkEvent(kind, message);
    const dataJson = toJsonText(data, 'event data');
    this.#events.push({ at: this.#now(), kind, message, dataJson });
    return this.#eventRecord(this.#events.length);
  }

  async candidate(id: number): Promise<CandidateRecord | undefined> {
    this.#open();
    const row = this.#candidates[id - 1];
    return row === undefined ? undefined : this.#candidateRecord(row);
  }

  async candidateByHash(hash: string): Promise<CandidateRecord | undefined> {
    this.#open();
    const id = this.#byHash.get(hash);
    return id === undefined ? undefined : this.#candidateRecord(this.#existing(id));
  }

  async candidates(): Promise<readonly CandidateRecord[]> {
    this.#open();
    return deepFreeze(this.#candidates.map((row) => this.#candidateRecord(row)));
  }

  async candidatesOfGeneration(generation: number): Promise<readonly SlotRecord[]> {
    this.#open();
    const slots = this.#slots.get(generation);
    if (slots === undefined) return deepFreeze([]);
    const ordered = [...slots].sort(([a], [b]) => a - b);
    return deepFreeze(
      ordered.map(([index, slot]) => {
        const scored = this.#scored(this.#existing(slot.candidateId));
        return { generation, index, genome: parseJsonText(slot.genomeJson), candidate: scored.candidate, result: scored.result };
      }),
    );
  }

  async pendingCandidates(): Promise<readonly CandidateRecord[]> {
    this.#open();
    return deepFreeze(this.#candidates.filter((r) => !isFinished(r.status)).map((r) => this.#candidateRecord(r)));
  }

  async result(candidateId: number): Promise<ResultRecord | undefined> {
    this.#open();
    return this.#resultRecord(candidateId) ?? undefined;
  }

  async results(): Promise<readonly ResultRecord[]> {
    this.#open();
    const ids = [...this.#results.keys()].sort((a, b) => a - b);
    return deepFreeze(ids.flatMap((id) => this.#resultRecord(id) ?? []));
  }

  async itemResults(candidateId: number): Promise<readonly ItemResultRecord[]> {
    this.#open();
    const items = this.#results.get(candidateId)?.items ?? [];
    return deepFreeze(items.map((i) => ({ candidateId, objective: i.objective, itemId: i.itemId, correct: i.correct, score: i.score })));
  }

  async latestOptimizerState(): Promise<OptimizerSnapshot | undefined> {
    this.#open();
    const last = this.#generations.at(-1);
    if (last === undefined) return undefined;
    return deepFreeze({
      generation: last.summary.generation,
      optimizerState: parseJsonText(last.optimizerStateJson),
      rngState: parseJsonText(last.rngStateJson),
    });
  }

  async front(generation?: number): Promise<readonly ScoredCandidate[]> {
    this.#open();
    const g = generation === undefined ? this.#generations.at(-1) : this.#generations.find((x) => x.summary.generation === generation);
    if (g === undefined) return deepFreeze([]);
    return deepFreeze(g.front.map((id) => this.#scored(this.#existing(id))));
  }

  async best(objective: string, limit = 1): Promise<readonly ScoredCandidate[]> {
    this.#open();
    const run = this.#requireRun();
    const spec = checkBestQuery(run, objective, limit);
    const scored = [...this.#results].flatMap(([id, r]) => {
      const s = r.scores[objective];
      return s === undefined ? [] : [{ id, value: s.value, n: s.n }];
    });
    const ranked = rankForBest(spec.direction, scored).slice(0, limit);
    return deepFreeze(ranked.map((e) => this.#scored(this.#existing(e.id))));
  }

  async generationSummaries(): Promise<readonly GenerationSummary[]> {
    this.#open();
    return deepFreeze(this.#generations.map((g) => g.summary));
  }

  async events(): Promise<readonly EventRecord[]> {
    this.#open();
    return deepFreeze(this.#events.map((_, i) => this.#eventRecord(i + 1)));
  }

  async overview(): Promise<RunOverview | undefined> {
    this.#open();
    const run = this.#run;
    if (run === undefined) return undefined;
    const count = (s: CandidateStatus): number => this.#candidates.filter((r) => r.status === s).length;
    const entries = [...this.#results].map(([id, r]) => ({ id, scores: r.scores })).sort((a, b) => a.id - b.id);
    return deepFreeze({
      name: run.name,
      status: run.status,
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
      objectives: run.objectives,
      generationsTarget: run.generations,
      generationsDone: this.#generations.length,
      candidates: this.#candidates.length,
      evaluations: count('done'),
      failures: count('failed'),
      unfinished: count('pending') + count('running'),
      best: bestPerObjective(run.objectives, entries),
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw new StoreError('STORE_CLOSED', 'the in-memory run store is closed');
  }

  #now(): string {
    return isoTime(this.#clock());
  }

  #requireRun(): RunRecord {
    if (this.#run === undefined) throw new StoreError('RUN_MISSING', 'the store holds no run yet; call createRun first');
    return this.#run;
  }

  #touch(now: string): void {
    const run = this.#requireRun();
    this.#run = deepFreeze({ ...run, updatedAt: now });
  }

  #existing(id: number): CandidateRow {
    const row = this.#candidates[id - 1];
    if (row === undefined) throw new StoreError('UNKNOWN_CANDIDATE', `candidate ${id} does not exist in this run`);
    return row;
  }

  #candidateRecord(row: CandidateRow): CandidateRecord {
    return deepFreeze({
      id: row.id,
      generation: row.generation,
      index: row.index,
      genome: parseJsonText(row.genomeJson),
      config: row.config,
      hash: row.hash,
      status: row.status,
      attempts: row.attempts,
      error: row.error,
      createdAt: row.createdAt,
      startedAt: row.startedAt,
      finishedAt: row.finishedAt,
    });
  }

  #resultRecord(candidateId: number): ResultRecord | null {
    const r = this.#results.get(candidateId);
    if (r === undefined) return null;
    return deepFreeze({
      candidateId,
      scores: r.scores,
      itemsUsed: r.itemsUsed,
      seconds: r.seconds,
      modelBytes: r.modelBytes,
      details: parseJsonText(r.detailsJson),
      recordedAt: r.recordedAt,
    });
  }

  #scored(row: CandidateRow): ScoredCandidate {
    return deepFreeze({ candidate: this.#candidateRecord(row), result: this.#resultRecord(row.id) });
  }

  #slotFacts(generation: number): SlotFacts[] {
    const slots = this.#slots.get(generation);
    if (slots === undefined) return [];
    return [...slots]
      .sort(([a], [b]) => a - b)
      .map(([index, slot]) => {
        const row = this.#existing(slot.candidateId);
        return {
          index,
          candidateId: row.id,
          candidateGeneration: row.generation,
          candidateIndex: row.index,
          status: row.status,
          scores: this.#results.get(row.id)?.scores ?? null,
        };
      });
  }

  #eventRecord(id: number): EventRecord {
    const e = this.#events[id - 1];
    if (e === undefined) throw new StoreError('BAD_INPUT', `event ${id} does not exist`);
    return deepFreeze({ id, at: e.at, kind: e.kind, message: e.message, data: parseJsonText(e.dataJson) });
  }
}
