import { describe, expect, it } from 'vitest';
import { parseMergeConfig, stringifyMergeConfig } from '../../src/merge/config.js';
import { encodeConfig } from '../../src/search/genome-encode.js';
import {
  activeCategoricalGenes,
  activeContinuousGenes,
  buildGenomeSchema,
  decodeGenome,
  genomeRecipeHash,
  GenomeError,
  groupMethods,
  recipeHash,
} from '../../src/search/genome.js';
import { parseSpace } from '../../src/search/space.js';
import { constantGenome, RICH, schemaOf, SMOOTH, withMethods } from './space-fixtures.js';

const TINY = `name: tiny
base_model: base
models: [ft1]
genome:
  methods: [ties, slerp]
  layer_granularity: 2
objectives: [{name: a, evaluator: x}]
`;

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof GenomeError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('buildGenomeSchema', () => {
  it('has the genes of every class, group, source and embedding class', () => {
    const { schema } = schemaOf(RICH, 7);
    expect(schema.groups).toEqual([
      { index: 0, start: 0, end: 3 },
      { index: 1, start: 3, end: 6 },
      { index: 2, start: 6, end: 7 },
    ]);
    expect(schema.classes).toEqual(['self_attn', 'mlp', '*']);
    // Per (group or embedding) × class: base weight (linear), 2 weights, 2 densities, t.
    expect(schema.shape.continuous).toBe((3 * 3 + 2) * 6);
    expect(schema.shape.categorical).toEqual([4, 2, 4, 2, 4, 2]);
    expect(schema.categorical.map((c) => c.name)).toEqual(['g0.method', 'g0.slerp_model', 'g1.method', 'g1.slerp_model', 'g2.method', 'g2.slerp_model']);
    expect(schema.continuous.slice(0, 6).map((c) => c.name)).toEqual([
      'g0.self_attn.weight.base',
      'g0.self_attn.weight.m0',
      'g0.self_attn.weight.m1',
      'g0.self_attn.density.m0',
      'g0.self_attn.density.m1',
      'g0.self_attn.t',
    ]);
    expect(schema.continuous.at(-1)?.name).toBe('post.t');
    const w = schema.continuous[1];
    expect([w?.min, w?.max]).toEqual([0.1, 1.5]);
  });

  it('smooth genes are knots at group boundaries; task_arithmetic adds no density', () => {
    const { schema } = schemaOf(SMOOTH, 7);
    expect(schema.shape.continuous).toBe(4 * 4);
    expect(schema.continuous.map((c) => c.name).slice(0, 4)).toEqual(['k0.*.weight.m0', 'k0.*.weight.m1', 'k0.*.density.m0', 'k0.*.density.m1']);
    expect(schema.shape.categorical).toEqual([2, 2, 2]);
  });

  it('refuses a layer count that contradicts the space', () => {
    const space = parseSpace(`${TINY}num_layers: 4\n`);
    expect(code(() => buildGenomeSchema(space, 6))).toBe('NUM_LAYERS');
    expect(code(() => buildGenomeSchema(space, 0))).toBe('NUM_LAYERS');
    expect(buildGenomeSchema(space, 4).groups.length).toBe(2);
  });
});

