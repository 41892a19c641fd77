/**
 * Crash-safe file replacement: write a temporary file in the destination's directory, fsync it,
 * rename it over the destination, then fsync the directory so the rename itself is durable.
 * A reader therefore sees the old file or the complete new one, never a partial one.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, promises as fsp, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { EvoError } from '../errors.js';

/** A write to `file` (or its temporary) failed; the cause is the system error. */
export class AtomicWriteError extends EvoError {
  readonly file: string;
  constructor(file: string, what: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super('WRITE_FAILED', `${file}: cannot ${what}: ${why}`, { cause });
    this.name = 'AtomicWriteError';
    this.file = file;
  }
}

/**
 * A fresh temporary name beside `file` (same directory, so the final rename stays on one file
 * system): `.<name>.<pid>-<random>.tmp`, hidden so that directory listings skip it.
 */
export function tempPathFor(file: string): string {
  const dir = path.dirname(file);
  const base = path.basename(file);
  return path.join(dir, `.${base}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

function isIgnorableDirSyncError(err: unknown): boolean {
  // Some file systems (and Windows) cannot fsync a directory; the rename is still done.
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EISDIR' || code === 'EINVAL' || code === 'EPERM' || code === 'EBADF' || code === 'ENOTSUP';
}

/** fsyncs the directory holding `file`, so a rename into it survives a crash. */
export async function syncDirectoryOf(file: string): Promise<void> {
  let dir: fsp.FileHandle | undefined;
  try {
    dir = await fsp.open(path.dirname(file), 'r');
    await dir.sync();
  } catch (err) {
    if (!isIgnorableDirSyncError(err)) throw new AtomicWriteError(file, 'sync its directory', err);
  } finally {
    await dir?.close();
  }
}

export function syncDirectoryOfSync(file: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path.dirname(file), 'r');
    fsyncSync(fd);
  } catch (err) {
    if (!isIgnorableDirSyncError(err)) throw new AtomicWriteError(file, 'sync its directory', err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Renames `temp` over `file` and makes the rename durable. */
export async function commitTempFile(temp: string, file: string): Promise<void> {
  try {
    await fsp.rename(temp, file);
  } catch (err) {
    throw new AtomicWriteError(file, `rename ${path.basename(temp)} over it`, err);
  }
  await syncDirectoryOf(file);
}

async function removeQuietly(p: string): Promise<void> {
  await fsp.rm(p, { force: true });
}

/** Replaces `file` with `data` atomically (temp in the same directory, fsync, rename, fsync dir). */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const temp = tempPathFor(file);
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(temp, 'wx');
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await removeQuietly(temp);
    throw new AtomicWriteError(file, 'write', err);
  }
  try {
    await commitTempFile(temp, file);
  } catch (err) {
    await removeQuietly(temp);
    throw err;
  }
}

/** Synchronous `writeFileAtomic`. */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  const temp = tempPathFor(file);
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx');
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, done);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, file);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
    throw new AtomicWriteError(file, 'write', err);
  }
  syncDirectoryOfSync(file);
}
