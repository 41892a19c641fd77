/**
 * The SQLite run store's schema, one numbered migration per version. A database records the
 * versions applied in `schema_version`; opening it for writing applies the missing ones, each in
 * its own transaction. Never edit a released migration: add the next one, a fixture database from
 * the previous version under tests/store/fixtures/, and a test that resumes it.
 */
import type { Database } from 'better-sqlite3';
import { SchemaVersionError, StoreError } from './errors.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** SQL run inside the migration's transaction. */
  readonly sql: string;
}

const V1 = `
CREATE TABLE run (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  name TEXT NOT NULL,
  space_text TEXT NOT NULL,
  space_json TEXT NOT NULL,
  space_hash TEXT NOT NULL,
  seeds_json TEXT NOT NULL,
  objectives_json TEXT NOT NULL,
  package_version TEXT NOT NULL,
  generations_target INTEGER NOT NULL CHECK (generations_target >= 1),
  status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'finished', 'failed')),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE candidate (
  id INTEGER PRIMARY KEY,
  generation INTEGER NOT NULL,
  slot INTEGER NOT NULL,
  genome_json TEXT NOT NULL,
  config_yaml TEXT NOT NULL,
  recipe_hash TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT
);
CREATE INDEX candidate_unfinished ON candidate (status) WHERE status IN ('pending', 'running');

-- A finished candidate is immutable: the store checks first, and this refuses what slips past.
CREATE TRIGGER candidate_finished_is_final BEFORE UPDATE ON candidate
  WHEN OLD.status IN ('done', 'failed')
  BEGIN SELECT RAISE(ABORT, 'candidate is finished and cannot be rewritten'); END;
CREATE TRIGGER candidate_never_deleted BEFORE DELETE ON candidate
  BEGIN SELECT RAISE(ABORT, 'candidates are never deleted'); END;

-- Every (generation, index) the optimizer asked, and the candidate its recipe maps to.
CREATE TABLE slot (
  generation INTEGER NOT NULL,
  slot INTEGER NOT NULL,
  candidate_id INTEGER NOT NULL REFERENCES candidate (id),
  genome_json TEXT NOT NULL,
  PRIMARY KEY (generation, slot)
) WITHOUT ROWID;

CREATE TABLE result (
  candidate_id INTEGER PRIMARY KEY REFERENCES candidate (id),
  items_used INTEGER NOT NULL,
  seconds REAL NOT NULL,
  model_bytes INTEGER,
  details_json TEXT NOT NULL,
  recorded_at TEXT NOT NULL
);
CREATE TRIGGER result_is_final BEFORE UPDATE ON result
  BEGIN SELECT RAISE(ABORT, 'results are never rewritten'); END;

CREATE TABLE score (
  candidate_id INTEGER NOT NULL REFERENCES result (candidate_id),
  objective TEXT NOT NULL,
  value REAL NOT NULL,
  stderr REAL,
  ci_low REAL,
  ci_high REAL,
  n INTEGER NOT NULL,
  PRIMARY KEY (candidate_id, objective)
) WITHOUT ROWID;
CREATE INDEX score_by_objective ON score (objective, value);

CREATE TABLE item_result (
  seq INTEGER PRIMARY KEY,
  candidate_id INTEGER NOT NULL REFERENCES result (candidate_id),
  objective TEXT NOT NULL,
  item_id TEXT NOT NULL,
  correct INTEGER CHECK (correct IN (0, 1)),
  score REAL NOT NULL,
  UNIQUE (candidate_id, objective, item_id)
);

CREATE TABLE generation (
  generation INTEGER PRIMARY KEY,
  optimizer_state_json TEXT NOT NULL,
  rng_state_json TEXT NOT NULL,
  summary_json TEXT NOT NULL,
  seconds REAL NOT NULL,
  recorded_at TEXT NOT NULL
);
CREATE TRIGGER generation_is_final BEFORE UPDATE ON generation
  BEGIN SELECT RAISE(ABORT, 'generations are never rewritten'); END;

CREATE TABLE front_member (
  generation INTEGER NOT NULL REFERENCES generation (generation),
  position INTEGER NOT NULL,
  candidate_id INTEGER NOT NULL REFERENCES candidate (id),
  PRIMARY KEY (generation, position)
) WITHOUT ROWID;

CREATE TABLE event (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL,
  data_json TEXT NOT NULL
);

-- The single writer's lease (src/store/lock.ts).
CREATE TABLE writer_lease (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  pid INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  process_start TEXT,
  acquired_at TEXT NOT NULL,
  token TEXT NOT NULL
);
`;

