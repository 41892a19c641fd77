/**
 * Checks a run database directly (raw SQL, no store code) for the states a crash may never leave:
 * SQLite corruption, dangling rows, a result without its candidate being done (or the reverse),
 * a recorded generation with unfinished slots, gaps in ids or generations.
 */
import Database from 'better-sqlite3';
import { expect } from 'vitest';

export interface RunDbCounts {
  readonly candidates: number;
  readonly pending: number;
  readonly running: number;
  readonly done: number;
  readonly failed: number;
  readonly generations: number;
}

export function checkRunDbInvariants(file: string, objectives: number): RunDbCounts {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    const all = <T>(sql: string): T[] => db.prepare<[], T>(sql).all();
    const candidates = all<{ id: number; generation: number; slot: number; status: string; attempts: number; finished_at: string | null }>(
      'SELECT id, generation, slot, status, attempts, finished_at FROM candidate ORDER BY id',
    );
    expect(candidates.map((c) => c.id)).toEqual(candidates.map((_, i) => i + 1));
    const results = new Set(all<{ candidate_id: number }>('SELECT candidate_id FROM result').map((r) => r.candidate_id));
    const scoreCounts = new Map(all<{ candidate_id: number; n: number }>('SELECT candidate_id, count(*) AS n FROM score GROUP BY candidate_id').map((r) => [r.candidate_id, r.n]));
    const slotOf = db.prepare<[number, number], { candidate_id: number }>('SELECT candidate_id FROM slot WHERE generation = ? AND slot = ?');
    for (const c of candidates) {
      expect(slotOf.get(c.generation, c.slot)?.candidate_id, `candidate ${c.id} has its first slot`).toBe(c.id);
      expect(results.has(c.id), `candidate ${c.id} (${c.status}) has a result iff done`).toBe(c.status === 'done');
      expect(scoreCounts.get(c.id) ?? 0).toBe(c.status === 'done' ? objectives : 0);
      expect(c.attempts === 0, `candidate ${c.id} attempts`).toBe(c.status === 'pending');
      expect(c.finished_at !== null).toBe(c.status === 'done' || c.status === 'failed');
    }
    const generations = all<{ generation: number }>('SELECT generation FROM generation ORDER BY generation').map((g) => g.generation);
    expect(generations).toEqual(generations.map((_, i) => i));
    const unfinishedInRecorded = all<{ n: number }>(
      "SELECT count(*) AS n FROM slot s JOIN candidate c ON c.id = s.candidate_id JOIN generation g ON g.generation = s.generation WHERE c.status NOT IN ('done', 'failed')",
    );
    expect(unfinishedInRecorded[0]?.n).toBe(0);
    const badFront = all<{ n: number }>("SELECT count(*) AS n FROM front_member f JOIN candidate c ON c.id = f.candidate_id WHERE c.status <> 'done'");
    expect(badFront[0]?.n).toBe(0);
    // The runner asks one generation at a time: no slot beyond the first unrecorded generation.
    const maxSlotGen = all<{ g: number | null }>('SELECT max(generation) AS g FROM slot')[0]?.g ?? -1;
    expect(maxSlotGen).toBeLessThanOrEqual(generations.length);
    const count = (s: string): number => candidates.filter((c) => c.status === s).length;
    return { candidates: candidates.length, pending: count('pending'), running: count('running'), done: count('done'), failed: count('failed'), generations: generations.length };
  } finally {
    db.close();
  }
}
