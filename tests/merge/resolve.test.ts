import { describe, expect, it } from 'vitest';
import {
  coerceParamValue,
  layerPosition,
  resolveParameter,
  resolveSetting,
  type ParameterMap,
  type Setting,
  type SettingLeaf,
} from '../../src/merge/resolve.js';

/** Depth positions of a 4-layer slice: 0, 1/3, 2/3, 1. */
const T4 = [0, 1, 2, 3].map((i) => layerPosition(i, 4));

describe('layerPosition (semantics §0.1)', () => {
  it.each([
    [0, 4, 0],
    [1, 4, 1 / 3],
    [3, 4, 1],
    [0, 2, 0],
    [1, 2, 1],
    [0, 1, 1], // one-layer slices sit at t = 1
  ])('layer %i of %i → %f', (i, n, t) => {
    expect(layerPosition(i, n)).toBe(t);
  });
});

describe('resolveSetting: gradients', () => {
  it('interpolates [0, 0.5, 1] over 4 layers to 0, 1/3, 2/3, 1 (the spec example)', () => {
    const got = T4.map((t) => resolveSetting([0, 0.5, 1], 'model.layers.0.mlp.up_proj.weight', t));
    expect(got[0]).toBe(0);
    expect(got[1]).toBeCloseTo(1 / 3, 15);
    expect(got[2]).toBeCloseTo(2 / 3, 15);
    expect(got[3]).toBe(1);
  });

  it('reproduces the golden slerp values exactly (0.43333333333333335 at layer 1)', () => {
    // mergekit's params.json for slerp_gradient_filters, self_attn of layers 1 and 2.
    expect(resolveSetting([0, 0.5, 0.3, 0.7, 1], 'x', T4[1] ?? 0)).toBe(0.43333333333333335);
    expect(resolveSetting([0, 0.5, 0.3, 0.7, 1], 'x', T4[2] ?? 0)).toBe(0.5666666666666665);
    expect(resolveSetting([1, 0.5, 0.7, 0.3, 0], 'x', T4[1] ?? 0)).toBe(0.5666666666666667);
  });

  it('gives pre/post weights (t = 0) the first value and one-layer slices (t = 1) the last', () => {
    expect(resolveSetting([0.9, 0.5], 'lm_head.weight', 0)).toBe(0.9);
    expect(resolveSetting([0.9, 0.5], 'model.layers.0.mlp.up_proj.weight', layerPosition(0, 1))).toBe(0.5);
  });

  it('treats a one-element list as a constant', () => {
    expect(resolveSetting([0.25], 'x', 0)).toBe(0.25);
    expect(resolveSetting([0.25], 'x', 1)).toBe(0.25);
  });

  it('interpolates booleans as 0/1 (Python bools are ints)', () => {
    expect(T4.map((t) => resolveSetting([true, false], 'x', t))).toEqual([1, 1 - 1 / 3, 1 - 2 / 3, 0]);
  });

  it('uses a step function for lists that are not all numbers', () => {
    const steps: Setting<SettingLeaf> = ['a', 'b', 'c'];
    expect(T4.map((t) => resolveSetting(steps, 'x', t))).toEqual(['a', 'a', 'b', 'c']);
    const mixed: Setting<SettingLeaf> = [1, 'b'];
    expect(resolveSetting(mixed, 'x', 0.99)).toBe(1);
    expect(resolveSetting(mixed, 'x', 1)).toBe('b');
  });

  it('returns scalars unchanged', () => {
    expect(resolveSetting(0.7, 'x', 0.5)).toBe(0.7);
    expect(resolveSetting(false, 'x', 0.5)).toBe(false);
  });
});

