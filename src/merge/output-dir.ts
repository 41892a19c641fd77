/**
 * The output directory of a merge while it is being written: every file goes to a temporary name
 * beside its destination, and nothing at a destination changes before `commit()`. `abort()` removes
 * every temporary, so a failed or cancelled merge leaves the directory as it found it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { syncDirectoryOf, tempPathFor } from '../tensors/atomic-file.js';
import type { LayoutEntry, PlannedTensor } from '../tensors/safetensors-writer.js';
import { formatSafetensorsIndex, SAFETENSORS_INDEX_FILE, ShardedWriter } from '../tensors/shards.js';
import { openDirect } from './slot-write.js';

/** What goes into one output directory. */
export interface OutputDirContents {
  /** The tensors to lay out (their data is written later, by the workers, through `slots`). */
  readonly tensors: readonly PlannedTensor[];
  /** Largest shard, in bytes of tensor data; one file when everything fits. */
  readonly shardBytes: number;
  /** Written as config.json. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Copied from `dir` (file names relative to it), or null; `generated` files are written from text instead. */
  readonly tokenizer: { readonly dir: string; readonly files: readonly string[]; readonly generated?: Readonly<Record<string, string>> } | null;
  /** Written as mergekit_config.yml when not null. */
  readonly configText: string | null;
}

/** Where a tensor's bytes go: the output temp file and its layout entry. */
export interface TensorSlot extends LayoutEntry {
  /** The temp file being written (readable by later stages through `fd`). */
  readonly tempPath: string;
  /** Read-write descriptor of `tempPath`, valid until commit() or abort(). */
  readonly fd: number;
  /** Write-only O_DIRECT descriptor of `tempPath` for whole pages (slot-write.ts), or null where refused. */
  readonly directFd: number | null;
}

interface StagedFile {
  readonly temp: string;
  readonly file: string;
}

/**
 * Writeback of an output file starts while the merge still runs: after every `everyBytes` written
 * to a file, one background fdatasync (at most one in flight per file). The disk then works beside
 * the kernels, and the fsync at commit has only the tail left to flush.
 */
class WritebackPacer {
  readonly #everyBytes: number;
  readonly #pending = new Map<number, number>();
  readonly #inFlight = new Map<number, Promise<void>>();
  #error: unknown = undefined;

  constructor(everyBytes: number) {
    this.#everyBytes = everyBytes;
  }

