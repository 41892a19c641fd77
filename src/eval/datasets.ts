import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { writeFileAtomic } from '../tensors/atomic-file.js';
import { parseCsv } from './csv.js';
import { GSM8K_FILES, MMLU_FILES } from './dataset-manifest.js';
import type { DatasetFile } from './dataset-manifest.js';

/**
 * Benchmark data on disk, in the datasets' original layouts:
 *   <data dir>/gsm8k/{train,test}.jsonl        one {"question", "answer"} per line
 *   <data dir>/mmlu/<subject>_{dev,val,test}.csv   question, A, B, C, D, answer letter (no header)
 * Nothing is downloaded unless asked (`downloadDatasets`, `evo eval --download`); every
 * downloaded file must match its pinned SHA-256.
 */

export type DatasetErrorCode = 'DATASET_MISSING' | 'DATASET_MALFORMED' | 'DATASET_CHECKSUM' | 'DATASET_DOWNLOAD';

export class DatasetError extends EvoError {
  readonly file: string;
  constructor(code: DatasetErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(code, `${file}: ${message}`, options);
    this.name = 'DatasetError';
    this.file = file;
  }
}

export type DataDirSource = 'flag' | 'space' | 'env' | 'default';

export interface DataDirChoice {
  readonly dir: string;
  /** Which setting chose it. */
  readonly source: DataDirSource;
}

export interface DataDirSettings {
  /** `--data-dir` on the command line. */
  readonly flag?: string | undefined;
  /** `data_dir` in the search space (objective options), already resolved against the space file. */
  readonly space?: string | undefined;
  /** Default: process.env (reads EVOMERGE_DATA_DIR and XDG_CACHE_HOME). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * The data directory: --data-dir, else the space's data_dir, else $EVOMERGE_DATA_DIR, else
 * $XDG_CACHE_HOME/evomerge/datasets (~/.cache/evomerge/datasets).
 */
export function resolveDataDir(settings: DataDirSettings = {}): DataDirChoice {
  const env = settings.env ?? process.env;
  if (settings.flag) return { dir: path.resolve(settings.flag), source: 'flag' };
  if (settings.space) return { dir: path.resolve(settings.space), source: 'space' };
  const fromEnv = env.EVOMERGE_DATA_DIR;
  if (fromEnv) return { dir: path.resolve(fromEnv), source: 'env' };
  const cache = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return { dir: path.join(cache, 'evomerge', 'datasets'), source: 'default' };
}

function missing(file: string, dataset: string): DatasetError {
  return new DatasetError(
    'DATASET_MISSING',
    file,
    `not found; put the ${dataset} files there in their original layout (see the README's data section), point --data-dir / EVOMERGE_DATA_DIR at a folder that has them, or run evo eval --download`,
  );
}

/** One parsed JSONL line and its 1-based line number. */
export interface JsonlLine {
  readonly line: number;
  readonly value: unknown;
}

/** Reads a JSONL file: one JSON value per non-blank line. */
export async function readJsonl(file: string): Promise<JsonlLine[]> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DatasetError('DATASET_MISSING', file, 'not found');
    throw err;
  });
  const out: JsonlLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    try {
      out.push({ line: i + 1, value: JSON.parse(line) as unknown });
    } catch (err) {
      throw new DatasetError('DATASET_MALFORMED', `${file}:${i + 1}`, `not valid JSON (${(err as Error).message})`);
    }
  });
  return out;
}

export type Gsm8kSplit = 'train' | 'test';

export interface Gsm8kRecord {
  /** `<split>/<0-based line index>`, e.g. `train/17`. */
  readonly id: string;
  readonly question: string;
  /** The full solution, ending in `#### <number>`. */
  readonly answer: string;
}

/** Loads gsm8k/<split>.jsonl from the data directory. */
export async function loadGsm8k(dataDir: string, split: Gsm8kSplit): Promise<Gsm8kRecord[]> {
  const file = path.join(dataDir, 'gsm8k', `${split}.jsonl`);
  if (!existsSync(file)) throw missing(file, 'GSM8K');
  return (await readJsonl(file)).map(({ line, value }, index) => {
    const rec = value as Record<string, unknown> | null;
    if (typeof rec?.question !== 'string' || typeof rec.answer !== 'string') {
      throw new DatasetError('DATASET_MALFORMED', `${file}:${line}`, 'expected {"question": string, "answer": string}');
    }
    if (!rec.answer.includes('####')) throw new DatasetError('DATASET_MALFORMED', `${file}:${line}`, 'answer has no "#### <number>" line');
    return { id: `${split}/${index}`, question: rec.question, answer: rec.answer };
  });
}

export type MmluSplit = 'dev' | 'val' | 'test';
export type ChoiceLetter = 'A' | 'B' | 'C' | 'D';
export const CHOICE_LETTERS: readonly ChoiceLetter[] = ['A', 'B', 'C', 'D'];

export interface MmluRecord {
  /** `<split>/<subject>/<0-based row>`, e.g. `val/anatomy/3`. */
  readonly id: string;
  readonly subject: string;
  readonly question: string;
  readonly choices: readonly [string, string, string, string];
  readonly answer: ChoiceLetter;
}

