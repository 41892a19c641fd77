import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SpaceError } from '../../src/search/space-issue.js';
import { parseSpace, spaceHash } from '../../src/search/space.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const MINIMAL = `name: s
base_model: base
models: [ft1, ft2]
genome:
  methods: [ties]
objectives:
  - {name: acc, evaluator: gsm8k}
`;

/** The issues of a space that must fail, as [code, path, line, col]. */
function issues(text: string): [string, string, number | undefined, number | undefined][] {
  try {
    parseSpace(text);
  } catch (e) {
    if (!(e instanceof SpaceError)) throw e;
    return e.issues.map((i) => [i.code, i.path, i.line, i.col]);
  }
  throw new Error('expected a SpaceError');
}

describe('parseSpace', () => {
  it('parses every example in search-spaces/', () => {
    for (const f of ['math-and-knowledge', 'cmaes-dare-ties', 'pareto-nsga2']) {
      const s = parseSpace(readFileSync(path.join(ROOT, 'search-spaces', `${f}.yaml`), 'utf8'), `${f}.yaml`);
      expect(s.name).toBe(f);
    }
  });

  it('fills every default', () => {
    const s = parseSpace(MINIMAL);
    expect(s.genome).toEqual({
      methods: ['ties'],
      layerGranularity: 4,
      filters: [],
      embeddings: false,
      embeddingFilters: { pre: ['embed_tokens'], post: ['lm_head', 'model.norm'] },
      weight: { min: 0, max: 1 },
      density: { min: 0.1, max: 1 },
      t: { min: 0, max: 1 },
      smooth: false,
      parameters: {},
    });
    expect(s.optimizer).toEqual({
      kind: 'ga', seed: 0, population: null, generations: 20, maxEvaluations: null, elitism: 2, tournamentSize: 3,
      crossoverRate: 0.9, mutationRate: null, categoricalMutationRate: null, sbxEta: 15, mutationEta: 20, sigma0: 0.3, method: null, initial: [],
    });
    expect(s.objectives).toEqual([{ name: 'acc', evaluator: { kind: 'builtin', name: 'gsm8k' }, limit: null, maximize: true, weight: 1, options: {} }]);
    expect(s.dtype).toBe('bfloat16');
    expect(s.mergeSeed).toBe(0);
    expect(s.numLayers).toBeNull();
  });

  it('reads module evaluators with their options', () => {
    const s = parseSpace(MINIMAL.replace('{name: acc, evaluator: gsm8k}', '{name: acc, evaluator: {module: ./e.mjs, options: {k: 3}}, maximize: false, weight: 2}'));
    expect(s.objectives[0]).toEqual({ name: 'acc', evaluator: { kind: 'module', module: './e.mjs' }, limit: null, maximize: false, weight: 2, options: { k: 3 } });
  });

  it('hashes equal spaces equally, whatever the key order', () => {
    const a = parseSpace(MINIMAL);
    const b = parseSpace(`models: [ft1, ft2]\nname: s\nobjectives: [{evaluator: gsm8k, name: acc}]\ngenome: {methods: [ties]}\nbase_model: base\n`);
    expect(spaceHash(a)).toBe(spaceHash(b));
    expect(spaceHash(parseSpace(MINIMAL.replace('ft2', 'ft3')))).not.toBe(spaceHash(a));
  });
});

describe('parseSpace errors (code, key path, position)', () => {
  it('density above the registry range, with line and column', () => {
    const text = MINIMAL.replace('  methods: [ties]\n', '  methods: [ties]\n  density: {min: 0.1, max: 1.5}\n');
    expect(issues(text)).toEqual([['OUT_OF_RANGE', 'genome.density.max', 6, 28]]);
    try {
      parseSpace(text);
    } catch (e) {
      expect((e as SpaceError).message).toMatch(/^space\.yaml:6:28 genome\.density\.max: must be ≤ 1, got 1\.5/);
      expect((e as SpaceError).code).toBe('OUT_OF_RANGE');
    }
  });

  it('density min of 0 (density must be > 0) and min above max', () => {
    expect(issues(MINIMAL.replace('  methods: [ties]\n', '  methods: [ties]\n  density: {min: 0, max: 1}\n'))).toEqual([['OUT_OF_RANGE', 'genome.density.min', 6, 18]]);
    expect(issues(MINIMAL.replace('  methods: [ties]\n', '  methods: [ties]\n  weight: {min: 2, max: 1}\n'))).toEqual([['OUT_OF_RANGE', 'genome.weight.min', 6, 17]]);
  });

  it('collects every structural issue at once', () => {
    const text = `name: s
