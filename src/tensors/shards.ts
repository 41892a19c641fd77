/**
 * Sharded checkpoints as Hugging Face lays them out: `model-00001-of-00003.safetensors`, … plus
 * `model.safetensors.index.json` mapping every tensor to its shard; a checkpoint that fits one shard
 * is a single `model.safetensors` with no index.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { writeFileAtomic } from './atomic-file.js';
import { dtypeByteSize } from './dtype.js';
import { readSafetensorsHeader, shapeElementCount } from './safetensors.js';
import { SafetensorsWriteError, SafetensorsWriter, planSafetensorsLayout } from './safetensors-writer.js';
import type { PlannedTensor } from './safetensors-writer.js';

// Declared in hf-files.ts with the folder's other file names; re-exported for its importers here.
export { SAFETENSORS_INDEX_FILE } from './hf-files.js';
/** An index file larger than this is rejected before it is read, in bytes. */
export const MAX_INDEX_BYTES = 256 * 1024 * 1024;

/** `model.safetensors.index.json`, as Hugging Face writes it. */
export interface SafetensorsIndex {
  /** `total_size`: bytes of tensor data over all shards (headers excluded); other keys are kept. */
  metadata: { total_size: number; [key: string]: unknown };
  /** Tensor name → shard file name (a bare file name in the index's directory). */
  weight_map: Record<string, string>;
}

export interface ShardPlan {
  /** Shards in order, each with its tensors in plan order (the file layout re-sorts them). */
  readonly shards: readonly { readonly file: string; readonly tensors: readonly PlannedTensor[] }[];
  /** The index to write beside the shards, or null for a single `model.safetensors`. */
  readonly index: SafetensorsIndex | null;
}

/**
 * A sharding plan or index was rejected:
 * - BAD_SHARD_SIZE: maxShardBytes is not a positive integer.
 * - INDEX_UNREADABLE / INDEX_TOO_LARGE / INDEX_NOT_JSON / INDEX_NOT_OBJECT.
 * - INDEX_BAD_METADATA: metadata is not an object, or total_size is not a non-negative integer.
 * - INDEX_BAD_WEIGHT_MAP: weight_map missing, not an object, or a value is not a string.
 * - INDEX_BAD_SHARD_NAME: a shard is not a bare file name (a path, '..', empty).
 */
export type ShardErrorCode =
  | 'BAD_SHARD_SIZE'
  | 'INDEX_UNREADABLE'
  | 'INDEX_TOO_LARGE'
  | 'INDEX_NOT_JSON'
  | 'INDEX_NOT_OBJECT'
  | 'INDEX_BAD_METADATA'
  | 'INDEX_BAD_WEIGHT_MAP'
  | 'INDEX_BAD_SHARD_NAME';

export class ShardError extends EvoError {
  declare readonly code: ShardErrorCode;
  readonly file: string | undefined;
  /** The offending key (e.g. `weight_map["x.weight"]`), when there is one. */
  readonly key: string | undefined;
  constructor(code: ShardErrorCode, detail: string, where: { file?: string; key?: string } = {}, options?: { cause?: unknown }) {
    super(code, `${where.file === undefined ? '' : `${where.file}: `}${where.key === undefined ? '' : `${where.key}: `}${detail}`, options);
    this.name = 'ShardError';
    this.file = where.file;
    this.key = where.key;
  }
}

/** Bytes of one tensor's data (the shape is assumed already checked). */
export function plannedTensorBytes(t: PlannedTensor): number {
  return (shapeElementCount(t.shape) ?? Number.POSITIVE_INFINITY) * dtypeByteSize(t.dtype);
}

