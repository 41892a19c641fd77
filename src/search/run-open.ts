import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { StoreError } from '../store/errors.js';
import { DEFAULT_RUNS_DIR, resolveRunDb, runDbPath } from '../store/run-directory.js';
import { openSqliteRunStore, type SqliteRunStore } from '../store/sqlite-store.js';
import type { JsonValue, RunRecord } from '../store/types.js';
import {
  assertSameObjectives,
  generationsNote,
  modelsNote,
  resolveSpacePaths,
  runOverrides,
  runSpaceHash,
  type RunSpace,
  spaceChangeNote,
  storedObjectives,
  storedSpace,
} from './run-space.js';
import { changedModels, fingerprintFormat, modelFingerprints } from './model-fingerprint.js';
import { parseSpace } from './space.js';

/**
 * Opening a run for the runner: create it from a space file, continue it from the same (or, with
 * --force, a changed) space file, or continue it from the store alone (`evo resume <run>`).
 */

export interface OpenRunOptions {
  /** Start or continue the run named in this space file. */
  readonly spaceFile?: string;
  /** Continue this run: a name under runsDir, a run directory, or a run.db file. */
  readonly run?: string;
  /** Default: 'runs' (relative to the working directory). */
  readonly runsDir?: string;
  /** Generations to reach (a new target for an existing run). Default: the run's, else the space's. */
  readonly generations?: number;
  /** The run must exist already (`--resume`). Default: false. */
  readonly resume?: boolean;
  /** Continue even though the space file changed since the run was created. Default: false. */
  readonly force?: boolean;
  /** Recorded with a new run. */
  readonly packageVersion: string;
}

export interface OpenedRun<T> {
  /** What `prepare` returned for the space (it ran before anything was written). */
  readonly prepared: T;
  readonly store: SqliteRunStore;
  readonly run: RunRecord;
  readonly space: RunSpace;
  readonly dbFile: string;
  /** Generations the run aims for now. */
  readonly targetGenerations: number;
  /** False when this call created the run. */
  readonly existed: boolean;
}

function changedSpaceError(name: string, storedHash: string, newHash: string): StoreError {
  return new StoreError(
    'SPACE_CHANGED',
    `search space changed: run '${name}' was started with space ${storedHash.slice(0, 12)}, the file now gives ${newHash.slice(0, 12)}; ` +
      `continue with the original file (or 'evo resume ${name}'), pass --force to continue with the changed space, or rename the run to start a new one`,
  );
}

/**
 * Refuses to continue a run whose models changed on disk since their fingerprints were recorded
 * (with --force, records the new ones and goes on); records them for a run that has none yet.
 */
async function checkModels(store: SqliteRunStore, name: string, space: RunSpace, stored: Readonly<Record<string, string>> | null, force: boolean): Promise<void> {
  const refs = [space.baseModel, ...space.models];
  const now = await modelFingerprints(refs);
  if (stored !== null) {
    // Runs recorded before format 2 are compared in their own format, then upgraded.
    const legacy = Object.values(stored).some((f) => fingerprintFormat(f) === 1);
    const comparable = legacy ? await modelFingerprints(refs, (ref) => (stored[ref] === undefined ? 2 : fingerprintFormat(stored[ref]))) : now;
    const changed = changedModels(stored, comparable);
    if (changed.length === 0) {
      if (legacy) await store.appendEvent('note', 'model fingerprints recorded (format 2)', modelsNote(now));
      return;
    }
    if (!force) {
      throw new StoreError(
        'MODELS_CHANGED',
        `models changed since run '${name}' was started: ${changed.join(', ')} (their files are not the ones its candidates were built from); ` +
          `restore them, rename the run to start a new one, or continue with the new files by 'evo search SPACE --force'`,
      );
    }
    await store.appendEvent('note', `models changed (${changed.join(', ')}); continuing with the new files (--force)`, modelsNote(now));
    return;
  }
  await store.appendEvent('note', 'model fingerprints recorded', modelsNote(now));
}

/** Checks and loads what a space needs (base model, evaluators) before the run is touched. */
export type PrepareRun<T> = (space: RunSpace) => Promise<T>;

