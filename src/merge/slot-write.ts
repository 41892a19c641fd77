/**
 * Writes a computed tensor (or row chunk) into its slot of an output temp file. The whole 4 KiB
 * pages inside the slot go through a second descriptor opened with O_DIRECT where the file system
 * allows it: a buffered write copies every byte into fresh page-cache pages, which costs more CPU
 * than most merge kernels on some virtual machines, and the fsync at commit then has nothing left to
 * flush for them. The partial pages at either end (shared with the neighbouring slots or the header)
 * stay buffered, so no two writers ever touch the same page through different paths.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { EvoError } from '../errors.js';

/** O_DIRECT alignment of offsets, lengths and buffer addresses that every common device accepts. */
export const DIRECT_ALIGN = 4096;
/** Slots whose aligned interior is smaller than this are written buffered (not worth a second call). */
const DIRECT_MIN_BYTES = 64 * 1024;

/** A slot descriptor for direct writes, or null where O_DIRECT is unknown or refused (tmpfs, other systems). */
export function openDirect(file: string): number | null {
  const flag = (fs.constants as Record<string, number | undefined>)['O_DIRECT'];
  if (flag === undefined) return null;
  try {
    return fs.openSync(file, fs.constants.O_WRONLY | flag);
  } catch {
    return null;
  }
}

/**
 * A worker thread's direct writing: page-aligned staging buffers (reused, the largest two kept) and
 * whether direct writes still work in this thread. A slot's interior is copied into one (memcpy is
 * far cheaper than the page-cache copy it replaces), so the task's own buffers are free at once and
 * the disk write runs beside the thread's next task.
 */
export class DirectWriter {
  /** Set false after the first refused direct write (an unaligned buffer, a file system that rejects it). */
  enabled = true;
  readonly #free: ArrayBuffer[] = [];
  readonly #pages: { allocPages(byteLength: number): ArrayBuffer; releasePages(buffer: ArrayBuffer): void };

  constructor(pages: { allocPages(byteLength: number): ArrayBuffer; releasePages(buffer: ArrayBuffer): void }) {
    this.#pages = pages;
  }

  /** A staging view of `byteLength` bytes (a multiple of DIRECT_ALIGN) at the start of a page-aligned buffer. */
  take(byteLength: number): Uint8Array {
    const i = this.#free.findIndex((b) => b.byteLength >= byteLength);
    const buffer = i >= 0 ? (this.#free.splice(i, 1)[0] as ArrayBuffer) : this.#pages.allocPages(Math.ceil(byteLength / STAGING_STEP) * STAGING_STEP);
    return new Uint8Array(buffer, 0, byteLength);
  }

  /**
   * Returns a staging view's buffer. The largest two are kept: keeping the most recent instead
   * would map (and zero) fresh pages for every large slot that follows a small one.
   */
  give(view: Uint8Array): void {
    this.#free.push(view.buffer as ArrayBuffer);
    this.#free.sort((a, b) => b.byteLength - a.byteLength);
    for (const b of this.#free.splice(KEPT_STAGING_BUFFERS)) this.#pages.releasePages(b);
  }
}

/**
 * Units posted to a worker thread at once (materialize.ts). A thread computes one at a time; the
 * second computes while the first's direct write is on its way to disk. Both hold their budget.
 */
export const TASKS_PER_THREAD = 2;
/** Staging buffers kept per thread: one per task in flight. */
const KEPT_STAGING_BUFFERS = TASKS_PER_THREAD;
/** Staging buffers grow in steps of this, so that similar slots reuse one. */
const STAGING_STEP = 1024 * 1024;

export interface SlotTarget {
  readonly fd: number;
  readonly directFd: number | null;
  readonly byteOffset: number;
}

/**
 * Writes `bytes` at `target.byteOffset`. The partial pages at either end are written (buffered)
 * before it returns; the interior pages, when `direct` allows, are staged and written through the
 * O_DIRECT descriptor by the promise it returns (null when everything was written already).
 * `bytes` may be reused as soon as it returns.
 */
export function writeSlot(target: SlotTarget, bytes: Uint8Array, tensor: string, direct: DirectWriter | null): Promise<void> | null {
  const start = target.byteOffset;
  const end = start + bytes.byteLength;
  const first = Math.ceil(start / DIRECT_ALIGN) * DIRECT_ALIGN;
  const last = Math.floor(end / DIRECT_ALIGN) * DIRECT_ALIGN;
  const directFd = target.directFd;
  if (direct === null || !direct.enabled || directFd === null || last - first < DIRECT_MIN_BYTES) {
    writeBuffered(target.fd, bytes, start, tensor);
    return null;
  }
  writeBuffered(target.fd, bytes.subarray(0, first - start), start, tensor);
  writeBuffered(target.fd, bytes.subarray(last - start), last, tensor);
  const staged = direct.take(last - first);
  staged.set(bytes.subarray(first - start, last - start));
  return writeDirect(directFd, staged, first, tensor)
    .then((ok) => {
      if (ok) return;
      // Refused (EINVAL: alignment or file system): this thread writes buffered from now on.
      direct.enabled = false;
      writeBuffered(target.fd, staged, first, tensor);
    })
    .finally(() => direct.give(staged));
}

const writeAsync = promisify(fs.write);

/** True when the whole range went out; false when the system refused direct I/O before writing anything. */
async function writeDirect(fd: number, bytes: Uint8Array, byteOffset: number, tensor: string): Promise<boolean> {
  let done = 0;
  while (done < bytes.byteLength) {
    let n: number;
    try {
      n = (await writeAsync(fd, bytes, done, bytes.byteLength - done, byteOffset + done)).bytesWritten;
    } catch (err) {
      if (done === 0 && (err as NodeJS.ErrnoException).code === 'EINVAL') return false;
      throw new EvoError('WRITE_FAILED', `tensor ${tensor}: direct write at offset ${byteOffset + done} failed: ${String(err)}`, { cause: err });
    }
    if (n <= 0 || n % DIRECT_ALIGN !== 0) {
      // A short direct write leaves an unaligned remainder that O_DIRECT cannot continue.
      throw new EvoError('WRITE_FAILED', `tensor ${tensor}: direct write returned ${n} of ${bytes.byteLength - done} bytes at offset ${byteOffset + done}`);
    }
    done += n;
  }
  return true;
}

function writeBuffered(fd: number, bytes: Uint8Array, byteOffset: number, tensor: string): void {
  let done = 0;
  while (done < bytes.byteLength) {
    const n = fs.writeSync(fd, bytes, done, bytes.byteLength - done, byteOffset + done);
    if (n <= 0) throw new EvoError('WRITE_FAILED', `tensor ${tensor}: write returned ${n} at offset ${byteOffset + done}`);
    done += n;
  }
}