/** Hugging Face's shard name: `model-00002-of-00005.safetensors`. */
export function shardFileName(index: number, count: number, basename = 'model'): string {
  const pad = (n: number): string => String(n).padStart(5, '0');
  return `${basename}-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Splits `tensors`, kept in the given order, into shards of at most `maxShardBytes` bytes of tensor
 * data each. A tensor larger than the limit gets a shard of its own. One shard → `model.safetensors`
 * and no index.
 */
export function planShards(tensors: readonly PlannedTensor[], maxShardBytes: number, basename = 'model'): ShardPlan {
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes <= 0) {
    throw new ShardError('BAD_SHARD_SIZE', `maxShardBytes must be a positive integer, got ${maxShardBytes}`);
  }
  // Names, dtypes and shapes are checked over the whole checkpoint before anything is split.
  planSafetensorsLayout(tensors);
  const groups: PlannedTensor[][] = [];
  let current: PlannedTensor[] = [];
  let currentBytes = 0;
  let total = 0;
  for (const t of tensors) {
    const bytes = plannedTensorBytes(t);
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += bytes;
    total += bytes;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);

  if (groups.length === 1) {
    return Object.freeze({ shards: Object.freeze([Object.freeze({ file: `${basename}.safetensors`, tensors: groups[0] ?? [] })]), index: null });
  }
  const shards = groups.map((g, i) => Object.freeze({ file: shardFileName(i, groups.length, basename), tensors: Object.freeze(g) }));
  const weight_map: Record<string, string> = {};
  for (const s of shards) for (const t of s.tensors) weight_map[t.name] = s.file;
  return Object.freeze({ shards: Object.freeze(shards), index: { metadata: { total_size: total }, weight_map } });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isBareFileName(s: string): boolean {
  return s.length > 0 && s !== '.' && s !== '..' && !s.includes('/') && !s.includes('\\') && !s.includes('\0');
}

/**
 * Parses index JSON text. A missing `metadata` or `total_size` (older mergekit wrote none) is
 * reported as total_size undefined via `totalSizeKnown: false`, for `readSafetensorsIndex` to fill.
 */
export function parseSafetensorsIndex(text: string, file: string): { index: SafetensorsIndex; totalSizeKnown: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ShardError('INDEX_NOT_JSON', `not JSON (${cause instanceof Error ? cause.message.slice(0, 120) : 'parse error'})`, { file }, { cause });
  }
  if (!isPlainObject(json)) throw new ShardError('INDEX_NOT_OBJECT', 'not a JSON object', { file });
  const rawMeta = json.metadata ?? {};
  if (!isPlainObject(rawMeta)) throw new ShardError('INDEX_BAD_METADATA', 'is not an object', { file, key: 'metadata' });
  const totalSize = rawMeta.total_size;
  const totalSizeKnown = totalSize !== undefined && totalSize !== null;
  if (totalSizeKnown && !(typeof totalSize === 'number' && Number.isSafeInteger(totalSize) && totalSize >= 0)) {
    throw new ShardError('INDEX_BAD_METADATA', `must be a non-negative integer, got ${JSON.stringify(totalSize)}`, {
      file,
      key: 'metadata.total_size',
    });
  }
  const rawMap = json.weight_map;
  if (!isPlainObject(rawMap)) throw new ShardError('INDEX_BAD_WEIGHT_MAP', 'is missing or not an object', { file, key: 'weight_map' });
  const weight_map: Record<string, string> = {};
  for (const [name, shard] of Object.entries(rawMap)) {
    const key = `weight_map[${JSON.stringify(name)}]`;
    if (typeof shard !== 'string') throw new ShardError('INDEX_BAD_WEIGHT_MAP', 'shard is not a string', { file, key });
    if (!isBareFileName(shard)) {
      throw new ShardError('INDEX_BAD_SHARD_NAME', `shard ${JSON.stringify(shard)} is not a file name in the index's directory`, { file, key });
    }
    Object.defineProperty(weight_map, name, { value: shard, enumerable: true, writable: true, configurable: true });
  }
  const metadata = { ...rawMeta, total_size: totalSizeKnown ? (totalSize as number) : 0 };
  return { index: { metadata, weight_map }, totalSizeKnown };
}

/**
 * Reads and validates an index file. When it lacks `metadata.total_size`, the size is computed from
 * the shards' headers (sum of their tensors' bytes).
 */
export async function readSafetensorsIndex(file: string): Promise<SafetensorsIndex> {
  let text: string;
  try {
    const st = await fsp.stat(file);
    if (st.size > MAX_INDEX_BYTES) throw new ShardError('INDEX_TOO_LARGE', `${st.size} bytes exceeds ${MAX_INDEX_BYTES}`, { file });
    text = await fsp.readFile(file, 'utf8');
  } catch (cause) {
    if (cause instanceof ShardError) throw cause;
    throw new ShardError('INDEX_UNREADABLE', `cannot read: ${cause instanceof Error ? cause.message : String(cause)}`, { file }, { cause });
  }
  const { index, totalSizeKnown } = parseSafetensorsIndex(text, file);
  if (!totalSizeKnown) {
    let total = 0;
    const dir = path.dirname(file);
    for (const shard of new Set(Object.values(index.weight_map))) {
      const header = await readSafetensorsHeader(path.join(dir, shard));
      for (const t of header.tensors.values()) total += t.byteLength;
    }
    index.metadata.total_size = total;
  }
  return index;
}

