/**
 * Real crashes: a child node process runs the scripted search on a SQLite run store and is killed
 * with SIGKILL at arbitrary moments, several times over. After each kill the database must be
 * intact and consistent (read with raw SQL and through a read-only store); the last child resumes
 * to the end, and the run must equal one never interrupted. The child runs our TypeScript sources
 * transpiled (typescript's transpileModule) into a temp dir, so no build is needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import { checkRunDbInvariants, type RunDbCounts } from './invariants.js';
import { runScripted, snapshotOf } from './scripted-run.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(path.join(tmpdir(), 'evomerge-sigkill-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Transpiles `entry` and every relative import it reaches into `outDir`, keeping the layout. */
function transpileTree(entry: string, outDir: string): string {
  const seen = new Set<string>();
  const visit = (tsFile: string): void => {
    if (seen.has(tsFile)) return;
    seen.add(tsFile);
    const source = readFileSync(tsFile, 'utf8');
    const out = ts.transpileModule(source, {
      fileName: tsFile,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    const target = path.join(outDir, path.relative(repo, tsFile)).replace(/\.ts$/, '.js');
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, out.outputText);
    for (const m of source.matchAll(/\bfrom\s+'(\.{1,2}\/[^']+)\.js'/g)) {
      if (m[1] !== undefined) visit(path.resolve(path.dirname(tsFile), `${m[1]}.ts`));
    }
  };
  visit(entry);
  writeFileSync(path.join(outDir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(path.join(repo, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  return path.join(outDir, path.relative(repo, entry)).replace(/\.ts$/, '.js');
}

let writerJs = '';
beforeAll(() => {
  writerJs = transpileTree(path.join(repo, 'tests/store/crash-writer.ts'), path.join(work, 'js'));
});

const SCRIPT = { generations: 12, population: 6, evalDelayMs: 4 };

function startWriter(file: string): { child: ChildProcess; ready: Promise<void>; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, [writerJs, file, String(SCRIPT.generations), String(SCRIPT.population), String(SCRIPT.evalDelayMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.on('exit', () => reject(new Error(`writer exited before ready: ${stderr}`)));
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, ready, exit };
}

describe('sqlite store under SIGKILL', () => {
  it('stays consistent through kills at arbitrary moments and resumes to the uninterrupted result', async () => {
    const file = path.join(work, 'killed', 'run.db');
    const delaysMs = [5, 40, 90, 15, 150, 60];
    const progress: RunDbCounts[] = [];
    let kills = 0;
    // Kills that left the writer's lease behind: a kill landing after the writer closed the store
    // (its work done, the process not yet exited) interrupts nothing, so no takeover follows.
    let leasesLeft = 0;
    for (const delay of delaysMs) {
      const w = startWriter(file);
      await w.ready;
      await new Promise((r) => setTimeout(r, delay));
      w.child.kill('SIGKILL');
      const { signal, code, stderr } = await w.exit;
      if (signal !== 'SIGKILL') {
        // It finished before the kill: nothing more to interrupt.
        expect(code, stderr).toBe(0);
        break;
      }
      kills += 1;
      const db = new Database(file, { readonly: true });
      leasesLeft += (db.prepare<[], { n: number }>('SELECT count(*) AS n FROM writer_lease').get()?.n ?? 0) > 0 ? 1 : 0;
      db.close();
      progress.push(checkRunDbInvariants(file, 2));
      // Readers (evo runs / evo show) can open the database a killed writer left behind.
      const reader = openSqliteRunStore(file, { readonly: true });
      expect((await reader.overview())?.candidates ?? 0).toBe(progress.at(-1)?.candidates);
      await reader.close();
    }
    const last = startWriter(file);
    await last.ready;
    const end = await last.exit;
    expect(end.code, end.stderr).toBe(0);
    checkRunDbInvariants(file, 2);

    const reference = openSqliteRunStore(path.join(work, 'reference', 'run.db'));
    await runScripted(reference, { generations: SCRIPT.generations, population: SCRIPT.population });
    const resumed = openSqliteRunStore(file, { readonly: true });
    expect(await snapshotOf(resumed)).toEqual(await snapshotOf(reference));
    const events = await resumed.events();
    // Every killed writer held the lease; each successor took it over and said so.
    expect(events.filter((e) => e.kind === 'interrupted')).toHaveLength(leasesLeft);
    expect(leasesLeft).toBeGreaterThanOrEqual(3);
    expect(leasesLeft).toBeGreaterThanOrEqual(kills - 1);
    console.log(`sigkill: ${kills} kills, ${leasesLeft} leaving the lease behind; progress at each kill (candidates/running/generations): ${progress.map((p) => `${p.candidates}/${p.running}/${p.generations}`).join(' ')}`);
    await resumed.close();
    await reference.close();
  });
});
