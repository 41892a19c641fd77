import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMergeConfig, stringifyMergeConfig, type MergeConfig } from '../../src/merge/config.js';
import { resolvePlan } from '../../src/merge/plan.js';
import { namedGenes } from '../../src/search/candidate-builder.js';
import { encodeConfig } from '../../src/search/genome-encode.js';
import { activeCategoricalGenes, activeContinuousGenes, decodeGenome, genomeRecipeHash } from '../../src/search/genome.js';
import type { Genome } from '../../src/search/genome-vector.js';
import { isSearchableMethod, SEARCHABLE_METHODS } from '../../src/search/method-genes.js';
import { SpaceError } from '../../src/search/space-issue.js';
import { parseSpace, spaceHash } from '../../src/search/space.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { RICH, schemaOf, SMOOTH } from './space-fixtures.js';

/**
 * multislerp, karcher and nearswap in a search space: hand-picked genomes decode to configs
 * written out here from the method definitions (semantics §1.3, §1.4), each method's t lies in
 * its own range, the weights-sum-nonzero guard, the space checks, and the spaces written before
 * these methods keep their hash and decoded configs (values computed by main at 83aa692).
 */

function space(methods: string, extra = '', models = '[ft1, ft2]'): string {
  return `name: s\nbase_model: base\nmodels: ${models}\ngenome:\n  methods: [${methods}]\n  layer_granularity: 2\n${extra}objectives: [{name: a, evaluator: x}]\n`;
}

const R = (): [number, number] => [0, 2];

function oneDoc(head: Record<string, unknown>, slices: unknown[]): MergeConfig {
  return { documents: [{ ...head, dtype: 'bfloat16', slices }] } as unknown as MergeConfig;
}

function msSlice(w1: number, w2: number): unknown {
  return {
    sources: [
      { model: 'base', layer_range: R() },
      { model: 'ft1', layer_range: R(), parameters: { weight: w1 } },
      { model: 'ft2', layer_range: R(), parameters: { weight: w2 } },
    ],
  };
}

function g(continuous: number[], categorical: number[] = []): Genome {
  return { continuous, categorical };
}

/** The genome encodeConfig finds equals `want` up to the float rounding of (v − min) / (max − min). */
function expectSameGenome(got: Genome, want: Genome): void {
  expect(got.categorical).toEqual(want.categorical);
  expect(got.continuous).toHaveLength(want.continuous.length);
  got.continuous.forEach((x, i) => expect(x).toBeCloseTo(want.continuous[i] ?? Number.NaN, 9));
}

function issues(text: string): [string, string, string][] {
  try {
    parseSpace(text);
  } catch (e) {
    if (!(e instanceof SpaceError)) throw e;
    return e.issues.map((i) => [i.code, i.path, i.message]);
  }
  throw new Error('expected a SpaceError');
}

describe('the new methods are searchable', () => {
  it('multislerp, karcher and nearswap are listed', () => {
    for (const m of ['multislerp', 'karcher', 'nearswap']) expect(isSearchableMethod(m), m).toBe(true);
    expect(SEARCHABLE_METHODS).toEqual(expect.arrayContaining(['linear', 'slerp', 'ties', 'model_stock', 'sce', 'multislerp', 'karcher', 'nearswap']));
    expect(isSearchableMethod('passthrough')).toBe(false);
    expect(isSearchableMethod('nuslerp')).toBe(false);
  });
});

