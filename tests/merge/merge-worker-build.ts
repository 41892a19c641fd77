import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const worker = path.join(root, 'dist', 'src', 'merge', 'worker.js');

function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

function isFresh(): boolean {
  const built = fs.statSync(worker, { throwIfNoEntry: false });
  return built !== undefined && built.mtimeMs >= newestSourceMs(path.join(root, 'src'));
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  // One build at a time across test files running in parallel forks.
  const lock = path.join(os.tmpdir(), `evomerge-build-${Buffer.from(root).toString('hex').slice(-24)}.lock`);
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 120_000) fs.rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Compiles the project to dist/ when the merge worker there is missing or older than a source
 * file: Piscina loads the worker as JavaScript from dist/ (materialize.ts mergeWorkerFile()).
 * tsc emits even when files elsewhere in the tree have type errors, so only the output is checked.
 */
export async function ensureMergeWorkerBuilt(): Promise<void> {
  if (isFresh()) return;
  await withLock(async () => {
    if (isFresh()) return;
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    await promisify(execFile)(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root }).catch(
      () => undefined,
    );
    // tsc keeps an unchanged output's mtime; mark the build as done.
    if (fs.existsSync(worker)) fs.utimesSync(worker, new Date(), new Date());
  });
  if (!fs.existsSync(worker)) throw new Error(`the build did not produce ${worker}`);
}