  written(fd: number, bytes: number): void {
    const pending = (this.#pending.get(fd) ?? 0) + bytes;
    this.#pending.set(fd, pending);
    if (pending < this.#everyBytes || this.#inFlight.has(fd)) return;
    this.#pending.set(fd, 0);
    const sync = new Promise<void>((resolve) => {
      fs.fdatasync(fd, (err) => {
        if (err !== null && this.#error === undefined) this.#error = err;
        this.#inFlight.delete(fd);
        resolve();
      });
    });
    this.#inFlight.set(fd, sync);
  }

  /** Waits for every background sync (descriptors must stay open until then); rethrows a failure when asked. */
  async settle(rethrow: boolean): Promise<void> {
    await Promise.all(this.#inFlight.values());
    if (rethrow && this.#error !== undefined) throw this.#error;
  }
}

/** Bytes written to one output file between two background syncs. */
const WRITEBACK_EVERY_BYTES = 128 * 1024 * 1024;

/** Weight files a previous merge may have left; removed on commit unless this merge wrote them. */
const WEIGHT_FILE = /^(model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json)$/;

export class StagedOutputDir {
  readonly dir: string;
  readonly slots: ReadonlyMap<string, TensorSlot>;
  /** Final file names (relative to dir) that commit() puts in place, weights first. */
  readonly files: readonly string[];
  /** Total size of all files written, in bytes. */
  readonly bytes: number;
  readonly #weights: ShardedWriter;
  readonly #fds: number[];
  readonly #staged: readonly StagedFile[];
  readonly #createdDir: boolean;
  readonly #writeback = new WritebackPacer(WRITEBACK_EVERY_BYTES);
  #state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(init: {
    dir: string;
    slots: ReadonlyMap<string, TensorSlot>;
    files: readonly string[];
    bytes: number;
    weights: ShardedWriter;
    fds: number[];
    staged: readonly StagedFile[];
    createdDir: boolean;
  }) {
    this.dir = init.dir;
    this.slots = init.slots;
    this.files = init.files;
    this.bytes = init.bytes;
    this.#weights = init.weights;
    this.#fds = init.fds;
    this.#staged = init.staged;
    this.#createdDir = init.createdDir;
  }

  /**
   * Lays out the weight files (throwing before any file is touched when the layout is invalid),
   * creates their temp files, and writes config.json, the tokenizer files, mergekit_config.yml and
   * the shard index to temp names.
   */
  static async create(dir: string, contents: OutputDirContents): Promise<StagedOutputDir> {
    const createdDir = !fs.existsSync(dir);
    await fs.promises.mkdir(dir, { recursive: true });
    let weights: ShardedWriter;
    try {
      weights = await ShardedWriter.create(dir, contents.tensors, { maxShardBytes: contents.shardBytes, metadata: { format: 'pt' } });
    } catch (err) {
      if (createdDir) await fs.promises.rmdir(dir).catch(() => undefined);
      throw err;
    }
    const fds: number[] = [];
    const staged: StagedFile[] = [];
    const slots = new Map<string, TensorSlot>();
    const files: string[] = [];
    let bytes = 0;
    try {
      for (const writer of weights.writers) {
        const fd = fs.openSync(writer.tempPath, 'r+');
        fds.push(fd);
        const directFd = openDirect(writer.tempPath);
        if (directFd !== null) fds.push(directFd);
        for (const [name, entry] of writer.layout.entries) slots.set(name, { ...entry, tempPath: writer.tempPath, fd, directFd });
        files.push(path.basename(writer.file));
        bytes += writer.layout.totalBytes;
      }
      if (weights.plan.index !== null) {
        // ShardedWriter writes the index on commit, after the shards.
        files.push(SAFETENSORS_INDEX_FILE);
        bytes += Buffer.byteLength(formatSafetensorsIndex(weights.plan.index));
      }
      const stage = async (name: string, write: (temp: string) => Promise<void>): Promise<void> => {
        const file = path.join(dir, name);
        const temp = tempPathFor(file);
        staged.push({ temp, file });
        await write(temp);
        bytes += (await fs.promises.stat(temp)).size;
        files.push(name);
      };
      await stage('config.json', (temp) => writeDurably(temp, `${JSON.stringify(contents.config, null, 2)}\n`));
      const tokenizer = contents.tokenizer;
      if (tokenizer !== null) {
        for (const name of tokenizer.files) {
          const text = tokenizer.generated?.[name];
          await stage(name, (temp) => (text !== undefined ? writeDurably(temp, text) : copyDurably(path.join(tokenizer.dir, name), temp)));
        }
      }
      const configText = contents.configText;
      if (configText !== null) await stage('mergekit_config.yml', (temp) => writeDurably(temp, configText));
    } catch (err) {
      await discard(weights, fds, staged, createdDir ? dir : null);
      throw err;
    }
    return new StagedOutputDir({ dir, slots, files, bytes, weights, fds, staged, createdDir });
  }

  /** Tells the directory that `bytes` were written through the slot descriptor `fd` (paces writeback). */
  noteWritten(fd: number, bytes: number): void {
    if (this.#state === 'open') this.#writeback.written(fd, bytes);
  }

  /**
   * Puts every file in place: weights first (each fsynced, renamed, directory fsynced), then the
   * small files; then removes weight files of an earlier merge that this one did not write, so a
   * loader never mixes old shards with new ones. Call only after every worker has stopped.
   */
  async commit(): Promise<void> {
    if (this.#state !== 'open') throw new Error(`output ${this.dir} is already ${this.#state}`);
    this.#state = 'committed';
    try {
      await this.#writeback.settle(true);
      closeAll(this.#fds);
      await this.#weights.commit();
      for (const s of this.#staged) await fs.promises.rename(s.temp, s.file);
    } catch (err) {
      // Whatever was not renamed yet is removed; what was is complete.
      await discard(this.#weights, this.#fds, this.#staged, null);
      throw err;
    }
    const written = new Set(this.files);
    for (const name of await fs.promises.readdir(this.dir)) {
      if (WEIGHT_FILE.test(name) && !written.has(name)) await fs.promises.rm(path.join(this.dir, name), { force: true });
    }
    await syncDirectoryOf(path.join(this.dir, 'config.json'));
  }

  /** Removes every temp file (and the directory when this merge created it and it is empty). */
  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    await this.#writeback.settle(false);
    await discard(this.#weights, this.#fds, this.#staged, this.#createdDir ? this.dir : null);
  }
}

function closeAll(fds: number[]): void {
  for (const fd of fds.splice(0)) fs.closeSync(fd);
}

async function discard(
  weights: ShardedWriter,
  fds: number[],
  staged: readonly StagedFile[],
  createdDir: string | null,
): Promise<void> {
  closeAll(fds);
  await weights.abort();
  for (const s of staged) await fs.promises.rm(s.temp, { force: true });
  if (createdDir !== null) {
    // Only an empty directory: anything else in it is not ours to delete.
    await fs.promises.rmdir(createdDir).catch(() => undefined);
  }
}

async function writeDurably(file: string, text: string): Promise<void> {
  const handle = await fs.promises.open(file, 'wx');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function copyDurably(from: string, to: string): Promise<void> {
  try {
    await fs.promises.copyFile(from, to, fs.constants.COPYFILE_EXCL);
  } catch (cause) {
    throw new EvoError('TOKENIZER_COPY_FAILED', `cannot copy tokenizer file ${from}: ${String(cause)}`, { cause });
  }
  const handle = await fs.promises.open(to, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