describe('decodeGenome', () => {
  it('decodes per-layer methods into stages stitched by a passthrough (hand-written expectation)', () => {
    const { schema } = schemaOf(TINY, 4);
    expect(schema.continuous.map((c) => c.name)).toEqual(['g0.*.weight.m0', 'g0.*.density.m0', 'g0.*.t', 'g1.*.weight.m0', 'g1.*.density.m0', 'g1.*.t']);
    const config = decodeGenome(schema, { continuous: [0.5, 0.5, 0.25, 0.2, 1.0, 0.4], categorical: [0, 1] });
    expect(config).toEqual({
      documents: [
        {
          name: 'stage_ties',
          merge_method: 'ties',
          base_model: 'base',
          dtype: 'bfloat16',
          slices: [{ sources: [{ model: 'base', layer_range: [0, 2] }, { model: 'ft1', layer_range: [0, 2], parameters: { weight: 0.5, density: 0.55 } }] }],
        },
        {
          name: 'stage_slerp',
          merge_method: 'slerp',
          base_model: 'base',
          dtype: 'bfloat16',
          slices: [{ sources: [{ model: 'base', layer_range: [2, 4] }, { model: 'ft1', layer_range: [2, 4] }], parameters: { t: 0.4 } }],
        },
        {
          merge_method: 'passthrough',
          dtype: 'bfloat16',
          slices: [{ sources: [{ model: 'stage_ties', layer_range: [0, 2] }] }, { sources: [{ model: 'stage_slerp', layer_range: [0, 2] }] }],
        },
      ],
    });
  });

  it('is one document with one slice per group when every group uses the same method', () => {
    const { schema } = schemaOf(TINY, 4);
    const config = decodeGenome(schema, { continuous: [0.5, 0.5, 0.25, 0.2, 1.0, 0.4], categorical: [1, 1] });
    expect(config.documents).toEqual([
      {
        merge_method: 'slerp',
        base_model: 'base',
        dtype: 'bfloat16',
        slices: [
          { sources: [{ model: 'base', layer_range: [0, 2] }, { model: 'ft1', layer_range: [0, 2] }], parameters: { t: 0.25 } },
          { sources: [{ model: 'base', layer_range: [2, 4] }, { model: 'ft1', layer_range: [2, 4] }], parameters: { t: 0.4 } },
        ],
      },
    ]);
  });

  it('writes filter lists per class, embeddings in the first and last slice only', () => {
    const { schema } = schemaOf(RICH, 7);
    const g = withMethods(schema, constantGenome(schema, 0.5), ['ties', 'ties', 'ties']);
    const [doc] = decodeGenome(schema, g).documents;
    const w = 0.8; // 0.1 + 0.5·1.4
    const d = 0.55; // 0.1 + 0.5·0.9
    expect(doc?.slices?.[0]?.sources[1]?.parameters).toEqual({
      weight: [{ filter: 'embed_tokens', value: w }, { filter: 'self_attn', value: w }, { filter: 'mlp', value: w }, { value: w }],
      density: [{ filter: 'embed_tokens', value: d }, { filter: 'self_attn', value: d }, { filter: 'mlp', value: d }, { value: d }],
    });
    expect(doc?.slices?.[1]?.sources[2]?.parameters?.weight).toEqual([{ filter: 'self_attn', value: w }, { filter: 'mlp', value: w }, { value: w }]);
    expect(doc?.slices?.[2]?.sources[1]?.parameters?.weight).toEqual([
      { filter: 'lm_head', value: w },
      { filter: 'model.norm', value: w },
      { filter: 'self_attn', value: w },
      { filter: 'mlp', value: w },
      { value: w },
    ]);
    expect(doc?.parameters).toBeUndefined();
  });

  it('picks the slerp partner per group and emits the fixed parameters of a method', () => {
    const { schema } = schemaOf(RICH, 7);
    const g = constantGenome(schema, 0.5);
    const categorical = [1, 1, 3, 0, 3, 1]; // slerp→ft2, della, della
    const config = decodeGenome(schema, { continuous: g.continuous, categorical });
    expect(config.documents.map((d) => d.name)).toEqual(['stage_slerp', 'stage_della', undefined]);
    expect(config.documents[0]?.slices?.[0]?.sources.map((s) => s.model)).toEqual(['base', 'ft2']);
    expect(config.documents[1]?.parameters).toEqual({ epsilon: 0.1 });
    expect(config.documents[2]?.slices).toEqual([
      { sources: [{ model: 'stage_slerp', layer_range: [0, 3] }] },
      { sources: [{ model: 'stage_della', layer_range: [0, 3] }] },
      { sources: [{ model: 'stage_della', layer_range: [3, 4] }] },
    ]);
  });

  it('keeps DELLA densities inside (epsilon, 1 − epsilon)', () => {
    const { schema } = schemaOf(RICH, 7);
    const high = decodeGenome(schema, withMethods(schema, constantGenome(schema, 1), ['della', 'della', 'della']));
    expect(high.documents[0]?.slices?.[1]?.sources[1]?.parameters?.density).toEqual([{ filter: 'self_attn', value: 0.899 }, { filter: 'mlp', value: 0.899 }, { value: 0.899 }]);
    const low = decodeGenome(schema, withMethods(schema, constantGenome(schema, 0), ['della', 'della', 'della']));
    expect(low.documents[0]?.slices?.[1]?.sources[1]?.parameters?.density).toEqual([{ filter: 'self_attn', value: 0.101 }, { filter: 'mlp', value: 0.101 }, { value: 0.101 }]);
    // ties keeps the raw range: density 1 is valid there.
    const ties = decodeGenome(schema, withMethods(schema, constantGenome(schema, 1), ['ties', 'ties', 'ties']));
    expect(ties.documents[0]?.slices?.[1]?.sources[1]?.parameters?.density).toEqual([{ filter: 'self_attn', value: 1 }, { filter: 'mlp', value: 1 }, { value: 1 }]);
  });

  it('repairs linear weights that sum to zero (mergekit would write NaN)', () => {
    const space = parseSpace(TINY.replace('[ties, slerp]', '[linear]').replace('  layer_granularity: 2\n', '  layer_granularity: 2\n  weight: {min: -1, max: 1}\n'));
    const schema = buildGenomeSchema(space, 4);
    expect(schema.continuous.map((c) => c.name)).toEqual(['g0.*.weight.base', 'g0.*.weight.m0', 'g1.*.weight.base', 'g1.*.weight.m0']);
    const config = decodeGenome(schema, { continuous: [0.5, 0.5, 0.75, 0.5], categorical: [] });
    const [s0, s1] = config.documents[0]?.slices ?? [];
    expect(s0?.sources.map((s) => s.parameters?.weight)).toEqual([1, 1]);
    expect(s1?.sources.map((s) => s.parameters?.weight)).toEqual([0.5, 0]);
    expect(config.documents[0]?.base_model).toBeUndefined();
  });

  it('in a smooth space, a knot whose weights sum to the other sign is repaired: no layer between knots sums to about 0', () => {
    const space = parseSpace(TINY.replace('[ties, slerp]', '[linear]').replace('  layer_granularity: 2\n', '  layer_granularity: 2\n  smooth: true\n  weight: {min: -1, max: 1}\n'));
    const schema = buildGenomeSchema(space, 4);
    expect(schema.continuous.map((c) => c.name)).toEqual(['k0.*.weight.base', 'k0.*.weight.m0', 'k1.*.weight.base', 'k1.*.weight.m0', 'k2.*.weight.base', 'k2.*.weight.m0']);
    // Fractions → weights: 1 → 1, 0.25 → -0.5, 0 → -1, 0.75 → 0.5. Knot sums 0.5, -0.5, 0.5:
    // unrepaired, slice 0 would go from [1, -0.5] to [-1, 0.5], summing to 0 halfway.
    const config = decodeGenome(schema, { continuous: [1, 0.25, 0, 0.75, 1, 0.25], categorical: [] });
    const [s0, s1] = config.documents[0]?.slices ?? [];
    expect(s0?.sources.map((s) => s.parameters?.weight)).toEqual([[1, 1], [-0.5, 1]]);
    expect(s1?.sources.map((s) => s.parameters?.weight)).toEqual([[1, 1], [1, -0.5]]);
    // The same knots in a space that is not smooth are constants per group and stay as they are.
    const flat = buildGenomeSchema(parseSpace(TINY.replace('[ties, slerp]', '[linear]').replace('  layer_granularity: 2\n', '  layer_granularity: 2\n  weight: {min: -1, max: 1}\n')), 4);
    const constant = decodeGenome(flat, { continuous: [0, 0.75, 1, 0.25], categorical: [] });
    expect(constant.documents[0]?.slices?.[0]?.sources.map((s) => s.parameters?.weight)).toEqual([-1, 0.5]);
  });

  it('smooth spaces with negative weight ranges: every layer of every slice sums away from 0 (random genomes)', () => {
    const space = parseSpace(TINY.replace('[ft1]', '[ft1, ft2]').replace('[ties, slerp]', '[linear]').replace('  layer_granularity: 2\n', '  layer_granularity: 3\n  smooth: true\n  weight: {min: -2, max: 1}\n'));
    const schema = buildGenomeSchema(space, 9);
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let minAbs = Number.POSITIVE_INFINITY;
    for (let trial = 0; trial < 500; trial++) {
      const config = decodeGenome(schema, { continuous: schema.continuous.map(() => random()), categorical: [] });
      for (const slice of config.documents[0]?.slices ?? []) {
        const n = (slice.sources[0]?.layer_range?.[1] ?? 0) - (slice.sources[0]?.layer_range?.[0] ?? 0);
        for (let i = 0; i < n; i++) {
          const t = n === 1 ? 1 : i / (n - 1);
          const sum = slice.sources.reduce((acc, s) => {
            const w = s.parameters?.weight;
            const [a, b] = Array.isArray(w) ? (w as number[]) : [w as number, w as number];
            return acc + (a ?? 0) + t * ((b ?? 0) - (a ?? 0));
          }, 0);
          // The repair's sign is that of the range's largest-magnitude bound, -2.
          expect(sum).toBeLessThan(0);
          minAbs = Math.min(minAbs, Math.abs(sum));
        }
      }
    }
    expect(minAbs).toBeGreaterThanOrEqual(1e-6);
  });

  it('smooth genes become two-point gradients per slice', () => {
    const { schema } = schemaOf(SMOOTH, 7);
    // knot k weight.m0 = k/10 etc.; density genes at 0 and 1 alternate.
    const continuous = schema.continuous.map((c) => (c.param === 'weight' ? Number(c.depth) / 10 : c.source === 0 ? 0 : 1));
    const config = decodeGenome(schema, { continuous, categorical: [0, 0, 0] });
    const slices = config.documents[0]?.slices ?? [];
    expect(slices.map((s) => s.sources[1]?.parameters)).toEqual([
      { weight: [0, 0.1], density: [0.2, 0.2] },
      { weight: [0.1, 0.2], density: [0.2, 0.2] },
      { weight: [0.2, 0.3], density: [0.2, 0.2] },
    ]);
    expect(slices.map((s) => s.sources[2]?.parameters?.density)).toEqual([[0.9, 0.9], [0.9, 0.9], [0.9, 0.9]]);
  });

  it('model_stock and sce have no continuous genes: the method choice is their only gene', () => {
    const space = parseSpace(TINY.replace('[ft1]', '[ft1, ft2]').replace('[ties, slerp]', '[model_stock, sce]').replace('objectives', 'dtype: float32\nobjectives'));
    const schema = buildGenomeSchema(space, 4);
    expect(schema.shape).toEqual({ continuous: 0, categorical: [2, 2] });
    const config = decodeGenome(schema, { continuous: [], categorical: [0, 1] });
    expect(config.documents.map((d) => [d.name, d.merge_method, d.base_model])).toEqual([
      ['stage_model_stock', 'model_stock', 'base'],
      ['stage_sce', 'sce', 'base'],
      [undefined, 'passthrough', undefined],
    ]);
    expect(config.documents[0]?.slices?.[0]?.sources).toEqual([
      { model: 'base', layer_range: [0, 2] },
      { model: 'ft1', layer_range: [0, 2] },
      { model: 'ft2', layer_range: [0, 2] },
    ]);
    expect(parseMergeConfig(stringifyMergeConfig(config)).config).toEqual(config);
    expect(encodeConfig(schema, config)).toEqual({ continuous: [], categorical: [0, 1] });
  });

  it('refuses a genome of the wrong shape', () => {
    const { schema } = schemaOf(TINY, 4);
    expect(code(() => decodeGenome(schema, { continuous: [0.5], categorical: [0, 0] }))).toBe('GENOME_SHAPE');
    expect(code(() => decodeGenome(schema, { continuous: [0, 0, 0, 0, 0, 1.5], categorical: [0, 0] }))).toBe('GENOME_SHAPE');
    expect(code(() => decodeGenome(schema, { continuous: [0, 0, 0, 0, 0, 0], categorical: [0, 2] }))).toBe('GENOME_SHAPE');
  });

  it('decoded configs stringify to YAML that the mergekit config parser accepts unchanged', () => {
    for (const yaml of [RICH, SMOOTH, TINY]) {
      const { schema } = schemaOf(yaml, 7);
      for (const c of [0, 1, 2, 3]) {
        const config = decodeGenome(schema, { ...constantGenome(schema, 0.3, c), categorical: schema.shape.categorical.map((k, i) => (c + i) % k) });
        const parsed = parseMergeConfig(stringifyMergeConfig(config), 'decoded.yml');
        expect(parsed.warnings).toEqual([]);
        expect(parsed.config).toEqual(config);
      }
    }
  });
});