async function fromSpaceFile<T>(file: string, options: OpenRunOptions, prepare: PrepareRun<T>): Promise<OpenedRun<T>> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    throw new EvoError('SPACE_NOT_FOUND', `${file}: cannot read the search space (${err instanceof Error ? err.message : String(err)})`);
  });
  const space = resolveSpacePaths(parseSpace(text, file), path.dirname(path.resolve(file)));
  const hash = runSpaceHash(space);
  const dbFile = runDbPath(options.runsDir ?? DEFAULT_RUNS_DIR, space.name);
  if (options.resume === true && !existsSync(dbFile)) {
    throw new StoreError('RUN_NOT_FOUND', `--resume: no run '${space.name}' in ${options.runsDir ?? DEFAULT_RUNS_DIR} (looked for ${dbFile}); drop --resume to start it`);
  }
  const prepared = await prepare(space);
  const store = openSqliteRunStore(dbFile);
  try {
    const existing = await store.getRun();
    if (existing === undefined) {
      if (options.resume === true) throw new StoreError('RUN_MISSING', `${dbFile}: no run was created in this store`);
      const generations = options.generations ?? space.optimizer.generations;
      const run = await store.createRun({
        name: space.name,
        spaceText: text,
        space: space as unknown as JsonValue,
        spaceHash: hash,
        seeds: { search: space.optimizer.seed, merge: space.mergeSeed },
        packageVersion: options.packageVersion,
        objectives: storedObjectives(space),
        generations,
      });
      await checkModels(store, space.name, space, null, false);
      return { prepared, store, run, space, dbFile, targetGenerations: generations, existed: false };
    }
    const overrides = runOverrides(await store.events());
    const effectiveHash = overrides.space?.hash ?? existing.spaceHash;
    if (effectiveHash !== hash) {
      if (options.force !== true) throw changedSpaceError(existing.name, effectiveHash, hash);
      assertSameObjectives(existing.objectives, space, existing.name);
      await store.appendEvent('note', `space changed (${effectiveHash.slice(0, 12)} → ${hash.slice(0, 12)}); continuing with the changed space (--force)`, spaceChangeNote(space, hash, text));
    }
    await checkModels(store, existing.name, space, overrides.models, options.force === true);
    const target = await settleTarget(store, options.generations, overrides.generations ?? existing.generations);
    return { prepared, store, run: existing, space, dbFile, targetGenerations: target, existed: true };
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function fromStore<T>(runArg: string, options: OpenRunOptions, prepare: PrepareRun<T>): Promise<OpenedRun<T>> {
  const dbFile = resolveRunDb(options.runsDir ?? DEFAULT_RUNS_DIR, runArg);
  const store = openSqliteRunStore(dbFile);
  try {
    const run = await store.getRun();
    if (run === undefined) throw new StoreError('RUN_MISSING', `${dbFile}: no run was created in this store`);
    const overrides = runOverrides(await store.events());
    const space = storedSpace(overrides.space?.space ?? run.space, overrides.space?.hash ?? run.spaceHash, dbFile);
    const prepared = await prepare(space);
    await checkModels(store, run.name, space, overrides.models, options.force === true);
    const target = await settleTarget(store, options.generations, overrides.generations ?? run.generations);
    return { prepared, store, run, space, dbFile, targetGenerations: target, existed: true };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** The generation target in force, recording a new one given on the command line. */
async function settleTarget(store: SqliteRunStore, requested: number | undefined, current: number): Promise<number> {
  if (requested === undefined || requested === current) return current;
  await store.appendEvent('note', `generation target ${current} → ${requested}`, generationsNote(requested));
  return requested;
}

/**
 * Opens (or creates) the run the options name, holding its writer lease until `store.close()`.
 * `prepare` runs on the space first, so a space whose models or evaluators cannot be loaded
 * fails before a new run is created or an existing one is changed.
 */
export async function openRun<T>(options: OpenRunOptions, prepare: PrepareRun<T>): Promise<OpenedRun<T>> {
  if ((options.spaceFile === undefined) === (options.run === undefined)) throw new Error('internal: give exactly one of spaceFile and run');
  if (options.spaceFile !== undefined) return fromSpaceFile(options.spaceFile, options, prepare);
  return fromStore(options.run ?? '', options, prepare);
}
