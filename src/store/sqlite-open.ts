/**
 * Opening a run database: the checks, pragmas, schema migration and writer lease, in the order
 * that keeps foreign files untouched and never migrates a run under a live writer.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { SchemaVersionError, StoreError } from './errors.js';
import { acquireWriterLease, releaseWriterLease, type HolderState, type WriterLease } from './lock.js';
import { assertCurrentSchema, migrate, SCHEMA_VERSION, schemaVersion } from './migrations.js';
import { readRunRow } from './sqlite-reads.js';

export interface SqliteRunStoreOptions {
  /** Open for reading only: no lease, no migration, write methods throw STORE_READONLY. Default: false. */
  readonly readonly?: boolean;
  /** Take the writer lease even from a holder that looks alive or is on another host. Default: false. */
  readonly breakLock?: boolean;
  /** Milliseconds since the epoch, for timestamps. Default: Date.now. */
  readonly clock?: () => number;
  /**
   * SQLite `synchronous`: 'full' makes every commit survive power loss; 'normal' survives process
   * crashes only (faster). Default: 'full' (commits are a few per evaluation, so the cost is small).
   */
  readonly synchronous?: 'full' | 'normal';
  /** How long to wait for another connection's lock, in milliseconds. Default: 5000. */
  readonly busyTimeoutMs?: number;
}

export interface OpenedRunDatabase {
  readonly db: Db;
  /** The lease this writer holds (null for readers). */
  readonly lease: WriterLease | null;
  /** The previous writer's lease this open replaced, else null. */
  readonly replacedLease: WriterLease | null;
  /** The schema version before this open migrated it (0: new file; readers: the current one). */
  readonly schemaVersionFound: number;
}

/** Opens `file` for the store; writers get the lease and an 'interrupted' event for a takeover. */
export function openRunDatabase(file: string, options: SqliteRunStoreOptions, nowIso: () => string): OpenedRunDatabase {
  const readonly = options.readonly ?? false;
  if (readonly && !existsSync(file)) throw new StoreError('RUN_NOT_FOUND', `${file}: no run database here`);
  if (!readonly) mkdirSync(path.dirname(file), { recursive: true });
  let db: Db;
  try {
    db = new Database(file, { readonly, fileMustExist: readonly, timeout: options.busyTimeoutMs ?? 5000 });
  } catch (err) {
    throw new StoreError('NOT_A_RUN_DB', `${file}: cannot open as SQLite: ${(err as Error).message}`, { cause: err });
  }
  let leaseToken: string | undefined;
  try {
    if (readonly) {
      assertCurrentSchema(db, file);
      return { db, lease: null, replacedLease: null, schemaVersionFound: SCHEMA_VERSION };
    }
    // Checked first, so a foreign or newer database is refused before anything is written.
    const found = schemaVersion(db, file);
    if (found > SCHEMA_VERSION) throw new SchemaVersionError('SCHEMA_TOO_NEW', file, found, SCHEMA_VERSION);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new StoreError('NOT_A_RUN_DB', `${file}: SQLite refused WAL mode (got '${String(mode)}'); is it on a network filesystem?`);
    db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('foreign_keys = ON');
    // An existing run is leased before it is migrated, so a newer evomerge never changes the
    // schema under a live writer; a new file has no writer yet (every version keeps writer_lease).
    if (found === 0) migrate(db, file, nowIso());
    const name = readRunRow(db)?.name;
    const acquired = acquireWriterLease(db, {
      runLabel: name === undefined ? `at ${file}` : `'${name}'`,
      file,
      nowIso: nowIso(),
      breakLock: options.breakLock ?? false,
    });
    leaseToken = acquired.lease.token;
    if (found > 0) migrate(db, file, nowIso());
    if (acquired.replaced !== null) recordTakeover(db, acquired.replaced, acquired.replacedState, nowIso());
    return { db, lease: acquired.lease, replacedLease: acquired.replaced, schemaVersionFound: found };
  } catch (err) {
    if (leaseToken !== undefined) releaseWriterLease(db, leaseToken);
    db.close();
    if (err instanceof Database.SqliteError && (err.code === 'SQLITE_NOTADB' || err.code === 'SQLITE_CORRUPT')) {
      throw new StoreError('NOT_A_RUN_DB', `${file}: not a readable SQLite database (${err.message})`, { cause: err });
    }
    throw err;
  }
}

/** The 'interrupted' event: the previous writer never closed the store (or was displaced). */
function recordTakeover(db: Db, previous: WriterLease, state: HolderState | null, at: string): void {
  const how = state === 'dead' ? 'ended without closing the store (killed or crashed)' : `was displaced by --break-lock (holder state: ${state ?? 'none'})`;
  const message = `previous writer pid ${previous.pid} on host ${previous.hostname} (since ${previous.acquiredAt}) ${how}`;
  const data = JSON.stringify({ pid: previous.pid, hostname: previous.hostname, acquiredAt: previous.acquiredAt, holderState: state });
  db.transaction(() => {
    db.prepare('INSERT INTO event (at, kind, message, data_json) VALUES (?, ?, ?, ?)').run(at, 'interrupted', message, data);
  }).immediate();
}