base_model: base
models: []
genome:
  methods: [ties]
  layer_granularity: 0
  smoth: true
objectives:
  - {name: acc, evaluator: gsm8k, limit: many}
optimizer: {kind: pso}
dtype: float8
`;
    const got = issues(text);
    expect(got).toEqual([
      ['OUT_OF_RANGE', 'models', 3, 9],
      ['OUT_OF_RANGE', 'genome.layer_granularity', 6, 22],
      ['UNKNOWN_KEY', 'genome.smoth', 7, 3],
      ['WRONG_TYPE', 'objectives[0].limit', 9, 42],
      ['INVALID_VALUE', 'optimizer.kind', 10, 19],
      ['INVALID_VALUE', 'dtype', 11, 8],
    ]);
    try {
      parseSpace(text, 'x.yaml');
    } catch (e) {
      const err = e as SpaceError;
      expect(err.code).toBe('SPACE_INVALID');
      expect(err.message.split('\n')[0]).toBe('x.yaml: 6 problems');
      expect(err.message).toContain('x.yaml:7:3 genome.smoth: unknown key; allowed: methods, layer_granularity');
      expect(err.message).toContain('x.yaml:10:19 optimizer.kind: must be one of ga, nsga2, cmaes, random, got "pso"');
    }
  });

  it('missing keys point at their parent', () => {
    expect(issues('name: s\nmodels: [a]\ngenome: {methods: [ties]}\nobjectives: [{name: a, evaluator: x}]\n')).toEqual([['MISSING_KEY', 'base_model', 1, 1]]);
  });

  it('unknown and unsearchable methods', () => {
    expect(issues(MINIMAL.replace('[ties]', '[ties, tie, passthrough]'))).toEqual([
      ['UNKNOWN_METHOD', 'genome.methods[1]', 5, 19],
      ['UNKNOWN_METHOD', 'genome.methods[2]', 5, 24],
    ]);
  });

  it('model_stock needs two models; duplicates and the base among models', () => {
    expect(issues(MINIMAL.replace('[ft1, ft2]', '[ft1]').replace('[ties]', '[model_stock]'))).toEqual([['CONFLICT', 'genome.methods[0]', 5, 13]]);
    expect(issues(MINIMAL.replace('[ft1, ft2]', '[ft1, base, ft1]'))).toEqual([
      ['DUPLICATE', 'models[2]', 3, 21],
      ['CONFLICT', 'models[1]', 3, 15],
    ]);
  });

  it('fixed parameters: unknown, searched, out of range, method not listed', () => {
    const text = MINIMAL.replace('  methods: [ties]\n', '  methods: [ties, della]\n  parameters:\n    ties: {normalize: 3, lambda: 1.2, density: 0.5, gama: 1}\n    della: {epsilon: 0.7}\n    slerp: {t: 0.5}\n');
    expect(issues(text)).toEqual([
      ['WRONG_TYPE', 'genome.parameters.ties.normalize', 7, 23],
      ['CONFLICT', 'genome.parameters.ties.density', 7, 39],
      ['UNKNOWN_KEY', 'genome.parameters.ties.gama', 7, 53],
      ['OUT_OF_RANGE', 'genome.parameters.della.epsilon', 8, 22],
      ['INVALID_VALUE', 'genome.parameters.slerp', 9, 5],
    ]);
  });

  it('optimizer keys of another kind, elitism ≥ population, nsga2 with one objective', () => {
    expect(issues(MINIMAL + 'optimizer: {kind: cmaes, elitism: 1, method: ties}\n')).toEqual([['CONFLICT', 'optimizer.elitism', 8, 26]]);
    expect(issues(MINIMAL + 'optimizer: {kind: ga, population: 4, elitism: 4}\n')).toEqual([['CONFLICT', 'optimizer.elitism', 8, 47]]);
    expect(issues(MINIMAL + 'optimizer: {kind: nsga2}\n')).toEqual([['CONFLICT', 'optimizer.kind', 8, 19]]);
    expect(issues(MINIMAL + 'optimizer: {kind: cmaes, method: slerp}\n')).toEqual([['INVALID_VALUE', 'optimizer.method', 8, 34]]);
  });

  it('evaluator shapes and objective names', () => {
    const text = MINIMAL.replace('{name: acc, evaluator: gsm8k}', '{name: "a b", evaluator: {modul: x}}');
    expect(issues(text)).toEqual([['INVALID_VALUE', 'objectives[0].name', 7, 12]]);
    const t2 = MINIMAL.replace('{name: acc, evaluator: gsm8k}', '{name: a, evaluator: {modul: x}}\n  - {name: a, evaluator: 3}');
    expect(issues(t2)).toEqual([
      ['DUPLICATE', 'objectives[1]', 8, 5],
      ['UNKNOWN_KEY', 'objectives[0].evaluator.modul', 7, 27],
      ['MISSING_KEY', 'objectives[0].evaluator.module', 7, 26],
      ['WRONG_TYPE', 'objectives[1].evaluator', 8, 26],
    ]);
  });

  it('racing: defaults, every key, and errors naming the key', () => {
    const raced = parseSpace(MINIMAL.replace('{name: acc, evaluator: gsm8k}', '{name: acc, evaluator: gsm8k, limit: 200, racing: {}}'));
    expect(raced.objectives[0]?.racing).toEqual({ eta: 2, rule: 'halving', minFirstRungItems: 16, minSurvivors: 2, confidence: 0.95 });
    const all = parseSpace(MINIMAL.replace('{name: acc, evaluator: gsm8k}', '{name: acc, evaluator: gsm8k, racing: {eta: 3, rule: race, min_first_rung_items: 8, min_survivors: 1, confidence: 0.9}}'));
    expect(all.objectives[0]?.racing).toEqual({ eta: 3, rule: 'race', minFirstRungItems: 8, minSurvivors: 1, confidence: 0.9 });
    // A space without racing hashes as before racing existed (its runs resume).
    expect('racing' in (parseSpace(MINIMAL).objectives[0] ?? {})).toBe(false);
    const bad = (racing: string) => issues(MINIMAL.replace('{name: acc, evaluator: gsm8k}', `{name: acc, evaluator: gsm8k, racing: ${racing}}`)).map((i) => [i[0], i[1]]);
    expect(bad('{eta: 1}')).toEqual([['OUT_OF_RANGE', 'objectives[0].racing.eta']]);
    expect(bad('{rule: fastest}')).toEqual([['INVALID_VALUE', 'objectives[0].racing.rule']]);
    expect(bad('{min_first_rung_items: 0, min_survivors: 1.5}')).toEqual([
      ['OUT_OF_RANGE', 'objectives[0].racing.min_first_rung_items'],
      ['WRONG_TYPE', 'objectives[0].racing.min_survivors'],
    ]);
    expect(bad('{confidence: 1}')).toEqual([['OUT_OF_RANGE', 'objectives[0].racing.confidence']]);
    expect(bad('{rungs: 3}')).toEqual([['UNKNOWN_KEY', 'objectives[0].racing.rungs']]);
    expect(bad('true')).toEqual([['WRONG_TYPE', 'objectives[0].racing']]);
    const two = MINIMAL.replace('{name: acc, evaluator: gsm8k}', '{name: acc, evaluator: gsm8k, racing: {}}\n  - {name: know, evaluator: mmlu, racing: {}}');
    expect(issues(two)).toEqual([['CONFLICT', 'objectives[1].racing', 8, 35]]);
  });

  it('YAML syntax errors and non-mapping files', () => {
    expect(issues('name: [unclosed\n')[0]?.[0]).toBe('YAML_SYNTAX');
    expect(issues('name: a\nname: b\n')[0]?.[0]).toBe('YAML_SYNTAX');
    expect(issues('- a\n- b\n')).toEqual([['WRONG_TYPE', '', 1, 1]]);
  });

  it('linear with an all-zero weight range', () => {
    expect(issues(MINIMAL.replace('  methods: [ties]\n', '  methods: [linear]\n  weight: {min: 0, max: 0}\n'))).toEqual([['CONFLICT', 'genome.weight.max', 6, 25]]);
  });

  it('a layer filter that is also an embedding filter', () => {
    expect(issues(MINIMAL.replace('  methods: [ties]\n', '  methods: [ties]\n  embeddings: true\n  filters: [mlp, lm_head]\n'))).toEqual([['CONFLICT', 'genome.filters[1]', 7, 18]]);
  });

  it('reserved stage_ names', () => {
    expect(issues(MINIMAL.replace('[ft1, ft2]', '[stage_ties, ft2]'))).toEqual([['INVALID_VALUE', 'models[0]', 3, 10]]);
  });
});
