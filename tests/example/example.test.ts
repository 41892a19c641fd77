import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleFiles, makeExample, parseMakeExampleArgs, targetCoefficients } from '../../src/example/make-example.js';
import { runSearch } from '../../src/search/runner.js';
import type { GenerationEvent } from '../../src/search/run-events.js';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import { openCheckpoint } from '../../src/tensors/checkpoint.js';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';

/**
 * The built-in example `npm run demo` runs: its family is deterministic, its evaluator scores the
 * base 0 and the hidden target 1, and a short search over it runs end to end through the engine.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const evaluatorModule = path.join(root, 'evaluators', 'example-closeness.mjs');

interface ClosenessModule {
  evaluate(candidate: { dir: string }, options: Record<string, unknown>, context: { spaceDir: string }): Promise<{ score: number; n: number }>;
}

let dir = '';
let family = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-example-'));
  family = path.join(dir, 'a');
  await makeExample(family, 1);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function f32(file: string, name: string): Promise<Float32Array> {
  const ck = await openCheckpoint(file);
  const t = ck.tensors.get(name);
  if (t === undefined) throw new Error(`${file}: no ${name}`);
  const b = readFileSync(t.file).subarray(t.byteOffset, t.byteOffset + t.byteLength);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

describe('make-example', () => {
  it('writes the same bytes twice, different bytes for another seed, and skips an up-to-date folder', async () => {
    const again = path.join(dir, 'b');
    expect((await makeExample(again, 1)).written).toBe(true);
    // Buffer.equals: vitest's deep equality walks megabytes element by element.
    for (const f of exampleFiles()) expect((await readFile(path.join(again, f))).equals(await readFile(path.join(family, f))), f).toBe(true);
    expect((await makeExample(again, 1)).written).toBe(false);
    const other = path.join(dir, 'c');
    await makeExample(other, 2);
    expect((await readFile(path.join(other, 'base', 'model.safetensors'))).equals(await readFile(path.join(family, 'base', 'model.safetensors')))).toBe(false);
  });

  it('makes target = base + a·δ_math + b·δ_chat with depth-dependent coefficients', async () => {
    const name = 'model.layers.5.mlp.up_proj.weight';
    const [a, b] = targetCoefficients({ cls: 'mlp', layer: 5 });
    expect([a, b]).toEqual([0.9, 0.5]);
    expect(targetCoefficients({ cls: 'mlp', layer: 0 })).not.toEqual([a, b]);
    const base = await f32(path.join(family, 'base'), name);
    const math = await f32(path.join(family, 'math-ft'), name);
    const chat = await f32(path.join(family, 'chat-ft'), name);
    const target = await f32(path.join(family, 'target.safetensors'), name);
    expect(target.length).toBe(128 * 64);
    let worst = 0;
    let deltaSize = 0;
    for (let i = 0; i < target.length; i++) {
      const x = base[i] ?? 0;
      const want = x + a * ((math[i] ?? 0) - x) + b * ((chat[i] ?? 0) - x);
      worst = Math.max(worst, Math.abs((target[i] ?? 0) - want));
      deltaSize = Math.max(deltaSize, Math.abs((math[i] ?? 0) - x));
    }
    expect(deltaSize).toBeGreaterThan(0.005);
    expect(worst).toBeLessThan(1e-6);
    const config = JSON.parse(await readFile(path.join(family, 'base', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.num_hidden_layers).toBe(8);
  });

  it('parses its arguments', () => {
    expect(parseMakeExampleArgs([])).toEqual({ outDir: path.join('runs', 'example-models'), seed: 1 });
    expect(parseMakeExampleArgs(['--out', 'x', '--seed', '3'])).toEqual({ outDir: 'x', seed: 3 });
    expect(() => parseMakeExampleArgs(['--bogus'])).toThrow(/unexpected argument '--bogus'/);
  });
});

describe('evaluators/example-closeness.mjs', () => {
  it('scores the base 0, the target 1 and a fine-tune in between', async () => {
    const mod = (await import(evaluatorModule)) as ClosenessModule;
    const options = { target: path.join(family, 'target.safetensors'), base: path.join(family, 'base') };
    const context = { spaceDir: dir };
    const targetDir = path.join(dir, 'target-model');
    await mkdir(targetDir, { recursive: true });
    await writeFile(path.join(targetDir, 'model.safetensors'), await readFile(path.join(family, 'target.safetensors')));
    const base = await mod.evaluate({ dir: path.join(family, 'base') }, options, context);
    const ideal = await mod.evaluate({ dir: targetDir }, options, context);
    const math = await mod.evaluate({ dir: path.join(family, 'math-ft') }, options, context);
    expect(base.score).toBeCloseTo(0, 12);
    expect(ideal.score).toBeCloseTo(1, 12);
    expect(ideal.n).toBe(75); // embed, 8 × 9 layer tensors, final norm, lm_head
    expect(math.score).toBeLessThan(1);
    expect(Number.isFinite(math.score)).toBe(true);
  });
});

describe('a short search over the example', () => {
  beforeAll(async () => {
    await ensureMergeWorkerBuilt();
  }, 180_000);

  it('builds, scores and records every candidate, and reports the best of both generations', async () => {
    const spaceFile = path.join(dir, 'example.yaml');
    // The shipped space, pointed at this test's family and the repository's evaluator.
    const shipped = await readFile(path.join(root, 'search-spaces', 'example.yaml'), 'utf8');
    const space = shipped
      .replaceAll('../runs/example-models', family)
      .replace('../evaluators/example-closeness.mjs', evaluatorModule)
      .replace(/population: \d+/, 'population: 4')
      .replace(/generations: \d+/, 'generations: 2');
    expect(space).not.toContain('../');
    await writeFile(spaceFile, space);
    const runsDir = path.join(dir, 'runs');
    const generations: GenerationEvent[] = [];
    const done = await runSearch({ spaceFile, runsDir, jobs: 1, onEvent: (e) => (e.event === 'generation' ? generations.push(e) : undefined) });
    expect(done.status).toBe('finished');
    expect(done.generations).toBe(2);
    expect(done.failures).toBe(0);
    expect(generations).toHaveLength(2);

    const store = openSqliteRunStore(path.join(runsDir, 'example', 'run.db'), { readonly: true });
    try {
      const all = await store.best('closeness', 1000);
      expect(all.length).toBe(done.candidates);
      expect(all.length).toBeGreaterThanOrEqual(4);
      for (const c of all) {
        const s = c.result?.scores.closeness?.value ?? Number.NaN;
        expect(Number.isFinite(s)).toBe(true);
        expect(s).toBeLessThanOrEqual(1);
        expect(c.result?.scores.closeness?.n).toBe(75);
      }
      const summaries = await store.generationSummaries();
      const best = (g: number): number => summaries[g]?.best.closeness?.value ?? Number.NaN;
      expect(all[0]?.result?.scores.closeness?.value).toBe(Math.max(best(0), best(1)));
    } finally {
      await store.close();
    }
  }, 60_000);
});
