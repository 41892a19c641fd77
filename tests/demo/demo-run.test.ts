import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { learnDemoTokenizer, demoData } from '../../src/demo/family-data.js';
import { writeTokenizerFiles } from '../../src/demo/byte-level-bpe.js';
import { demoReport } from '../../src/demo/report.js';
import { writeDemoTasks } from '../../src/demo/write-tasks.js';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import { runEvo } from '../cli/run-evo.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';
import { buildDist } from '../model/build-dist.js';

/**
 * A shortened `npm run demo`: search-spaces/demo.yaml with 2 generations of 4 and small subsets,
 * scored by llama.cpp; the store holds the front; `evo export` → `evo merge` rebuilds the best
 * candidate bit for bit; the test-split report runs on it. It uses the committed family
 * (demo/family) when it is there, else an untrained family of the same shape and tokenizer.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const committedFamily = path.join(root, 'demo', 'family');
const hasCommitted = ['base', 'math', 'facts'].every((m) => existsSync(path.join(committedFamily, m, 'model.safetensors')));

let dir = '';
let familyDir = '';
let tasksDir = '';
let runsDir = '';
let spaceFile = '';

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  await buildDist();
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-demo-run-'));
  runsDir = path.join(dir, 'runs');
  if (hasCommitted) {
    familyDir = committedFamily;
    tasksDir = path.join(root, 'demo', 'tasks');
  } else {
    familyDir = path.join(dir, 'family');
    tasksDir = path.join(dir, 'tasks');
    const data = demoData();
    await writeDemoTasks(tasksDir, data);
    const vocab = learnDemoTokenizer(data);
    const shape = { hidden: 32, heads: 4, intermediate: 64, layers: 4, vocab: vocab.tokens.length, tied: true } as const;
    for (const [name, seed] of [['base', 1], ['math', 2], ['facts', 3]] as const) {
      const d = path.join(familyDir, name);
      await writeTinyLlama(d, { ...shape, seed: name === 'base' ? 1 : seed, ...(name === 'base' ? {} : { perturbFrom: { seed: 1, scale: 0.2 } }) });
      await writeTokenizerFiles(d, vocab);
    }
  }
  const space = parse(await readFile(path.join(root, 'search-spaces', 'demo.yaml'), 'utf8')) as {
    base_model: string;
    models: string[];
    objectives: { name: string; limit: number; options: { task: string } }[];
    optimizer: { population: number; generations: number };
  };
  space.base_model = path.join(familyDir, 'base');
  space.models = [path.join(familyDir, 'math'), path.join(familyDir, 'facts')];
  for (const o of space.objectives) {
    o.options.task = path.join(tasksDir, o.name);
    o.limit = 8;
  }
  space.optimizer.population = 4;
  spaceFile = path.join(dir, 'space', 'demo.yaml');
  await mkdir(path.dirname(spaceFile), { recursive: true });
  await writeFile(spaceFile, stringify(space));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe(`shortened demo (${hasCommitted ? 'committed family' : 'untrained family: demo/family is not there'})`, () => {
  it('runs 2 generations, stores the front, and export → evo merge rebuilds the best candidate exactly', async () => {
    const r = await runEvo('search', spaceFile, '--runs-dir', runsDir, '--generations', '2', '--threads', '1', '--context', '256', '--keep-candidates', '--jobs', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/gen 1\/2: best math/);
    expect(r.stderr).toMatch(/gen 2\/2: best math/);

    const store = openSqliteRunStore(path.join(runsDir, 'demo', 'run.db'), { readonly: true });
    let bestId = 0;
    try {
      expect((await store.getRun())?.status).toBe('finished');
      expect((await store.generationSummaries()).length).toBe(2);
      const front = await store.front();
      expect(front.length).toBeGreaterThan(0);
      for (const c of front) {
        expect(c.result?.scores.math?.n).toBe(8);
        expect(c.result?.scores.facts?.n).toBe(8);
      }
      bestId = (await store.best('math', 1))[0]?.candidate.id ?? 0;
    } finally {
      await store.close();
    }
    expect(bestId).toBeGreaterThan(0);

    const best = path.join(dir, 'best.yml');
    const e = await runEvo('export', 'demo', '--runs-dir', runsDir, '--best', '--objective', 'math', '-o', best);
    expect(e.code, e.stderr).toBe(0);
    const merged = path.join(dir, 'merged');
    const m = await runEvo('merge', best, '--out', merged, '--seed', '0', '--jobs', '1');
    expect(m.code, m.stderr).toBe(0);
    const kept = readFileSync(path.join(runsDir, 'demo', 'candidates', String(bestId), 'model.safetensors'));
    expect(readFileSync(path.join(merged, 'model.safetensors')).equals(kept)).toBe(true);
  }, 300_000);

  it('reports every row on the sealed test split', async () => {
    const rows = await demoReport({ run: 'demo', runsDir, familyDir, tasksDir, threads: 1, limit: 6, log: () => undefined });
    expect(rows.map((r) => r.label.replace(/ \(#\d+\)$/, ''))).toEqual([
      'base',
      'math specialist',
      'facts specialist',
      'linear 50/50',
      'ties (default)',
      'task_arithmetic (default)',
      'evolved: best math',
      'evolved: best facts',
      'evolved: best combined',
    ]);
    for (const r of rows) expect([r.math.n, r.facts.n]).toEqual([6, 6]);
  }, 180_000);
});
