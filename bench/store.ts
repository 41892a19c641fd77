/**
 * `npm run bench -- store [--candidates N]`: the run store's write and read costs, per backend.
 * Each backend records the same run: N candidates asked 10 per generation, each started and given
 * a result with 20 item results, and a generation record after every 10. Figures: commits per
 * second and milliseconds per evaluation record (start + result), with ratios to the in-memory
 * store measured in the same run; then the read queries `evo show` makes, on the finished run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createMemoryRunStore } from '../src/store/memory-store.js';
import { openSqliteRunStore } from '../src/store/sqlite-store.js';
import type { RunStore } from '../src/store/types.js';

interface Figures {
  readonly name: string;
  readonly commits: number;
  readonly writeMs: number;
  readonly evalRecordMs: number;
  readonly readMs: number;
}

async function drive(name: string, store: RunStore, candidates: number): Promise<Figures> {
  let commits = 0;
  let evalMs = 0;
  const t0 = performance.now();
  await store.createRun({
    name: 'bench',
    spaceText: 'genes: {}\n',
    space: { genes: {} },
    spaceHash: 'h',
    seeds: { search: 1 },
    packageVersion: 'bench',
    objectives: [
      { name: 'acc', direction: 'maximize' },
      { name: 'size', direction: 'minimize' },
    ],
    generations: Math.ceil(candidates / 10),
  });
  commits++;
  for (let g = 0; g * 10 < candidates; g++) {
    const asked = await store.recordCandidates(
      Array.from({ length: 10 }, (_, i) => ({
        generation: g,
        index: i,
        genome: { w: [g / 1000, i / 10, (g * 10 + i) % 7], density: 0.5 },
        config: `merge_method: ties\nbase_model: base\nmodels:\n  - model: a\n    parameters: {weight: ${i / 10}, density: 0.5}\n`,
        hash: `recipe-${g}-${i}`,
      })),
    );
    commits++;
    for (const { candidate } of asked) {
      const e0 = performance.now();
      await store.startEvaluation(candidate.id);
      const acc = ((candidate.id * 7919) % 1000) / 1000;
      await store.recordResult(candidate.id, {
        scores: { acc: { value: acc, ciLow: acc - 0.04, ciHigh: acc + 0.04, stderr: 0.02, n: 200 }, size: { value: candidate.id % 13, n: 1 } },
        itemsUsed: 200,
        seconds: 30,
        modelBytes: 1e9,
        items: Array.from({ length: 20 }, (_, k) => ({ objective: 'acc', itemId: `q${k}`, correct: k % 3 === 0, score: k % 3 === 0 ? 1 : 0 })),
      });
      evalMs += performance.now() - e0;
      commits += 2;
    }
    const best = await store.best('acc', 5);
    await store.recordGeneration({ generation: g, optimizerState: { g, mean: [0.1, 0.2] }, rngState: { s: g }, front: best.map((b) => b.candidate.id), seconds: 1 });
    commits++;
  }
  const writeMs = performance.now() - t0;
  const r0 = performance.now();
  await store.overview();
  await store.front();
  await store.best('acc', 3);
  await store.best('size', 3);
  await store.generationSummaries();
  const readMs = performance.now() - r0;
  await store.close();
  return { name, commits, writeMs, evalRecordMs: evalMs / candidates, readMs };
}

export async function run(args: readonly string[]): Promise<void> {
  const i = args.indexOf('--candidates');
  const candidates = i >= 0 ? Number(args[i + 1]) : 500;
  if (!Number.isSafeInteger(candidates) || candidates < 10) throw new Error(`--candidates must be an integer ≥ 10, got ${args[i + 1]}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'evomerge-bench-store-'));
  try {
    const results = [
      await drive('memory', createMemoryRunStore(), candidates),
      await drive('sqlite synchronous=normal', openSqliteRunStore(path.join(dir, 'normal', 'run.db'), { synchronous: 'normal' }), candidates),
      await drive('sqlite synchronous=full (default)', openSqliteRunStore(path.join(dir, 'full', 'run.db')), candidates),
    ];
    const base = results[0];
    if (base === undefined) return;
    process.stdout.write(`run store, ${candidates} candidates (${base.commits} commits each)\n`);
    for (const r of results) {
      const perSec = r.commits / (r.writeMs / 1000);
      process.stdout.write(
        `  ${r.name.padEnd(34)} ${perSec.toFixed(0).padStart(7)} commits/s  ${r.evalRecordMs.toFixed(3).padStart(7)} ms per evaluation record ` +
          `(x${(r.evalRecordMs / base.evalRecordMs).toFixed(1)} memory)  show queries ${r.readMs.toFixed(1)} ms (x${(r.readMs / base.readMs).toFixed(1)} memory)\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
