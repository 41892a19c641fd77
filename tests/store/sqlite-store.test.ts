import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { RunLockedError, SchemaVersionError, StoreError } from '../../src/store/errors.js';
import { holderState } from '../../src/store/lock.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js';
import { createMemoryRunStore } from '../../src/store/memory-store.js';
import { openSqliteRunStore, SqliteRunStore } from '../../src/store/sqlite-store.js';
import type { RunStore } from '../../src/store/types.js';
import { runStoreContract } from './contract.js';
import { runScripted, snapshotOf } from './scripted-run.js';

const root = mkdtempSync(path.join(tmpdir(), 'evomerge-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => path.join(root, `run-${++counter}`, 'run.db');

// synchronous=normal keeps the suite off the disk's fsync latency; it changes durability on power
// loss only, not the contract (the SIGKILL test runs the default, full).
runStoreContract('sqlite', (clock) => openSqliteRunStore(freshFile(), { clock, synchronous: 'normal' }), {
  reopen: async (store: RunStore) => {
    await store.close();
    return openSqliteRunStore(store.location, { synchronous: 'normal' });
  },
});

function expectStoreError(fn: () => unknown, code: string): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe(code);
    return err as StoreError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe('sqlite and memory stores agree', () => {
  it('record the same scripted run identically, down to summaries and overview', async () => {
    const sqlite = openSqliteRunStore(freshFile());
    const memory = createMemoryRunStore();
    for (const store of [sqlite, memory]) await runScripted(store, { generations: 6, population: 7 });
    expect(await snapshotOf(sqlite)).toEqual(await snapshotOf(memory));
    const overview = async (s: RunStore) => {
      const o = await s.overview();
      return { ...o, createdAt: undefined, updatedAt: undefined };
    };
    expect(await overview(sqlite)).toEqual(await overview(memory));
    for (const objective of ['acc', 'cost']) {
      const ids = async (s: RunStore) => (await s.best(objective, 100)).map((x) => x.candidate.id);
      expect(await ids(sqlite)).toEqual(await ids(memory));
    }
    expect((await sqlite.events()).map((e) => [e.kind, e.message, e.data])).toEqual((await memory.events()).map((e) => [e.kind, e.message, e.data]));
    await sqlite.close();
    await memory.close();
  });
});

describe('sqlite store: file, WAL and schema', () => {
  it('creates the parent directory and puts the database in WAL mode', async () => {
    const file = freshFile();
    const store = openSqliteRunStore(file);
    await runScripted(store, { generations: 1, population: 3 });
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.prepare('SELECT version, name FROM schema_version ORDER BY version').all()).toEqual([
      { version: 1, name: 'initial schema' },
      { version: 2, name: 'rung results' },
    ]);
    raw.close();
    expect(store.schemaVersionFound).toBe(0);
    await store.close();
    const again = openSqliteRunStore(file);
    expect(again.schemaVersionFound).toBe(SCHEMA_VERSION);
    await again.close();
  });

  it('numbers migrations 1, 2, ... and ends at SCHEMA_VERSION', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('refuses a database from a newer evomerge and a foreign database, untouched', () => {
    const newer = freshFile();
    openSqliteRunStore(newer).close();
    const raw = new Database(newer);
    raw.prepare("INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'future', 'x')").run(SCHEMA_VERSION + 1);
    raw.close();
    const err = expectStoreError(() => openSqliteRunStore(newer), 'SCHEMA_TOO_NEW');
    expect(err).toBeInstanceOf(SchemaVersionError);
    expect(err.message).toContain(newer);
    expectStoreError(() => openSqliteRunStore(newer, { readonly: true }), 'SCHEMA_TOO_NEW');

    const foreign = path.join(root, 'foreign.db');
    const f = new Database(foreign);
    f.exec('CREATE TABLE notes (x TEXT)');
    f.close();
    expectStoreError(() => openSqliteRunStore(foreign), 'NOT_A_RUN_DB');
    const check = new Database(foreign, { readonly: true });
    expect(check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([{ name: 'notes' }]);
    expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
    check.close();

    const garbage = path.join(root, 'garbage.db');
    writeFileSync(garbage, 'this is not a database, just some text long enough to have a header'.repeat(10));
    expectStoreError(() => openSqliteRunStore(garbage), 'NOT_A_RUN_DB');
  });

  it('reads through a read-only store while the writer works, and refuses writes there', async () => {
    const file = freshFile();
    const writer = openSqliteRunStore(file);
    await runScripted(writer, { generations: 2, population: 4 });
    const reader = openSqliteRunStore(file, { readonly: true });
    expect(reader.readonly).toBe(true);
    expect(await snapshotOf(reader)).toEqual(await snapshotOf(writer));
    await expect(reader.appendEvent('note', 'x')).rejects.toMatchObject({ code: 'STORE_READONLY' });
    // The writer keeps writing; the reader sees each commit.
    await writer.appendEvent('note', 'after the reader opened');
    expect((await reader.events()).at(-1)?.message).toBe('after the reader opened');
    await reader.close();
    await writer.close();
    // With no writer left (the WAL checkpointed away), a reader still opens.
    const late = openSqliteRunStore(file, { readonly: true });
    expect((await late.getRun())?.status).toBe('finished');
    await late.close();
    expectStoreError(() => openSqliteRunStore(path.join(root, 'missing', 'run.db'), { readonly: true }), 'RUN_NOT_FOUND');
  });

  it('stores doubles exactly and -0 as 0', async () => {
    const store = openSqliteRunStore(freshFile());
    await store.createRun({ name: 'd', spaceText: '', space: null, spaceHash: 'h', seeds: {}, packageVersion: '1', objectives: [{ name: 'x', direction: 'maximize' }], generations: 1 });
    const values = [0.1 + 0.2, -0, 1e-300, 123456789.123456789, -5];
    for (const [i, v] of values.entries()) {
      await store.recordCandidate({ generation: 0, index: i, genome: { v }, config: 'c', hash: `h${i}` });
      await store.startEvaluation(i + 1);
      await store.recordResult(i + 1, { scores: { x: { value: v, ciLow: v, ciHigh: v, n: 1 } }, itemsUsed: 1, seconds: v < 0 ? 0 : v });
    }
    const got = (await store.results()).map((r) => r.scores.x?.value);
    expect(got).toEqual([0.1 + 0.2, 0, 1e-300, 123456789.123456789, -5]);
    expect(Object.is(got[1], 0)).toBe(true);
    await store.close();
  });
});

describe('sqlite store: one writer at a time', () => {
  it('refuses a second writer with a message naming the run, the holder and what to do', async () => {
    const file = freshFile();
    const first = openSqliteRunStore(file);
    await first.createRun({ name: 'busy', spaceText: '', space: null, spaceHash: 'h', seeds: {}, packageVersion: '1', objectives: [{ name: 'x', direction: 'maximize' }], generations: 1 });
    const err = expectStoreError(() => openSqliteRunStore(file), 'RUN_LOCKED');
    expect(err).toBeInstanceOf(RunLockedError);
    expect((err as RunLockedError).holderPid).toBe(process.pid);
    expect(err.message).toContain("run 'busy'");
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(err.message).toContain(`kill ${process.pid}`);
    // Readers are not writers.
    const reader = openSqliteRunStore(file, { readonly: true });
    expect((await reader.getRun())?.name).toBe('busy');
    await reader.close();
    await first.close();
    // Closing gave the lease back.
    const second = openSqliteRunStore(file);
    expect(second.replacedLease).toBeNull();
    expect((await second.events()).map((e) => e.kind)).toEqual(['created']);
    await second.close();
  });

  it('takes over a stale lease from a dead pid on this host and records the interruption', async () => {
    const file = freshFile();
    const first = openSqliteRunStore(file);
    await first.createRun({ name: 'stale', spaceText: '', space: null, spaceHash: 'h', seeds: {}, packageVersion: '1', objectives: [{ name: 'x', direction: 'maximize' }], generations: 1 });
    const lease = first.lease;
    await first.close();
    // Put back a lease as a killed process leaves it: same host, a pid that no longer exists.
    const deadPid = 2 ** 22 + 12345;
    const raw = new Database(file);
    raw.prepare('INSERT INTO writer_lease (singleton, pid, hostname, process_start, acquired_at, token) VALUES (1, ?, ?, ?, ?, ?)').run(deadPid, lease?.hostname, '1', '2025-01-01T00:00:00.000Z', 'old');
    raw.close();
    const second = openSqliteRunStore(file);
    expect(second.replacedLease).toMatchObject({ pid: deadPid, token: 'old' });
    const last = (await second.events()).at(-1);
    expect(last).toMatchObject({ kind: 'interrupted', data: { pid: deadPid, holderState: 'dead' } });
    expect(last?.message).toContain(`pid ${deadPid}`);
    await second.close();
  });

  it('treats a recycled pid (other start time) as dead and another host as unknown', () => {
    const self = { pid: process.pid, hostname: 'here', processStart: '100' };
    const lease = { pid: process.pid, hostname: 'here', processStart: '100', acquiredAt: 'x', token: 't' };
    expect(holderState(lease, self)).toBe('alive');
    expect(holderState({ ...lease, processStart: '99' }, self)).toBe('dead');
    expect(holderState({ ...lease, hostname: 'elsewhere' }, self)).toBe('unknown');
  });

  it('refuses a lease from another host unless breakLock', async () => {
    const file = freshFile();
    openSqliteRunStore(file).close();
    const raw = new Database(file);
    raw.prepare('INSERT INTO writer_lease (singleton, pid, hostname, process_start, acquired_at, token) VALUES (1, 4242, ?, NULL, ?, ?)').run('other-host.example', '2025-01-01T00:00:00.000Z', 'remote');
    raw.close();
    const err = expectStoreError(() => openSqliteRunStore(file), 'RUN_LOCKED');
    expect(err.message).toContain('other-host.example');
    expect(err.message).toContain('--break-lock');
    const broken = openSqliteRunStore(file, { breakLock: true });
    expect(broken).toBeInstanceOf(SqliteRunStore);
    expect(broken.replacedLease?.hostname).toBe('other-host.example');
    expect((await broken.events()).at(-1)?.kind).toBe('interrupted');
    await broken.close();
  });
});