describe('multislerp', () => {
  it('has a weight gene per source model and none for the base (its tangent origin)', () => {
    const { schema } = schemaOf(space('multislerp'), 2);
    expect(schema.continuous.map((c) => [c.name, c.min, c.max])).toEqual([
      ['g0.*.weight.m0', 0, 1],
      ['g0.*.weight.m1', 0, 1],
    ]);
    expect(schema.categorical).toEqual([]);
  });

  it('decodes genes 0.5 and 1 to weights 0.5 and 1 around base_model', () => {
    const { schema } = schemaOf(space('multislerp'), 2);
    expect(decodeGenome(schema, g([0.5, 1]))).toEqual(oneDoc({ merge_method: 'multislerp', base_model: 'base' }, [msSlice(0.5, 1)]));
    expect(decodeGenome(schema, g([0, 0.5]))).toEqual(oneDoc({ merge_method: 'multislerp', base_model: 'base' }, [msSlice(0, 0.5)]));
  });

  it('never emits weights summing to 0: genes all 0 give the range bound of largest magnitude', () => {
    const { schema } = schemaOf(space('multislerp'), 2);
    expect(decodeGenome(schema, g([0, 0]))).toEqual(oneDoc({ merge_method: 'multislerp', base_model: 'base' }, [msSlice(1, 1)]));
    // [-2, 1]: −0.5 + 0.5 = 0 → both −2 (|−2| > |1|).
    const neg = schemaOf(space('multislerp', '  weight: {min: -2, max: 1}\n'), 2).schema;
    expect(decodeGenome(neg, g([0.5, 2.5 / 3]))).toEqual(oneDoc({ merge_method: 'multislerp', base_model: 'base' }, [msSlice(-2, -2)]));
  });

  it('also repairs weights whose sum is 0 only once rounded to the dtype, as the planner sums them', () => {
    // −0.5 + 0.500001 = 1e-6 in float64, but 0.500001 is 0.5 in bfloat16 (8 significant bits).
    const { schema } = schemaOf(space('multislerp', '  weight: {min: -1, max: 1}\n'), 2);
    expect(decodeGenome(schema, g([0.25, 0.7500005]))).toEqual(oneDoc({ merge_method: 'multislerp', base_model: 'base' }, [msSlice(1, 1)]));
    // float32 keeps 0.500001 apart from 0.5: no repair.
    const f32 = schemaOf(space('multislerp', '  weight: {min: -1, max: 1}\n') + 'dtype: float32\n', 2).schema;
    const slice = decodeGenome(f32, g([0.25, 0.7500005])).documents[0]?.slices?.[0];
    expect(slice?.sources.map((s) => s.parameters?.weight)).toEqual([undefined, -0.5, 0.500001]);
  });

  it('with normalize_weights: false the weights are not divided, so none is repaired', () => {
    const { schema } = schemaOf(space('multislerp', '  parameters: {multislerp: {normalize_weights: false}}\n'), 2);
    expect(decodeGenome(schema, g([0, 0]))).toEqual(
      oneDoc({ merge_method: 'multislerp', base_model: 'base', parameters: { normalize_weights: false } }, [msSlice(0, 0)]),
    );
  });
});

describe('karcher', () => {
  it('has no genes of its own; the base is merged like the other models (karcher has no base)', () => {
    const { schema } = schemaOf(space('karcher'), 2);
    expect(schema.shape).toEqual({ continuous: 0, categorical: [] });
    const sources = [{ model: 'base', layer_range: R() }, { model: 'ft1', layer_range: R() }, { model: 'ft2', layer_range: R() }];
    expect(decodeGenome(schema, g([]))).toEqual(oneDoc({ merge_method: 'karcher' }, [{ sources }]));
  });

  it('max_iter and tol are fixed parameters (defaults unless genome.parameters sets them)', () => {
    const { schema } = schemaOf(space('karcher', '  parameters: {karcher: {max_iter: 20, tol: 1.0e-6}}\n'), 2);
    expect(decodeGenome(schema, g([])).documents[0]?.parameters).toEqual({ max_iter: 20, tol: 1e-6 });
  });

  it('is a method gene choice next to others: its groups read no continuous gene', () => {
    const { schema } = schemaOf(space('linear, karcher', '', '[ft1]'), 4);
    const genome = g([0.5, 0.5, 0.5, 0.5], [1, 0]);
    expect(activeContinuousGenes(schema, genome)).toEqual([false, false, true, true]);
    const docs = decodeGenome(schema, genome).documents;
    expect(docs.map((d) => [d.name, d.merge_method])).toEqual([
      ['stage_karcher', 'karcher'],
      ['stage_linear', 'linear'],
      [undefined, 'passthrough'],
    ]);
  });
});

