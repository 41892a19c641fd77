/**
 * One writer per run: a lease row inside the run's own database (table writer_lease), taken and
 * released in IMMEDIATE transactions, so two openers can never both win (SQLite's write lock
 * serializes them) and no separate lock file can drift from the database it guards.
 *
 * A lease names the holder's pid, hostname and process start time. A lease whose holder is dead —
 * same host, and the pid is gone or now belongs to a process started at another time — is stale
 * and taken over: that is how a run killed with SIGKILL is resumed. A lease from another host
 * cannot be checked and is only taken with `breakLock`.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Database } from 'better-sqlite3';
import { RunLockedError } from './errors.js';

export interface WriterLease {
  readonly pid: number;
  readonly hostname: string;
  /** The holder's process start time as the OS reports it (Linux: clock ticks since boot), or null. */
  readonly processStart: string | null;
  /** ISO 8601 UTC. */
  readonly acquiredAt: string;
  /** Random per acquisition, so a store releases only its own lease. */
  readonly token: string;
}

/** alive: the holder runs. dead: same host and it does not. unknown: another host. */
export type HolderState = 'alive' | 'dead' | 'unknown';

export interface ProcessIdentity {
  readonly pid: number;
  readonly hostname: string;
  readonly processStart: string | null;
}

/** The start time of process `pid` (Linux /proc/<pid>/stat field 22), or null where unavailable. */
export function processStartOf(pid: number | 'self'): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; fields after the last ')' are plain.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // field 22 overall; fields[0] is field 3
  } catch {
    return null;
  }
}

export function currentProcess(): ProcessIdentity {
  return { pid: process.pid, hostname: hostname(), processStart: processStartOf('self') };
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the lease's holder still runs, seen from process `self`. */
export function holderState(lease: WriterLease, self: ProcessIdentity = currentProcess()): HolderState {
  if (lease.hostname !== self.hostname) return 'unknown';
  if (!pidExists(lease.pid)) return 'dead';
  if (lease.processStart !== null) {
    const now = lease.pid === self.pid ? self.processStart : processStartOf(lease.pid);
    // The pid was recycled by a process started later: the holder is gone.
    if (now !== null && now !== lease.processStart) return 'dead';
  }
  return 'alive';
}

interface LeaseRow {
  pid: number;
  hostname: string;
  process_start: string | null;
  acquired_at: string;
  token: string;
}

function fromRow(row: LeaseRow): WriterLease {
  return { pid: row.pid, hostname: row.hostname, processStart: row.process_start, acquiredAt: row.acquired_at, token: row.token };
}

export function readWriterLease(db: Database): WriterLease | undefined {
  const row = db.prepare<[], LeaseRow>('SELECT pid, hostname, process_start, acquired_at, token FROM writer_lease WHERE singleton = 1').get();
  return row === undefined ? undefined : fromRow(row);
}

export interface AcquireOptions {
  /** How to name the run in messages: its name, or the database path before the run exists. */
  readonly runLabel: string;
  /** The database file, for messages. */
  readonly file: string;
  readonly nowIso: string;
  /** Take the lease even from a holder that looks alive or cannot be checked. Default: false. */
  readonly breakLock?: boolean;
  /** Who is acquiring. Default: this process. */
  readonly self?: ProcessIdentity;
}

export interface AcquiredLease {
  readonly lease: WriterLease;
  /** The stale (or broken) lease that was replaced, if any: the previous writer did not close. */
  readonly replaced: WriterLease | null;
  readonly replacedState: HolderState | null;
}

/** Takes the writer lease or throws RunLockedError naming the run, the holder and what to do. */
export function acquireWriterLease(db: Database, options: AcquireOptions): AcquiredLease {
  const self = options.self ?? currentProcess();
  const lease: WriterLease = { ...self, acquiredAt: options.nowIso, token: randomUUID() };
  return db
    .transaction((): AcquiredLease => {
      const held = readWriterLease(db);
      const state = held === undefined ? null : holderState(held, self);
      if (held !== undefined && state !== 'dead' && options.breakLock !== true) {
        throw new RunLockedError(lockedMessage(options, held, state === 'alive', self), held.pid, held.hostname);
      }
      db.prepare('DELETE FROM writer_lease').run();
      db.prepare('INSERT INTO writer_lease (singleton, pid, hostname, process_start, acquired_at, token) VALUES (1, ?, ?, ?, ?, ?)').run(
        lease.pid,
        lease.hostname,
        lease.processStart,
        lease.acquiredAt,
        lease.token,
      );
      return { lease, replaced: held ?? null, replacedState: state };
    })
    .immediate();
}

function lockedMessage(options: AcquireOptions, held: WriterLease, alive: boolean, self: ProcessIdentity): string {
  const who = `pid ${held.pid} on host ${held.hostname} (since ${held.acquiredAt})`;
  const own = held.pid === self.pid && held.hostname === self.hostname ? ' — this same process, through another open store' : '';
  if (alive) {
    return (
      `run ${options.runLabel} (${options.file}) is being written by ${who}${own}; only one writer at a time: ` +
      `wait for it to finish or stop it (kill ${held.pid}) and resume; meanwhile read it with 'evo show'`
    );
  }
  return (
    `run ${options.runLabel} (${options.file}) is held by ${who}, which cannot be checked from host ${self.hostname}; ` +
    `if that process is gone, resume with --break-lock`
  );
}

/** Gives the lease back if it is still ours (a takeover by --break-lock may have replaced it). */
export function releaseWriterLease(db: Database, token: string): void {
  db.transaction(() => {
    db.prepare('DELETE FROM writer_lease WHERE token = ?').run(token);
  }).immediate();
}