/** v2: per-rung results of successive halving inside a generation (src/eval/racing.ts). */
const V2 = `
CREATE TABLE rung_result (
  candidate_id INTEGER NOT NULL REFERENCES candidate (id),
  rung INTEGER NOT NULL CHECK (rung >= 0),
  scores_json TEXT NOT NULL,
  items_used INTEGER NOT NULL,
  seconds REAL NOT NULL,
  details_json TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  PRIMARY KEY (candidate_id, rung)
) WITHOUT ROWID;
CREATE TRIGGER rung_result_is_final BEFORE UPDATE ON rung_result
  BEGIN SELECT RAISE(ABORT, 'rung results are never rewritten'); END;

CREATE TABLE rung_item (
  seq INTEGER PRIMARY KEY,
  candidate_id INTEGER NOT NULL,
  rung INTEGER NOT NULL,
  objective TEXT NOT NULL,
  item_id TEXT NOT NULL,
  correct INTEGER CHECK (correct IN (0, 1)),
  score REAL NOT NULL,
  FOREIGN KEY (candidate_id, rung) REFERENCES rung_result (candidate_id, rung),
  UNIQUE (candidate_id, objective, item_id)
);
`;

/** Every migration, in version order. The last one's version is SCHEMA_VERSION. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial schema', sql: V1 },
  { version: 2, name: 'rung results', sql: V2 },
];

export const SCHEMA_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

/** The highest version recorded in the database; 0 for an empty database. */
export function schemaVersion(db: Database, file: string): number {
  const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all();
  if (tables.length === 0) return 0;
  if (!tables.some((t) => t.name === 'schema_version')) {
    throw new StoreError('NOT_A_RUN_DB', `${file}: not an evomerge run store (a SQLite database without a schema_version table)`);
  }
  const row = db.prepare<[], { v: number | null }>('SELECT max(version) AS v FROM schema_version').get();
  return row?.v ?? 0;
}

/**
 * Brings the database up to SCHEMA_VERSION. Returns the version found before. Throws
 * SCHEMA_TOO_NEW when the file was written by a newer evomerge.
 */
export function migrate(db: Database, file: string, nowIso: string, upTo: number = SCHEMA_VERSION): number {
  const found = db.transaction(() => {
    // Checked before creating anything, so a foreign database is refused untouched.
    const version = schemaVersion(db, file);
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    return version;
  }).immediate();
  if (found > SCHEMA_VERSION) throw new SchemaVersionError('SCHEMA_TOO_NEW', file, found, SCHEMA_VERSION);
  for (const m of MIGRATIONS) {
    if (m.version <= found || m.version > upTo) continue;
    db.transaction(() => {
      // Re-check inside the write lock: another opener may have applied it meanwhile.
      if (schemaVersion(db, file) >= m.version) return;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, nowIso);
    }).immediate();
  }
  return found;
}

/** For read-only connections, which cannot migrate: the schema must be exactly the current one. */
export function assertCurrentSchema(db: Database, file: string): void {
  const found = schemaVersion(db, file);
  if (found === 0) throw new StoreError('NOT_A_RUN_DB', `${file}: the database is empty; no run was created in it`);
  if (found > SCHEMA_VERSION) throw new SchemaVersionError('SCHEMA_TOO_NEW', file, found, SCHEMA_VERSION);
  if (found < SCHEMA_VERSION) throw new SchemaVersionError('SCHEMA_OUTDATED', file, found, SCHEMA_VERSION);
}