describe('nearswap', () => {
  const nsSlice = (partner: string, t: number): unknown => ({
    sources: [
      { model: 'base', layer_range: R() },
      { model: partner, layer_range: R() },
    ],
    parameters: { t },
  });

  it('has one t gene in its own range [0, 0.01] and a partner gene, like slerp', () => {
    const { schema } = schemaOf(space('nearswap'), 2);
    expect(schema.continuous.map((c) => [c.name, c.min, c.max])).toEqual([['g0.*.t', 0, 0.01]]);
    expect(schema.categorical.map((c) => [c.name, c.choices])).toEqual([['g0.slerp_model', ['ft1', 'ft2']]]);
    expect(schema.space.genome.tRanges).toEqual({ nearswap: { min: 0, max: 0.01 } });
  });

  it('decodes t genes 0, 0.5, 1 to 0, 0.005, 0.01 toward the chosen source', () => {
    const { schema } = schemaOf(space('nearswap'), 2);
    const head = { merge_method: 'nearswap', base_model: 'base' };
    expect(decodeGenome(schema, g([0], [0]))).toEqual(oneDoc(head, [nsSlice('ft1', 0)]));
    expect(decodeGenome(schema, g([0.5], [1]))).toEqual(oneDoc(head, [nsSlice('ft2', 0.005)]));
    expect(decodeGenome(schema, g([1], [1]))).toEqual(oneDoc(head, [nsSlice('ft2', 0.01)]));
    expect(activeCategoricalGenes(schema, g([1], [1]))).toEqual([true]);
  });

  it('takes its range from genome.t_ranges.nearswap', () => {
    const { schema } = schemaOf(space('nearswap', '  t_ranges: {nearswap: {min: 0.001, max: 0.003}}\n', '[ft1]'), 2);
    expect(schema.categorical).toEqual([]);
    expect(decodeGenome(schema, g([0.5])).documents[0]?.slices?.[0]?.parameters).toEqual({ t: 0.002 });
  });

  it('shares the t gene with slerp, each method mapping it into its own range', () => {
    const { schema } = schemaOf(space('slerp, nearswap', '  t: {min: 0.2, max: 0.6}\n'), 4);
    // Groups [0, 2) and [2, 4); one t gene each, both at 0.5.
    const genome = g([0.5, 0.5], [0, 1, 1, 0]);
    const docs = decodeGenome(schema, genome).documents;
    expect(docs.map((d) => [d.name, d.merge_method, d.slices?.[0]?.parameters, d.slices?.[0]?.sources[1]?.model])).toEqual([
      ['stage_slerp', 'slerp', { t: 0.4 }, 'ft2'],
      ['stage_nearswap', 'nearswap', { t: 0.005 }, 'ft1'],
      [undefined, 'passthrough', undefined, undefined],
    ]);
    expect(namedGenes(schema, genome)).toEqual({ 'g0.*.t': 0.4, 'g1.*.t': 0.005, 'g0.method': 'slerp', 'g0.slerp_model': 'ft2', 'g1.method': 'nearswap', 'g1.slerp_model': 'ft1' });
    // The round trip goes through each method's own range.
    expectSameGenome(encodeConfig(schema, decodeGenome(schema, genome)), genome);
  });

  it('round-trips through encodeConfig with smooth knots shared by a slerp and a nearswap group', () => {
    const { schema } = schemaOf(space('slerp, nearswap', '  smooth: true\n'), 4);
    // Knots 0, 1, 2; group 0 slerp [k0, k1], group 1 nearswap [k1, k2].
    const genome = g([0.2, 0.6, 0.9], [0, 1, 1, 0]);
    const docs = decodeGenome(schema, genome).documents;
    expect(docs[0]?.slices?.[0]?.parameters).toEqual({ t: [0.2, 0.6] });
    expect(docs[1]?.slices?.[0]?.parameters).toEqual({ t: [0.006, 0.009] });
    expectSameGenome(encodeConfig(schema, decodeGenome(schema, genome)), genome);
  });
});

describe('decoded configs of the new methods resolve in the real planner', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-genome-methods-'));
    await writeTinyLlama(path.join(dir, 'base'), { layers: 4, seed: 0 });
    await writeTinyLlama(path.join(dir, 'ft1'), { layers: 4, perturbFrom: { seed: 0, scale: 0.05 }, seed: 1 });
    await writeTinyLlama(path.join(dir, 'ft2'), { layers: 4, perturbFrom: { seed: 0, scale: 0.05 }, seed: 2 });
  }, 60_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every tensor gets the gene values (weights, t) of its layer group', async () => {
    const { schema } = schemaOf(space('multislerp, karcher, nearswap', '  filters: [mlp]\n'), 4);
    // Groups [0, 2) multislerp and [2, 4) nearswap toward ft2; per group and class (mlp, *): w0, w1, t.
    const genome = g([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 0, 0.5], [0, 0, 2, 1]);
    const configFile = path.join(dir, 'decoded.yml');
    const text = stringifyMergeConfig(decodeGenome(schema, genome));
    const plan = await resolvePlan(parseMergeConfig(text, configFile).config, { configFile, seed: 0 });
    let checked = 0;
    for (const outer of plan.tasks) {
      const stage = outer.inputs[0];
      const task = outer.method === 'passthrough' && stage?.kind === 'stage' ? stage.task : outer;
      const layer = /layers\.(\d+)\./.exec(outer.output);
      const grp = layer ? Math.floor(Number(layer[1]) / 2) : outer.output.includes('embed_tokens') ? 0 : 1;
      const mlp = outer.output.includes('mlp');
      if (grp === 0) {
        expect(task.method, outer.output).toBe('multislerp');
        expect(task.inputs.map((i) => i.model)).toEqual(['base', 'ft1', 'ft2']);
        expect(task.inputs[task.baseIndex ?? -1]?.model).toBe('base');
        expect(task.modelParams.slice(1).map((p) => p.weight), outer.output).toEqual(mlp ? [0.1, 0.2] : [0.4, 0.5]);
      } else {
        expect(task.method, outer.output).toBe('nearswap');
        expect(task.inputs.map((i) => i.model)).toEqual(['base', 'ft2']);
        expect(task.params.t, outer.output).toBe(mlp ? 0.009 : 0.005);
      }
      checked++;
    }
    expect(checked).toBe(plan.tasks.length);
    expect(checked).toBeGreaterThan(20);
  });
});

