import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEvo } from './run-evo.js';
import { formatDuration } from '../../src/cli/search.js';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';
import { writeFamily, writeSpace, type Family } from '../search/runner-fixtures.js';

/**
 * `evo search`, `evo resume` and `evo export --materialize` through the CLI entry (in process):
 * output on the right streams, exit codes 0 / 1 / 2, one-line errors, and an exported recipe that
 * `evo merge` rebuilds into exactly the bytes that were scored.
 */

let dir = '';
let family: Family;
let runsDir = '';

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-cli-search-'));
  family = await writeFamily(path.join(dir, 'family'));
  runsDir = path.join(dir, 'runs');
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function evo(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await runEvo(...args);
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** Every file of a directory (recursively) → its bytes. */
function filesOf(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.set(path.relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return out;
}

describe('evo search / evo resume', () => {
  let spaceFile = '';

  beforeAll(async () => {
    spaceFile = await writeSpace(family, { name: 'cli-run', population: 4, generations: 2, methods: ['dare_ties'], mergeSeed: 7 });
  });

  it('runs a search: per-generation progress on stderr, the summary on stdout', async () => {
    const r = await evo('search', spaceFile, '--runs-dir', runsDir, '--jobs', '1', '--keep-candidates');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/^gen 1\/2: best closeness -?[\d.]+ n=\d+ \(#\d+\) \| median closeness -?[\d.]+ \| front \d+ \| 4 evaluated in \S+, [\d.]+ eval\/s, ETA \S+$/m);
    expect(r.err).toMatch(/^gen 2\/2: /m);
    expect(r.out).toMatch(/^run 'cli-run' finished \(generations\): 2 generations, 6 candidates \(6 evaluated, 0 failed\)$/m);
    expect(r.out).toMatch(/evaluator idle [\d.]+% \(overlap ×[\d.]+\)/);
  });

  it('continues with evo resume --generations N, printing JSON lines with --json', async () => {
    const r = await evo('resume', 'cli-run', '--runs-dir', runsDir, '--generations', '3', '--jobs', '1', '--json', '--keep-candidates');
    expect(r.code, r.err).toBe(0);
    const events = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; generation?: number; status?: string });
    expect(new Set(events.map((e) => e.event))).toEqual(new Set(['note', 'build', 'evaluate', 'candidate', 'generation', 'run']));
    expect(events.filter((e) => e.event === 'generation').map((e) => e.generation)).toEqual([2]);
    expect(events.at(-1)).toMatchObject({ event: 'run', status: 'finished', generations: 3 });
    expect(events.filter((e) => e.event === 'candidate')).toHaveLength(2);
  });

  it('refuses a changed space without --force (exit 1, one line) and bad flags (exit 2)', async () => {
    const changed = path.join(dir, 'family', 'cli-run-changed.yaml');
    await writeFile(changed, readFileSync(spaceFile, 'utf8').replace('seed: 3', 'seed: 4'));
    const r = await evo('search', changed, '--runs-dir', runsDir, '--jobs', '1');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^evo: search space changed: run 'cli-run' was started with space [0-9a-f]{12}, the file now gives [0-9a-f]{12}; .*--force.*\n$/);
    expect((await evo('search', spaceFile, '--generations', 'two', '--runs-dir', runsDir)).code).toBe(2);
    expect((await evo('search', spaceFile, '--jobs', '0', '--runs-dir', runsDir)).code).toBe(2);
    const missing = await evo('search', path.join(dir, 'nope.yaml'), '--runs-dir', runsDir);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^evo: .*nope\.yaml: cannot read the search space .*\n$/);
    const noRun = await evo('resume', 'no-such-run', '--runs-dir', runsDir);
    expect(noRun.code).toBe(1);
    expect(noRun.err).toMatch(/^evo: no run 'no-such-run' in .*\n$/);
  });

  it('exports the best recipe; evo merge of it and export --materialize rebuild the scored bytes', async () => {
    const best = path.join(dir, 'best.yml');
    const rebuilt = path.join(dir, 'rebuilt');
    const r = await evo('export', 'cli-run', '--runs-dir', runsDir, '--best', '-o', best, '--materialize', rebuilt, '--jobs', '1', '--json');
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as { candidates: number[]; materialized: { id: number; dir: string; mergeSeed: number }[] };
    const id = report.candidates[0] ?? 0;
    expect(report.materialized).toEqual([expect.objectContaining({ id, dir: rebuilt, mergeSeed: 7 })]);

    // The model the search evaluated, kept by --keep-candidates.
    const kept = filesOf(path.join(runsDir, 'cli-run', 'candidates', String(id)));
    expect([...kept.keys()].sort()).toContain('model.safetensors');
    const fromExport = filesOf(rebuilt);
    expect([...fromExport.keys()].sort()).toEqual([...kept.keys()].sort());
    for (const [name, bytes] of kept) expect(fromExport.get(name)?.equals(bytes), name).toBe(true);

    // `evo merge` of the exported YAML with the run's merge seed gives the same weights.
    const merged = path.join(dir, 'merged');
    const m = await evo('merge', best, '--out', merged, '--seed', '7', '--jobs', '1');
    expect(m.code, m.err).toBe(0);
    expect(readFileSync(path.join(merged, 'model.safetensors')).equals(kept.get('model.safetensors') ?? Buffer.alloc(0))).toBe(true);
    // The DARE masks depend on the seed: another seed builds other weights.
    const other = path.join(dir, 'other-seed');
    expect((await evo('merge', best, '--out', other, '--seed', '0', '--jobs', '1')).code).toBe(0);
    expect(readFileSync(path.join(other, 'model.safetensors')).equals(kept.get('model.safetensors') ?? Buffer.alloc(0))).toBe(false);

    // The score stored for it is the evaluator's score of those bytes.
    const store = openSqliteRunStore(path.join(runsDir, 'cli-run', 'run.db'), { readonly: true });
    try {
      const result = await store.result(id);
      const { evaluate } = (await import(family.evaluator)) as { evaluate: (c: unknown, o: unknown, x: unknown) => Promise<{ score: number }> };
      const again = await evaluate({ id, dir: merged, genome: {}, hash: '' }, { target: family.target }, { generation: 0 });
      expect(again.score).toBe(result?.scores.closeness?.value);
    } finally {
      await store.close();
    }
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [59.4, '59s'],
    [61, '1m01s'],
    [3725, '1h02m'],
    [-1, '?'],
  ])('%s s → %s', (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });
});