/** Code-point order, as Python's sort_keys uses. */
function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function sortedObject<T>(obj: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(obj).sort(compareCodePoints)) {
    Object.defineProperty(out, k, { value: obj[k], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The index as transformers writes it: 2-space indent, keys sorted, trailing newline. */
export function formatSafetensorsIndex(index: SafetensorsIndex): string {
  const doc = { metadata: sortedObject(index.metadata), weight_map: sortedObject(index.weight_map) };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Writes the index atomically. */
export async function writeSafetensorsIndex(file: string, index: SafetensorsIndex): Promise<void> {
  await writeFileAtomic(file, formatSafetensorsIndex(index));
}

/** Options for ShardedWriter.create. */
export interface ShardedWriterOptions {
  /** Largest shard, in bytes of tensor data. Default: 5,000,000,000 (mergekit's default). */
  maxShardBytes?: number;
  /** `__metadata__` for every shard. Default: none. */
  metadata?: Readonly<Record<string, string>>;
  /** File basename. Default: 'model'. */
  basename?: string;
}

/** Where a tensor goes, for threads that write it themselves. */
export interface ShardedTensorLocation {
  /** Final shard path. */
  readonly file: string;
  /** Temporary path to open with 'r+' until commit. */
  readonly tempPath: string;
  readonly byteOffset: number;
  readonly byteLength: number;
}

/**
 * Writes a whole (possibly sharded) checkpoint's weights into `dir` through temporary files.
 * commit() commits every shard, then writes the index last, so a directory with an index always
 * has all its shards; abort() removes every temporary file.
 */
export class ShardedWriter {
  readonly dir: string;
  readonly basename: string;
  readonly plan: ShardPlan;
  readonly writers: readonly SafetensorsWriter[];
  readonly #byTensor: ReadonlyMap<string, SafetensorsWriter>;

  private constructor(dir: string, basename: string, plan: ShardPlan, writers: readonly SafetensorsWriter[]) {
    this.dir = dir;
    this.basename = basename;
    this.plan = plan;
    this.writers = writers;
    const byTensor = new Map<string, SafetensorsWriter>();
    for (const w of writers) for (const name of w.layout.order) byTensor.set(name, w);
    this.#byTensor = byTensor;
  }

  static async create(dir: string, tensors: readonly PlannedTensor[], options: ShardedWriterOptions = {}): Promise<ShardedWriter> {
    const basename = options.basename ?? 'model';
    const plan = planShards(tensors, options.maxShardBytes ?? 5_000_000_000, basename);
    const writers: SafetensorsWriter[] = [];
    try {
      for (const s of plan.shards) writers.push(await SafetensorsWriter.create(path.join(dir, s.file), s.tensors, options.metadata));
    } catch (err) {
      for (const w of writers) await w.abort();
      throw err;
    }
    return new ShardedWriter(dir, basename, plan, writers);
  }

  #writer(name: string): SafetensorsWriter {
    const w = this.#byTensor.get(name);
    if (w === undefined) throw new SafetensorsWriteError('UNKNOWN_TENSOR', 'not in this checkpoint’s plan', { file: this.dir, tensor: name });
    return w;
  }

  location(name: string): ShardedTensorLocation {
    const w = this.#writer(name);
    const e = w.layout.entries.get(name);
    if (e === undefined) throw new SafetensorsWriteError('UNKNOWN_TENSOR', 'not in this checkpoint’s plan', { file: this.dir, tensor: name });
    return { file: w.file, tempPath: w.tempPath, byteOffset: e.byteOffset, byteLength: e.byteLength };
  }

  async writeTensor(name: string, bytes: Uint8Array): Promise<void> {
    await this.#writer(name).writeTensor(name, bytes);
  }

  async writeTensorAt(name: string, offsetInTensor: number, bytes: Uint8Array): Promise<void> {
    await this.#writer(name).writeTensorAt(name, offsetInTensor, bytes);
  }

  async commit(): Promise<void> {
    try {
      for (const w of this.writers) await w.commit();
      if (this.plan.index !== null) {
        await writeSafetensorsIndex(path.join(this.dir, `${this.basename}.safetensors.index.json`), this.plan.index);
      }
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    for (const w of this.writers) await w.abort();
  }
}