describe('gene activity and recipe identity', () => {
  it('inactive genes do not change the recipe hash; active ones do', () => {
    const { schema } = schemaOf(RICH, 7);
    const g = withMethods(schema, constantGenome(schema, 0.4), ['ties', 'ties', 'ties']);
    const active = activeContinuousGenes(schema, g);
    const inactiveNames = schema.continuous.filter((_, i) => !active[i]).map((c) => c.name);
    expect(inactiveNames.every((n) => n.endsWith('.t') || n.endsWith('.weight.base'))).toBe(true);
    expect(inactiveNames.length).toBe(11 * 2);
    expect(activeCategoricalGenes(schema, g)).toEqual([true, false, true, false, true, false]);
    const h = genomeRecipeHash(schema, g);
    const inactive = active.indexOf(false);
    const changedInactive = { ...g, continuous: g.continuous.map((x, i) => (i === inactive ? 0.9 : x)) };
    expect(genomeRecipeHash(schema, changedInactive)).toBe(h);
    const changedPartner = { ...g, categorical: g.categorical.map((c, i) => (i === 1 ? 1 : c)) };
    expect(genomeRecipeHash(schema, changedPartner)).toBe(h);
    const changedActive = { ...g, continuous: g.continuous.map((x, i) => (i === active.indexOf(true) ? 0.9 : x)) };
    expect(genomeRecipeHash(schema, changedActive)).not.toBe(h);
    expect(recipeHash(decodeGenome(schema, g))).toBe(h);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
  });

  it('groupMethods reads the method genes', () => {
    const { schema } = schemaOf(RICH, 7);
    expect(groupMethods(schema, withMethods(schema, constantGenome(schema, 0), ['linear', 'della', 'slerp']))).toEqual(['linear', 'della', 'slerp']);
  });
});