describe('spaces written before keep their hash and decoded configs', () => {
  // Computed with the code at main 83aa692 (before these methods): the same genome, the same hashes.
  const pins: [string, string, string, string][] = [
    ['RICH', RICH, 'a52a13d9bf3e659a53fc3c93a2c8b2603ae6eef9ae8adf39c4e5b1e634231665', 'b207171602d7da18abced1f940e11ee264a58c4a668c37c573caa25dde8d2cac'],
    ['SMOOTH', SMOOTH, '5e2c45e5e688f1c0a2a65f34505747dd7d3613f108ca76997790cf1c3b25509f', 'e500fc1b5bcb3a209c6723955b9f6a67dee5552749eac0c13dbd12aa02a70994'],
  ];
  it.each(pins)('%s', (_name, yaml, hash, recipe) => {
    const { space: s, schema } = schemaOf(yaml, 7);
    expect('tRanges' in s.genome).toBe(false);
    expect(spaceHash(s)).toBe(hash);
    const genome = { continuous: schema.continuous.map((_, i) => ((i * 37) % 101) / 100), categorical: schema.shape.categorical.map((k, i) => i % k) };
    expect(genomeRecipeHash(schema, genome)).toBe(recipe);
  });
});

describe('space checks of the new methods name the key', () => {
  it('multislerp needs two source models (around the base a lone model is returned as it is)', () => {
    expect(issues(space('multislerp', '', '[ft1]'))).toEqual([['CONFLICT', 'genome.methods[0]', 'multislerp needs at least 2 models besides the base, got 1']]);
  });

  it('multislerp weights cannot all be 0', () => {
    expect(issues(space('multislerp', '  weight: {min: 0, max: 0}\n'))).toEqual([
      ['CONFLICT', 'genome.weight.max', 'multislerp needs weights that are not all 0 (their sum divides them, and their weighted mean direction must not vanish)'],
    ]);
  });

  it('t_ranges: only for listed methods with a searched t other than slerp, inside the method range', () => {
    expect(issues(space('slerp', '  t_ranges: {slerp: {min: 0, max: 1}}\n'))).toEqual([['CONFLICT', 'genome.t_ranges.slerp', "slerp's t range is genome.t"]]);
    expect(issues(space('ties', '  t_ranges: {nearswap: {min: 0, max: 0.01}}\n'))).toEqual([['INVALID_VALUE', 'genome.t_ranges.nearswap', 'nearswap is not in genome.methods (ties)']]);
    expect(issues(space('multislerp', '  t_ranges: {multislerp: {min: 0, max: 0.01}}\n'))).toEqual([
      ['INVALID_VALUE', 'genome.t_ranges.multislerp', 'multislerp has no searched t; methods with a t range here: none in this space'],
    ]);
    expect(issues(space('nearswap', '  t_ranges: {nearswap: {min: 0.01, max: 0.001}}\n'))).toEqual([['OUT_OF_RANGE', 'genome.t_ranges.nearswap.min', 'must be ≤ max (0.001), got 0.01']]);
    expect(issues(space('nearswap', '  t_ranges: {nearswap: {min: 0, max: [1]}}\n')).map((i) => i.slice(0, 2))).toEqual([['WRONG_TYPE', 'genome.t_ranges.nearswap.max']]);
  });

  it("genome.t is slerp's: without slerp, nearswap's range is asked for by name", () => {
    expect(issues(space('nearswap', '  t: {min: 0, max: 0.01}\n'))).toEqual([
      ['CONFLICT', 'genome.t', "is slerp's t range, and slerp is not in genome.methods; set genome.t_ranges.nearswap instead"],
    ]);
  });

  it('searched parameters cannot be fixed; fixed ones must be valid', () => {
    expect(issues(space('nearswap', '  parameters: {nearswap: {t: 0.001}}\n'))).toEqual([['CONFLICT', 'genome.parameters.nearswap.t', 't is searched; set its range with genome.t_ranges.nearswap instead']]);
    expect(issues(space('multislerp', '  parameters: {multislerp: {weight: 1}}\n'))).toEqual([['CONFLICT', 'genome.parameters.multislerp.weight', 'weight is searched; set its range with genome.weight instead']]);
    expect(issues(space('karcher', '  parameters: {karcher: {max_iter: 2.5}}\n'))).toEqual([['OUT_OF_RANGE', 'genome.parameters.karcher.max_iter', 'must be in [0, ∞) (integer), got 2.5']]);
  });
});