/** The subjects that have a `<subject>_<split>.csv` in the data directory, sorted. */
export async function mmluSubjects(dataDir: string, split: MmluSplit): Promise<string[]> {
  const dir = path.join(dataDir, 'mmlu');
  if (!existsSync(dir)) throw missing(dir, 'MMLU');
  const suffix = `_${split}.csv`;
  const subjects = (await readdir(dir)).filter((f) => f.endsWith(suffix)).map((f) => f.slice(0, -suffix.length)).sort();
  if (subjects.length === 0) throw missing(path.join(dir, `<subject>${suffix}`), 'MMLU');
  return subjects;
}

/** Loads mmlu/<subject>_<split>.csv for the given subjects (default: every subject present). */
export async function loadMmlu(dataDir: string, split: MmluSplit, subjects?: readonly string[]): Promise<MmluRecord[]> {
  const list = subjects ?? (await mmluSubjects(dataDir, split));
  const out: MmluRecord[] = [];
  for (const subject of list) {
    const file = path.join(dataDir, 'mmlu', `${subject}_${split}.csv`);
    if (!existsSync(file)) throw missing(file, 'MMLU');
    parseCsv(await readFile(file, 'utf8'), file).forEach((row, index) => {
      const [question, a, b, c, d, answer] = row;
      if (row.length !== 6 || question === undefined || a === undefined || b === undefined || c === undefined || d === undefined) {
        throw new DatasetError('DATASET_MALFORMED', `${file} row ${index + 1}`, `expected 6 fields (question, A, B, C, D, answer), got ${row.length}`);
      }
      const letter = answer?.trim();
      if (letter !== 'A' && letter !== 'B' && letter !== 'C' && letter !== 'D') {
        throw new DatasetError('DATASET_MALFORMED', `${file} row ${index + 1}`, `answer must be A, B, C or D, got ${JSON.stringify(answer)}`);
      }
      out.push({ id: `${split}/${subject}/${index}`, subject, question, choices: [a, b, c, d], answer: letter });
    });
  }
  return out;
}

export type BuiltinDataset = 'gsm8k' | 'mmlu';
export const BUILTIN_DATASETS: readonly BuiltinDataset[] = ['gsm8k', 'mmlu'];

/** The pinned files of a built-in dataset. */
export function datasetFiles(name: BuiltinDataset): readonly DatasetFile[] {
  switch (name) {
    case 'gsm8k':
      return GSM8K_FILES;
    case 'mmlu':
      return MMLU_FILES;
    default: {
      const never: never = name;
      throw new DatasetError('DATASET_MISSING', String(never), 'unknown dataset');
    }
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface DownloadOptions {
  /** Default: globalThis.fetch. */
  readonly fetch?: typeof fetch;
  /** Called once per file with what happened to it. Default: none. */
  readonly onFile?: (file: DatasetFile, status: 'present' | 'downloaded') => void;
  /** Per-file timeout in milliseconds. Default: 120000. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface DownloadSummary {
  readonly downloaded: readonly string[];
  readonly present: readonly string[];
}

/**
 * Fetches each file that is missing or differs from its pinned SHA-256 into the data directory.
 * A file is written only after its bytes match (temp name, fsync, rename); a mismatch throws
 * DATASET_CHECKSUM and writes nothing.
 */
export async function downloadDatasetFiles(files: readonly DatasetFile[], dataDir: string, options: DownloadOptions = {}): Promise<DownloadSummary> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const downloaded: string[] = [];
  const present: string[] = [];
  for (const f of files) {
    const target = path.join(dataDir, f.path);
    const existing = await readFile(target).catch(() => undefined);
    if (existing !== undefined && sha256(existing) === f.sha256) {
      present.push(f.path);
      options.onFile?.(f, 'present');
      continue;
    }
    const signals = [AbortSignal.timeout(options.timeoutMs ?? 120_000), ...(options.signal ? [options.signal] : [])];
    let bytes: Uint8Array;
    try {
      const res = await doFetch(f.url, { signal: AbortSignal.any(signals) });
      if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw new DatasetError('DATASET_DOWNLOAD', target, `cannot download ${f.url}: ${(err as Error).message}`, { cause: err });
    }
    const digest = sha256(bytes);
    if (digest !== f.sha256 || bytes.length !== f.bytes) {
      throw new DatasetError('DATASET_CHECKSUM', target, `${f.url} gave ${bytes.length} bytes with sha256 ${digest}; expected ${f.bytes} bytes with sha256 ${f.sha256}`);
    }
    await mkdir(path.dirname(target), { recursive: true });
    await writeFileAtomic(target, bytes);
    downloaded.push(f.path);
    options.onFile?.(f, 'downloaded');
  }
  return { downloaded, present };
}

/** Downloads the pinned files of built-in datasets (GSM8K: 2 files, 4.9 MB; MMLU: 171 files, 7.6 MB). */
export async function downloadDatasets(names: readonly BuiltinDataset[], dataDir: string, options: DownloadOptions = {}): Promise<DownloadSummary> {
  return downloadDatasetFiles(names.flatMap((n) => datasetFiles(n)), dataDir, options);
}