describe('encodeConfig', () => {
  it('accepts an equivalent hand-written config (plain values instead of filter lists)', () => {
    const { schema } = schemaOf(RICH.replace('[ties, slerp, linear, della]', '[ties]').replace('  embeddings: true\n', '').replace('  parameters:\n    della: {epsilon: 0.1}\n', ''), 4);
    const config = parseMergeConfig(`merge_method: ties
base_model: base
dtype: float32
slices:
  - sources:
      - {model: base, layer_range: [0, 3]}
      - {model: ft1, layer_range: [0, 3], parameters: {weight: 0.5, density: [{filter: mlp, value: 0.3}, {value: 0.7}]}}
      - {model: ft2, layer_range: [0, 3], parameters: {weight: 1.2, density: 1}}
  - sources:
      - {model: base, layer_range: [3, 4]}
      - {model: ft1, layer_range: [3, 4], parameters: {weight: 0.1, density: 0.1}}
      - {model: ft2, layer_range: [3, 4], parameters: {weight: 1.5, density: 0.4}}
`).config;
    const g = encodeConfig(schema, config);
    const byName = new Map(schema.continuous.map((c) => [c.name, g.continuous[c.index]]));
    expect(byName.get('g0.self_attn.weight.m0')).toBeCloseTo((0.5 - 0.1) / 1.4, 12);
    expect(byName.get('g0.mlp.density.m0')).toBeCloseTo((0.3 - 0.1) / 0.9, 12);
    expect(byName.get('g0.*.density.m0')).toBeCloseTo((0.7 - 0.1) / 0.9, 12);
    expect(byName.get('g0.self_attn.density.m0')).toBeCloseTo((0.7 - 0.1) / 0.9, 12);
    expect(byName.get('g1.*.weight.m1')).toBe(1);
  });

  it('names what does not fit', () => {
    const { schema } = schemaOf(TINY, 4);
    const msg = (yaml: string): string => {
      try {
        encodeConfig(schema, parseMergeConfig(yaml).config);
      } catch (e) {
        if (e instanceof GenomeError && e.code === 'NOT_REPRESENTABLE') return e.message;
        throw e;
      }
      return 'no error';
    };
    const ok = `merge_method: ties\nbase_model: base\ndtype: bfloat16\nslices:\n  - sources: [{model: base, layer_range: [0, 2]}, {model: ft1, layer_range: [0, 2], parameters: {weight: 0.5, density: 0.5}}]\n  - sources: [{model: base, layer_range: [2, 4]}, {model: ft1, layer_range: [2, 4], parameters: {weight: 0.5, density: 0.5}}]\n`;
    expect(msg(ok)).toBe('no error');
    expect(msg(ok.replace('ties', 'dare_ties'))).toMatch(/merge_method dare_ties is not in the space's methods/);
    expect(msg(ok.replace('weight: 0.5, density: 0.5}}]\n  -', 'weight: 2, density: 0.5}}]\n  -'))).toMatch(/g0\.\*\.weight\.m0 = 2 is outside its search range \[0, 1\]/);
    expect(msg(ok.replace('density: 0.5}}]\n  -', 'density: [0.5, 0.6]}}]\n  -'))).toMatch(/is a gradient, but the space is not smooth/);
    expect(msg(ok.replace('dtype: bfloat16', 'dtype: float16'))).toMatch(/keys outside slices differ/);
    expect(msg(ok.replace('[2, 4]}, {model: ft1, layer_range: [2, 4]', '[2, 3]}, {model: ft1, layer_range: [2, 3]'))).toMatch(/cover exactly the group's layers/);
  });
});
