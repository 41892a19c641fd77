import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMergeConfig } from '../../src/merge/config.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';
import { writeFamily, writeSpace, type Family } from '../search/runner-fixtures.js';
import { runEvo } from './run-evo.js';

/**
 * A search over each method made searchable late (multislerp, karcher, nearswap), through the
 * real CLI: `evo search` builds and scores candidates decoded to that method, `evo export
 * --format mergekit` writes the best one's YAML, and `evo merge` of that file gives exactly the
 * bytes the candidate builder produced and the search scored (kept by --keep-candidates).
 */

let dir = '';
let family: Family;
let runsDir = '';

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-cli-search-methods-'));
  family = await writeFamily(path.join(dir, 'family'));
  runsDir = path.join(dir, 'runs');
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('evo search → export → evo merge for the new searchable methods', () => {
  it.each([
    ['multislerp', { weight: { min: 0.2, max: 1 } }],
    ['karcher', {}],
    ['nearswap', {}],
  ] as const)('%s', async (method, o) => {
    const name = `run-${method}`;
    const spaceFile = await writeSpace(family, {
      name,
      methods: [method],
      granularity: 2,
      population: 2,
      generations: 1,
      elitism: 0,
      ...('weight' in o ? { weight: [o.weight.min, o.weight.max] as const } : {}),
    });
    const s = await runEvo('search', spaceFile, '--runs-dir', runsDir, '--jobs', '1', '--keep-candidates');
    expect(s.code, s.stderr).toBe(0);
    // karcher has no genes: every genome is the same recipe, built and scored once.
    expect(s.stdout).toMatch(method === 'karcher' ? /1 candidates \(1 evaluated, 0 failed\)/ : /2 candidates \(2 evaluated, 0 failed\)/);

    const best = path.join(dir, `${method}.yml`);
    const e = await runEvo('export', name, '--runs-dir', runsDir, '--best', '--format', 'mergekit', '-o', best, '--json');
    expect(e.code, e.stderr).toBe(0);
    const id = (JSON.parse(e.stdout) as { candidates: number[] }).candidates[0] ?? -1;
    const config = parseMergeConfig(readFileSync(best, 'utf8'), best).config;
    const doc = config.documents[0];
    expect(config.documents).toHaveLength(1);
    expect(doc?.merge_method).toBe(method);
    // What the decoder means by each method (semantics §1.3, §1.4).
    const slices = doc?.slices ?? [];
    expect(slices).toHaveLength(2);
    const at = (m: string): string => path.join(family.dir, m);
    for (const slice of slices) {
      if (method === 'multislerp') {
        expect(doc?.base_model).toBe(at('base'));
        expect(slice.sources.map((x) => x.model)).toEqual([at('base'), at('ft1'), at('ft2')]);
        expect(slice.sources[0]?.parameters).toBeUndefined();
        for (const x of slice.sources.slice(1)) expect(x.parameters?.weight).toEqual(expect.any(Number));
      } else if (method === 'karcher') {
        expect(doc?.base_model).toBeUndefined();
        expect(slice.sources.map((x) => [x.model, x.parameters])).toEqual([[at('base'), undefined], [at('ft1'), undefined], [at('ft2'), undefined]]);
      } else {
        expect(doc?.base_model).toBe(at('base'));
        expect(slice.sources).toHaveLength(2);
        const t = slice.parameters?.t;
        expect(typeof t === 'number' && t >= 0 && t <= 0.01, `t ${String(t)}`).toBe(true);
      }
    }

    const kept = readFileSync(path.join(runsDir, name, 'candidates', String(id), 'model.safetensors'));
    const merged = path.join(dir, `merged-${method}`);
    const m = await runEvo('merge', best, '--out', merged, '--seed', '0', '--jobs', '1');
    expect(m.code, m.stderr).toBe(0);
    expect(readFileSync(path.join(merged, 'model.safetensors')).equals(kept)).toBe(true);
  }, 180_000);
});
