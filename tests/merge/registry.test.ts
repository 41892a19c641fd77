import { describe, expect, it } from 'vitest';
import { formatParamRange, isInParamRange } from '../../src/merge/method-spec.js';
import { findMethodSpec, getMethodSpec, METHOD_IDS, METHODS, paramRange, UnknownMethodError } from '../../src/merge/registry.js';

/** The defaults of semantics §1.1's table, written out independently of the specs. */
const TABLE: Readonly<Record<string, Readonly<Record<string, number | boolean | 'required' | 'none'>>>> = {
  linear: { normalize: true, weight: 'required' },
  slerp: { t: 'required' },
  nuslerp: { nuslerp_row_wise: false, nuslerp_flatten: true, weight: 'required' },
  multislerp: { normalize_weights: true, eps: 1e-8, weight: 'required' },
  karcher: { max_iter: 10, tol: 1e-5 },
  task_arithmetic: { int8_mask: false, normalize: false, rescale: false, lambda: 1, weight: 'required', density: 1 },
  ties: { int8_mask: false, normalize: true, rescale: false, lambda: 1, weight: 'required', density: 1 },
  dare_ties: { int8_mask: false, normalize: false, rescale: true, lambda: 1, weight: 'required', density: 1 },
  dare_linear: { int8_mask: false, normalize: false, rescale: true, lambda: 1, weight: 'required', density: 1 },
  breadcrumbs: { int8_mask: false, normalize: false, rescale: false, lambda: 1, weight: 'required', density: 1, gamma: 0.01 },
  breadcrumbs_ties: { int8_mask: false, normalize: false, rescale: false, lambda: 1, weight: 'required', density: 1, gamma: 0.01 },
  della: { int8_mask: false, normalize: true, rescale: true, lambda: 1, weight: 'required', density: 1, epsilon: 0.15 },
  della_linear: { int8_mask: false, normalize: false, rescale: true, lambda: 1, weight: 'required', density: 1, epsilon: 0.15 },
  sce: { int8_mask: false, select_topk: 1 },
  model_stock: { filter_wise: false },
  nearswap: { t: 'required' },
  passthrough: { scale: 'none' },
};

describe('method registry', () => {
  it('declares each method once, keyed by its YAML id', () => {
    expect(new Set(METHOD_IDS).size).toBe(METHODS.length);
    expect([...METHOD_IDS].sort()).toEqual(Object.keys(TABLE).sort());
  });

  it.each(Object.entries(TABLE))('%s has the parameters and defaults of the semantics table', (id, want) => {
    const spec = getMethodSpec(id);
    const got: Record<string, number | boolean | 'required' | 'none'> = {};
    for (const p of spec.params) got[p.name] = p.required ? 'required' : (p.default ?? 'none');
    expect(got).toEqual(want);
    expect(new Set(spec.params.map((p) => p.name)).size).toBe(spec.params.length);
  });

  it('keeps every default inside its own valid range and search range inside the valid one', () => {
    for (const spec of METHODS) {
      for (const p of spec.params) {
        if (typeof p.default === 'number') expect(isInParamRange(p, p.default), `${spec.id}.${p.name}`).toBe(true);
        if (p.searchRange) {
          expect(isInParamRange(p, p.searchRange[0]), `${spec.id}.${p.name}`).toBe(true);
          expect(isInParamRange(p, p.searchRange[1]), `${spec.id}.${p.name}`).toBe(true);
        }
      }
    }
  });

  it('marks the per-model and global scope as mergekit does', () => {
    const scopes = Object.fromEntries(getMethodSpec('della').params.map((p) => [p.name, p.scope]));
    expect(scopes).toEqual({ int8_mask: 'global', normalize: 'global', rescale: 'global', lambda: 'global', weight: 'model', density: 'model', epsilon: 'model' });
  });

  it('describes the task-vector rows: sparsifier, consensus, randomness, shape rules', () => {
    const row = (id: string): unknown => {
      const s = getMethodSpec(id);
      return [s.sparsifier ?? null, s.consensus ?? null, s.randomized, s.embedShapes, s.otherShapes, s.needsBase];
    };
    expect(row('task_arithmetic')).toEqual([null, null, false, 'base', 'skip', 'yes']);
    expect(row('ties')).toEqual(['magnitude', 'sum', false, 'base', 'skip', 'yes']);
    expect(row('dare_ties')).toEqual(['random', 'sum', true, 'base', 'skip', 'yes']);
    expect(row('dare_linear')).toEqual(['random', null, true, 'base', 'skip', 'yes']);
    expect(row('breadcrumbs')).toEqual(['magnitude_outliers', null, false, 'base', 'skip', 'yes']);
    expect(row('della')).toEqual(['della_magprune', 'sum', true, 'base', 'skip', 'yes']);
    expect(row('linear')).toEqual([null, null, false, 'common', 'error', 'no']);
    expect(getMethodSpec('slerp').modelCount).toEqual({ min: 1, max: 1 });
  });

  it('gives ranges as data for the search space and the exporter', () => {
    expect(paramRange('ties', 'density')).toEqual({ min: 0, max: 1, minExclusive: true, maxExclusive: false, integer: false, searchRange: [0.1, 1] });
    expect(paramRange('linear', 'weight')).toMatchObject({ min: Number.NEGATIVE_INFINITY, max: Number.POSITIVE_INFINITY, searchRange: [0, 1] });
    expect(formatParamRange(getMethodSpec('ties').params.find((p) => p.name === 'density') ?? { name: '', scope: 'model', kind: 'number', required: false, doc: '' })).toBe('(0, 1]');
    expect(() => paramRange('ties', 'gamma')).toThrow(/no parameter 'gamma'; it has: int8_mask, normalize/);
    expect(() => paramRange('ties', 'normalize')).toThrow(/boolean/);
  });

  it('names the known methods for an unknown id', () => {
    expect(findMethodSpec('tie')).toBeUndefined();
    expect(() => getMethodSpec('tie')).toThrow(UnknownMethodError);
    expect(() => getMethodSpec('tie')).toThrow(/unknown merge_method 'tie'; known: linear, slerp, nuslerp/);
  });

  it('checks ranges with the declared open and closed ends', () => {
    const density = getMethodSpec('ties').params.find((p) => p.name === 'density');
    if (!density) throw new Error('no density');
    expect([0, 1e-9, 1, 1.0000001, Number.NaN].map((v) => isInParamRange(density, v))).toEqual([false, true, true, false, false]);
    const maxIter = getMethodSpec('karcher').params.find((p) => p.name === 'max_iter');
    if (!maxIter) throw new Error('no max_iter');
    expect([-1, 0, 1, 2.5, 100].map((v) => isInParamRange(maxIter, v))).toEqual([false, true, true, false, true]);
  });
});
