import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringifyMergeConfig } from '../../src/merge/config.js';
import { CandidateBuilder, CheckpointCache } from '../../src/search/candidate-builder.js';
import { buildGenomeSchema, decodeGenome, GenomeError } from '../../src/search/genome.js';
import { initialGenomes } from '../../src/search/initial-genomes.js';
import { parseSpace } from '../../src/search/space.js';
import { openCheckpoint, readCheckpointTensorF32 } from '../../src/tensors/checkpoint.js';
import { writeFamily, type Family } from './runner-fixtures.js';

function spaceText(dir: string, methods: string, weight = '{min: 0, max: 1.5}', initial = '[sources, uniform]'): string {
  return [
    'name: seeded',
    `base_model: ${path.join(dir, 'base')}`,
    `models: [${path.join(dir, 'ft1')}, ${path.join(dir, 'ft2')}]`,
    'genome:',
    `  methods: [${methods}]`,
    '  layer_granularity: 1',
    '  filters: [self_attn, mlp]',
    '  embeddings: true',
    `  weight: ${weight}`,
    '  density: {min: 0.2, max: 1}',
    'objectives: [{name: a, evaluator: x}, {name: b, evaluator: x}]',
    `optimizer: {kind: nsga2, initial: ${initial}}`,
    'dtype: float32',
    '',
  ].join('\n');
}

/** Every source's parameters of every slice of a decoded config, as [model, weight, density]. */
function sourceParams(config: ReturnType<typeof decodeGenome>): [string, unknown, unknown][] {
  return config.documents.flatMap((d) =>
    (d.slices ?? []).flatMap((s) => s.sources.filter((src) => src.parameters !== undefined).map((src): [string, unknown, unknown] => [path.basename(src.model), src.parameters?.['weight'], src.parameters?.['density']])),
  );
}

/** A parameter value as the constant it is (the decoder writes filter lists per tensor class). */
function constants(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.flatMap((x: unknown) => constants(typeof x === 'object' && x !== null && 'value' in x ? (x as { value: unknown }).value : x));
  return [];
}