describe('resolveSetting: filters', () => {
  const t: Setting = [
    { filter: 'self_attn', value: [0, 1] },
    { filter: 'mlp', value: 0.25 },
    { value: 0.5 },
  ];

  it.each([
    ['model.layers.3.self_attn.q_proj.weight', 1, 1],
    ['model.layers.0.self_attn.q_proj.weight', 0, 0],
    ['model.layers.0.mlp.up_proj.weight', 1, 0.25],
    ['model.norm.weight', 0, 0.5],
    ['lm_head.weight', 0, 0.5],
  ])('%s at t=%f → %f', (name, pos, want) => {
    expect(resolveSetting(t, name, pos)).toBe(want);
  });

  it('first match wins, even when a later filter is more specific', () => {
    const s: Setting = [{ filter: 'layers', value: 1 }, { filter: 'layers.1.mlp', value: 2 }];
    expect(resolveSetting(s, 'model.layers.1.mlp.up_proj.weight', 0)).toBe(1);
  });

  it('matches substrings, so "layers.1" also matches layers.10 … layers.19 (§0.2)', () => {
    const s: Setting = [{ filter: 'layers.1', value: 9 }];
    expect(resolveSetting(s, 'model.layers.1.mlp.up_proj.weight', 0)).toBe(9);
    expect(resolveSetting(s, 'model.layers.10.mlp.up_proj.weight', 0)).toBe(9);
    expect(resolveSetting(s, 'model.layers.2.mlp.up_proj.weight', 0)).toBeUndefined();
  });

  it('"*" and a missing filter match everything', () => {
    expect(resolveSetting([{ filter: '*', value: 3 }], 'anything', 0)).toBe(3);
    expect(resolveSetting([{ value: 4 }], 'anything', 0)).toBe(4);
  });

  it('returns undefined when nothing matches', () => {
    expect(resolveSetting([{ filter: 'self_attn', value: 1 }], 'model.norm.weight', 0)).toBeUndefined();
  });
});

describe('resolveParameter: precedence and fallthrough', () => {
  const source: ParameterMap = { weight: [{ filter: 'mlp', value: 0.9 }], density: 0.3 };
  const slice: ParameterMap = { weight: 0.4, normalize: false };
  const top: ParameterMap = { weight: 0.1, density: 0.8, lambda: [0.5, 1] };
  const levels = [source, slice, undefined, top];

  it('takes the most specific level that decides', () => {
    expect(resolveParameter('weight', levels, 'model.layers.0.mlp.up_proj.weight', 0)).toBe(0.9);
    expect(resolveParameter('density', levels, 'model.layers.0.mlp.up_proj.weight', 0)).toBe(0.3);
    expect(resolveParameter('normalize', levels, 'x', 0)).toBe(false);
  });

  it('falls through a filter list that does not match to the next level', () => {
    expect(resolveParameter('weight', levels, 'model.layers.0.self_attn.q_proj.weight', 0)).toBe(0.4);
    expect(resolveParameter('weight', [source, undefined, top], 'model.norm.weight', 0)).toBe(0.1);
  });

  it('interpolates an outer gradient at the given t', () => {
    expect(resolveParameter('lambda', levels, 'x', 0.5)).toBe(0.75);
  });

  it('is undefined when no level has the key', () => {
    expect(resolveParameter('gamma', levels, 'x', 0)).toBeUndefined();
  });

  it('the first of several entries for one model wins, per parameter (§0.13)', () => {
    const first: ParameterMap = { weight: 0.1 };
    const second: ParameterMap = { weight: 1, density: 0.5 };
    expect(resolveParameter('weight', [first, second], 'x', 0)).toBe(0.1);
    expect(resolveParameter('density', [first, second], 'x', 0)).toBe(0.5);
  });
});

describe('coerceParamValue', () => {
  it('applies Python truthiness to booleans and bool-as-int to numbers', () => {
    expect(coerceParamValue('boolean', 0)).toBe(false);
    expect(coerceParamValue('boolean', 1 / 3)).toBe(true);
    expect(coerceParamValue('boolean', true)).toBe(true);
    expect(coerceParamValue('number', true)).toBe(1);
    expect(coerceParamValue('number', false)).toBe(0);
    expect(coerceParamValue('number', 0.5)).toBe(0.5);
  });
});
