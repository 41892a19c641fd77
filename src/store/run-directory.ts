/**
 * The runs directory layout: `<runsDir>/<name>/run.db`, one SQLite run store per run.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { StoreError } from './errors.js';
import { assertRunName } from './records.js';
import { openSqliteRunStore } from './sqlite-store.js';
import type { RunOverview } from './types.js';

/** The directory evo uses when --runs-dir is not given, relative to the working directory. */
export const DEFAULT_RUNS_DIR = 'runs';

export const RUN_DB_FILE = 'run.db';

/** `<runsDir>/<name>/run.db`, after checking the name is a safe directory name. */
export function runDbPath(runsDir: string, name: string): string {
  assertRunName(name);
  return path.join(runsDir, name, RUN_DB_FILE);
}

/**
 * The database of an existing run named on the command line: a run name under `runsDir`, a run
 * directory, or a `.db` file. Throws RUN_NOT_FOUND naming where it looked.
 */
export function resolveRunDb(runsDir: string, run: string): string {
  if (run.endsWith('.db') && existsSync(run) && statSync(run).isFile()) return run;
  if (run.includes('/') || run.includes(path.sep)) {
    const file = path.join(run, RUN_DB_FILE);
    if (existsSync(file)) return file;
    throw new StoreError('RUN_NOT_FOUND', `${run}: not a run directory (no ${RUN_DB_FILE} in it)`);
  }
  const file = runDbPath(runsDir, run);
  if (!existsSync(file)) {
    throw new StoreError('RUN_NOT_FOUND', `no run '${run}' in ${runsDir} (looked for ${file}); list runs with 'evo runs --runs-dir DIR'`);
  }
  return file;
}

export type RunListing =
  | { readonly dir: string; readonly file: string; readonly ok: true; readonly overview: RunOverview }
  | { readonly dir: string; readonly file: string; readonly ok: false; readonly code: string; readonly error: string };

/**
 * Every run under `runsDir` (sorted by directory name), each read through a read-only store while
 * a writer may be running. A run that cannot be read is listed with its error instead of failing
 * the whole listing. A missing `runsDir` lists nothing.
 */
export async function listRuns(runsDir: string): Promise<readonly RunListing[]> {
  if (!existsSync(runsDir)) return [];
  const dirs = readdirSync(runsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(runsDir, d.name, RUN_DB_FILE)))
    .map((d) => d.name)
    .sort();
  const listings: RunListing[] = [];
  for (const dir of dirs) {
    const file = path.join(runsDir, dir, RUN_DB_FILE);
    try {
      const store = openSqliteRunStore(file, { readonly: true });
      try {
        const overview = await store.overview();
        if (overview === undefined) listings.push({ dir, file, ok: false, code: 'RUN_MISSING', error: `${file}: no run was created in it` });
        else listings.push({ dir, file, ok: true, overview });
      } finally {
        await store.close();
      }
    } catch (err) {
      const code = err instanceof StoreError ? err.code : 'UNREADABLE';
      listings.push({ dir, file, ok: false, code, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return Object.freeze(listings);
}