describe('optimizer.initial', () => {
  let dir: string;
  let family: Family;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'evo-initial-'));
    family = await writeFamily(dir, { layers: 3 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('ablations: the uniform genome once per tensor class (filters, catch-all, pre, post) with that class at weight 0 in every layer', () => {
    const space = parseSpace(spaceText(family.dir, 'ties, task_arithmetic', '{min: 0, max: 1.5}', '[ablations]'));
    const schema = buildGenomeSchema(space, 3);
    const genomes = initialGenomes(schema, space.optimizer.initial);
    const classes = ['self_attn', 'mlp', '*', 'pre', 'post'];
    expect(genomes).toHaveLength(classes.length);
    const weights = schema.continuous.filter((g) => g.param === 'weight');
    const classOf = (g: (typeof weights)[number]): string => (g.depth === 'pre' || g.depth === 'post' ? g.depth : g.tensorClass);
    expect(new Set(weights.map(classOf))).toEqual(new Set(classes));
    genomes.forEach((genome, k) => {
      for (const g of weights) {
        const value = g.min + (genome.continuous[g.index] ?? Number.NaN) * (g.max - g.min);
        expect(value).toBeCloseTo(classOf(g) === classes[k] ? 0 : 1, 12);
      }
      // Every other gene as in uniform: densities at their most, one method everywhere.
      for (const g of schema.continuous.filter((x) => x.param === 'density')) expect(genome.continuous[g.index]).toBe(1);
      expect(new Set(genome.categorical)).toEqual(new Set([genome.categorical[0]]));
    });
    // Decoded, the ablated class's tensors come from the base: weight 0 for both sources in its filter entries.
    const decoded = sourceParams(decodeGenome(schema, genomes[0] ?? { continuous: [], categorical: [] }));
    for (const [, weight] of decoded) expect(constants(weight)).toContain(0);
  });

  it('source-ablations: the uniform genome once per source and tensor class, that source\'s class at weight 0, the other source\'s at 1', () => {
    const space = parseSpace(spaceText(family.dir, 'ties, task_arithmetic', '{min: 0, max: 1.5}', '[source-ablations]'));
    const schema = buildGenomeSchema(space, 3);
    const genomes = initialGenomes(schema, space.optimizer.initial);
    const classes = ['self_attn', 'mlp', '*', 'pre', 'post'];
    const sources = space.models.length;
    expect(sources).toBeGreaterThanOrEqual(2);
    expect(genomes).toHaveLength(sources * classes.length);
    const weights = schema.continuous.filter((g) => g.param === 'weight');
    const classOf = (g: (typeof weights)[number]): string => (g.depth === 'pre' || g.depth === 'post' ? g.depth : g.tensorClass);
    genomes.forEach((genome, i) => {
      const source = Math.floor(i / classes.length);
      const ablated = classes[i % classes.length];
      for (const g of weights) {
        const value = g.min + (genome.continuous[g.index] ?? Number.NaN) * (g.max - g.min);
        expect(value).toBeCloseTo(g.source === source && classOf(g) === ablated ? 0 : 1, 12);
      }
    });
  });

  it('sources: one genome per model, that model at weight 1 and the others at 0, densities 1; uniform: all at 1', () => {
    const space = parseSpace(spaceText(family.dir, 'ties, task_arithmetic'));
    expect(space.optimizer.initial).toEqual(['sources', 'uniform']);
    const schema = buildGenomeSchema(space, 3);
    const genomes = initialGenomes(schema, space.optimizer.initial);
    expect(genomes).toHaveLength(3);
    const want: Record<string, number>[] = [{ ft1: 1, ft2: 0 }, { ft1: 0, ft2: 1 }, { ft1: 1, ft2: 1 }];
    genomes.forEach((g, k) => {
      const config = decodeGenome(schema, g);
      expect(config.documents.map((d) => d.merge_method)).toEqual(config.documents.map(() => 'ties'));
      const params = sourceParams(config);
      expect(params.length).toBeGreaterThan(0);
      for (const [model, weight, density] of params) {
        expect(new Set(constants(weight))).toEqual(new Set([want[k]?.[model]]));
        expect(new Set(constants(density))).toEqual(new Set([1]));
      }
    });
  });

  it('no entry: no initial genome, as before', () => {
    const space = parseSpace(spaceText(family.dir, 'ties').replace('optimizer: {kind: nsga2, initial: [sources, uniform]}', 'optimizer: {kind: nsga2}'));
    expect(space.optimizer.initial).toEqual([]);
    expect(initialGenomes(buildGenomeSchema(space, 3), space.optimizer.initial)).toEqual([]);
  });

  it('the sources genome merges to that source model (linear exactly, ties up to float32 rounding) (ties and linear)', async () => {
    for (const methods of ['ties', 'linear']) {
      const space = parseSpace(spaceText(family.dir, methods));
      const schema = buildGenomeSchema(space, 3);
      const [first] = initialGenomes(schema, ['sources']);
      if (first === undefined) throw new Error('no genome');
      const builder = new CandidateBuilder({ mergeSeed: 0, checkpoints: new CheckpointCache(dir) });
      const built = await builder.build(stringifyMergeConfig(decodeGenome(schema, first)), path.join(dir, `out-${methods}`), 'seeded.yml');
      const out = await openCheckpoint(built.dir);
      const ft1 = await openCheckpoint(path.join(family.dir, 'ft1'));
      expect([...out.tensors.keys()].sort()).toEqual([...ft1.tensors.keys()].sort());
      for (const [name, t] of out.tensors) {
        const src = ft1.tensors.get(name);
        if (src === undefined) throw new Error(name);
        const got = await readCheckpointTensorF32(t);
        const want = await readCheckpointTensorF32(src);
        // ties computes base + 1·(ft1 − base) in float32: equal up to the two roundings of that sum.
        let worst = 0;
        want.forEach((w, i) => (worst = Math.max(worst, Math.abs((got[i] ?? Number.NaN) - w) / Math.max(1, Math.abs(w)))));
        expect(got.length).toBe(want.length);
        expect(worst, `${methods} ${name}`).toBeLessThan(methods === 'linear' ? 1e-30 : 5e-7);
      }
    }
  });

  it('names the gene and the range when a weight of 0 or 1 is outside genome.weight', () => {
    const space = parseSpace(spaceText(family.dir, 'ties', '{min: 0.2, max: 1.5}', '[sources]'));
    const schema = buildGenomeSchema(space, 3);
    expect(() => initialGenomes(schema, ['sources'])).toThrow(GenomeError);
    expect(() => initialGenomes(schema, ['sources'])).toThrow(/weight\.m1 needs weight 0, outside its search range \[0\.2, 1\.5\]/);
  });

  it('needs a method with per-model weights', () => {
    const space = parseSpace(spaceText(family.dir, 'slerp', '{min: 0, max: 1.5}', '[sources]'));
    expect(() => initialGenomes(buildGenomeSchema(space, 3), ['sources'])).toThrow(/needs a method with per-model weights .* got slerp/);
  });

  it('rejects an unknown entry naming the key', () => {
    expect(() => parseSpace(spaceText(family.dir, 'ties', '{min: 0, max: 1.5}', '[parents]'))).toThrow(/optimizer\.initial\[0\]/);
  });
});
