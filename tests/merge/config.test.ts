import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../src/merge/config-issue.js';
import { parseMergeConfig, stringifyMergeConfig, type MergeConfig, type MergeDocument } from '../../src/merge/config.js';
import type { Setting } from '../../src/merge/resolve.js';

/** The issues a config raises (errors and warnings), as {severity, code, path, line, col}. */
function issuesOf(text: string): { severity: string; code: string; path: string; line?: number; col?: number; document: number }[] {
  const pick = (i: ConfigIssue): { severity: string; code: string; path: string; line?: number; col?: number; document: number } => ({
    severity: i.severity,
    code: i.code,
    path: i.path,
    document: i.document,
    ...(i.line !== undefined ? { line: i.line, col: i.col ?? 0 } : {}),
  });
  try {
    return parseMergeConfig(text, 'c.yml').warnings.map(pick);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map(pick);
  }
}

function errorOf(text: string): ConfigError {
  try {
    parseMergeConfig(text, 'c.yml');
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseMergeConfig: valid input', () => {
  it('reads every part of the schema into typed fields', () => {
    const { config, warnings } = parseMergeConfig(
      [
        'merge_method: ties',
        'base_model: base',
        'dtype: torch.bfloat16',
        'out_dtype: float16',
        'parameters:',
        '  normalize: yes', // YAML 1.1, as PyYAML reads it
        '  lambda: [0.5, 1.0]',
        'slices:',
        '  - sources:',
        '      - {model: base, layer_range: [0, 2]}',
        '      - model: ft',
        '        layer_range: [2, 4]',
        '        parameters:',
        '          weight: [{filter: self_attn, value: 0.9}, {filter: "*", value: [0.1, 0.2]}]',
        '          density: "0.5"',
        '    parameters: {int8_mask: false}',
      ].join('\n'),
    );
    expect(config.documents).toEqual([
      {
        merge_method: 'ties',
        base_model: 'base',
        dtype: 'bfloat16',
        out_dtype: 'float16',
        parameters: { normalize: true, lambda: [0.5, 1] },
        slices: [
          {
            sources: [
              { model: 'base', layer_range: [0, 2] },
              {
                model: 'ft',
                layer_range: [2, 4],
                parameters: { weight: [{ filter: 'self_attn', value: 0.9 }, { filter: '*', value: [0.1, 0.2] }], density: 0.5 },
              },
            ],
            parameters: { int8_mask: false },
          },
        ],
      },
    ]);
    expect(warnings.map((w) => [w.code, w.path])).toEqual([['QUOTED_NUMBER', 'slices[0].sources[1].parameters.density']]);
  });

  it('reads a mergekit-multi file as several documents', () => {
    const { config } = parseMergeConfig('name: a\nmerge_method: linear\nmodels: [{model: x, parameters: {weight: 1}}]\n---\nmerge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 1]}]}]\n');
    expect(config.documents.map((d) => d.name ?? null)).toEqual(['a', null]);
  });
});

describe('parseMergeConfig: every issue, pinned by code, key path and position', () => {
  it('reports a parameter out of range at its line and column', () => {
    const text = 'merge_method: ties\nbase_model: b\nmodels:\n  - model: a\n    parameters: {weight: 0.5, density: 1.5}\n';
    const err = errorOf(text);
    expect(err.code).toBe('PARAM_RANGE');
    expect(issuesOf(text)).toEqual([{ severity: 'error', code: 'PARAM_RANGE', path: 'models[0].parameters.density', line: 5, col: 40, document: 0 }]);
    expect(err.message).toBe('c.yml:5:40 models[0].parameters.density: must be in (0, 1], got 1.5');
  });

  it('collects all errors of all documents before throwing', () => {
    const text = [
      'merge_method: slerp', // no base_model, three models
      'models: [{model: a}, {model: b}, {model: c}]',
      'parameters: {t: [0, .inf]}',
      '---',
      'merge_method: frobnicate',
      'models: []',
      '---',
      'merge_method: ties',
      'base_model: b',
      'slices:',
      '  - sources:',
      '      - {model: b, layer_range: [0, 2]}',
      '      - {model: a, layer_range: [0, 3], parameters: {weight: 1, density: [1, 0]}}',
      '  - sources: [{model: a, layer_range: [2, 1]}]',
    ].join('\n');
    const err = errorOf(text);
    expect(err.code).toBe('CONFIG_INVALID');
    // Sorted by document and line. Structural checks (slice lengths) are skipped in document 3,
    // which has a read error, so that a dropped entry cannot cause false reports.
    expect(err.issues.map((i) => [i.document, i.code, i.path, i.line])).toEqual([
      [0, 'BASE_MODEL', 'base_model', 1],
      [0, 'PARAM_RANGE', 'parameters.t[1]', 3],
      [1, 'UNKNOWN_METHOD', 'merge_method', 5],
      [2, 'PARAM_RANGE', 'slices[0].sources[1].parameters.density[1]', 13],
      [2, 'LAYER_RANGE', 'slices[1].sources[0].layer_range', 14],
    ]);
    expect(err.message.split('\n')).toHaveLength(6);
  });

  it.each([
    ['YAML_SYNTAX', '', 'merge_method: linear\nmodels: [a\n'],
    ['WRONG_TYPE', 'models', 'merge_method: linear\nmodels: {model: a}\n'],
    ['MISSING_KEY', 'merge_method', 'models: [{model: a, parameters: {weight: 1}}]\n'],
    ['MISSING_KEY', 'slices[0].sources[0]', 'merge_method: passthrough\nslices: [{sources: [{model: a}]}]\n'],
    ['INPUTS_STRUCTURE', '', 'merge_method: linear\nmodels: [{model: a, parameters: {weight: 1}}]\nslices: [{sources: [{model: a, layer_range: [0, 1]}]}]\n'],
    ['INPUTS_STRUCTURE', 'models', 'merge_method: linear\nmodels: []\n'],
    ['INVALID_DTYPE', 'dtype', 'merge_method: linear\ndtype: float8\nmodels: [{model: a, parameters: {weight: 1}}]\n'],
    ['PARAM_TYPE', 'parameters.normalize', 'merge_method: linear\nparameters: {normalize: maybe}\nmodels: [{model: a, parameters: {weight: 1}}]\n'],
    ['PARAM_TYPE', 'models[0].parameters.weight', 'merge_method: linear\nmodels: [{model: a, parameters: {weight: {filter: mlp, value: 1}}}]\n'],
    ['PARAM_TYPE', 'models[0].parameters.weight', 'merge_method: linear\nmodels: [{model: a, parameters: {weight: []}}]\n'],
    ['MISSING_KEY', 'models[0].parameters.weight[0]', 'merge_method: linear\nmodels: [{model: a, parameters: {weight: [{filter: mlp}]}}]\n'],
    ['PARAM_RANGE', 'models[0].parameters.epsilon', 'merge_method: della\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1, epsilon: 0.5}}]\n'],
    ['PARAM_RANGE', 'parameters.max_iter', 'merge_method: karcher\nparameters: {max_iter: 2.5}\nmodels: [{model: a}, {model: c}]\n'],
    ['LAYER_RANGE', 'slices[0].sources[0].layer_range', 'merge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 1, 2]}]}]\n'],
    ['SLICE_LENGTHS', 'slices[0].sources', 'merge_method: linear\nslices: [{sources: [{model: a, layer_range: [0, 2]}, {model: b, layer_range: [0, 3]}]}]\nparameters: {weight: 1}\n'],
    ['MODEL_COUNT', 'models', 'merge_method: slerp\nbase_model: a\nmodels: [{model: b}, {model: c}]\nparameters: {t: 0.5}\n'],
    ['MODEL_COUNT', 'models', 'merge_method: passthrough\nbase_model: a\nmodels: [{model: b}]\n'],
    ['MODEL_COUNT', 'models', 'merge_method: model_stock\nbase_model: a\nmodels: [{model: b}]\n'],
    ['MODEL_COUNT', 'models', 'merge_method: nearswap\nbase_model: a\nmodels: [{model: b}, {model: c}]\nparameters: {t: 0.001}\n'],
    ['MODEL_COUNT', 'models', 'merge_method: nearswap\nbase_model: a\nmodels: [{model: a}]\nparameters: {t: 0.001}\n'],
    ['BASE_MODEL', 'base_model', 'merge_method: nearswap\nmodels: [{model: a}, {model: b}]\nparameters: {t: 0.001}\n'],
    ['BASE_MODEL', 'base_model', 'merge_method: sce\nmodels: [{model: a}, {model: b}]\n'],
    ['PARAM_RANGE', 'parameters.select_topk', 'merge_method: sce\nbase_model: a\nmodels: [{model: b}]\nparameters: {select_topk: 0}\n'],
    ['BASE_MODEL', 'base_model', 'merge_method: ties\nmodels: [{model: a, parameters: {weight: 1}}]\n'],
    ['BASE_MODEL', 'slices[0].sources', 'merge_method: ties\nbase_model: z\nslices: [{sources: [{model: a, layer_range: [0, 1], parameters: {weight: 1}}]}]\n'],
    ['UNSUPPORTED', 'models[0].model', 'merge_method: linear\nmodels: [{model: a+lora, parameters: {weight: 1}}]\n'],
    ['UNSUPPORTED', 'modules', 'merge_method: linear\nmodules: {text: {models: [{model: a}]}, vision: {models: [{model: a}]}}\n'],
    ['STAGES', 'name', 'name: a\nmerge_method: passthrough\nslices: [{sources: [{model: b, layer_range: [0, 1]}]}]\n---\nname: b\nmerge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 1]}]}]\n---\nmerge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 1]}]}]\n'],
    ['STAGES', '', 'merge_method: linear\nmodels: [{model: a, parameters: {weight: 1}}]\n---\nmerge_method: linear\nmodels: [{model: a, parameters: {weight: 1}}]\n'],
    ['STAGES', 'name', 'name: a\nmerge_method: linear\nmodels: [{model: x, parameters: {weight: 1}}]\n---\nname: a\nmerge_method: linear\nmodels: [{model: x, parameters: {weight: 1}}]\n---\nmerge_method: passthrough\nslices: [{sources: [{model: a, layer_range: [0, 1]}]}]\n'],
  ])('%s at %s', (code, path, text) => {
    const found = issuesOf(text).filter((i) => i.severity === 'error');
    expect(found.map((i) => [i.code, i.path])).toContainEqual([code, path]);
    expect(found.every((i) => i.line !== undefined)).toBe(true);
  });

  it('names the known methods when the method is unknown', () => {
    expect(errorOf('merge_method: tie\nmodels: [{model: a}]\n').message).toMatch(/unknown merge_method 'tie'; known: linear, slerp, .*ties/);
  });
});

describe('parseMergeConfig: warnings for what mergekit ignores silently (§0.13, §0.14)', () => {
  it.each([
    ['UNKNOWN_KEY', 'normalize', 'merge_method: linear\nnormalize: false\nmodels: [{model: a, parameters: {weight: 1}}]\n'],
    ['UNKNOWN_KEY', 'models[0].weight', 'merge_method: linear\nmodels: [{model: a, weight: 1, parameters: {weight: 1}}]\n'],
    ['UNKNOWN_PARAMETER', 'parameters.density', 'merge_method: linear\nparameters: {density: 0.5}\nmodels: [{model: a, parameters: {weight: 1}}]\n'],
    ['IGNORED_PARAMETER', 'models[0].parameters.normalize', 'merge_method: linear\nmodels: [{model: a, parameters: {weight: 1, normalize: false}}]\n'],
    ['DUPLICATE_MODEL', 'models[1].model', 'merge_method: linear\nparameters: {normalize: false}\nmodels: [{model: a, parameters: {weight: 0.1}}, {model: a, parameters: {weight: 1.0}}]\n'],
  ])('%s at %s', (code, path, text) => {
    const issues = issuesOf(text);
    expect(issues.map((i) => [i.severity, i.code, i.path])).toEqual([['warning', code, path]]);
  });
});

// ---------------------------------------------------------------------------------------------
// Round trip: stringify then parse gives the same config back.

const refArb = fc.oneof(
  fc.constantFrom('base', 'org/model-7b', '../models/ft 1', 'yes', '1.5', '~', 'null', '#x', 'a: b', "it's", 'name@main'),
  fc.stringMatching(/^[A-Za-z0-9_./-]{1,12}$/),
);
const numberArb = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x));
const tinyArb = fc.double({ min: 1e-12, max: 1e-5, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x));
const densityArb = fc.double({ min: 1e-6, max: 1, noNaN: true });
function settingArb(leaf: fc.Arbitrary<number>): fc.Arbitrary<Setting> {
  const scalarOrGradient = fc.oneof(leaf, fc.array(leaf, { minLength: 1, maxLength: 4 }));
  const entry = fc.record({ filter: fc.option(fc.constantFrom('self_attn', 'mlp', 'layers.1', '*', 'a: b'), { nil: undefined }), value: scalarOrGradient }).map((e) =>
    e.filter === undefined ? { value: e.value } : { filter: e.filter, value: e.value },
  );
  return fc.oneof(leaf, fc.array(leaf, { minLength: 1, maxLength: 4 }), fc.array(entry, { minLength: 1, maxLength: 3 }));
}
const modelParamsArb = fc.record(
  { weight: settingArb(fc.oneof(numberArb, tinyArb)), density: settingArb(densityArb) },
  { requiredKeys: ['weight'] },
);
const documentArb: fc.Arbitrary<MergeDocument> = fc
  .record({
    method: fc.constantFrom('task_arithmetic' as const, 'ties' as const, 'dare_linear' as const),
    base: refArb,
    others: fc.uniqueArray(refArb, { minLength: 1, maxLength: 3 }),
    params: fc.array(modelParamsArb, { minLength: 3, maxLength: 3 }),
    top: fc.record({ normalize: fc.boolean(), lambda: settingArb(numberArb) }, { requiredKeys: [] }),
    dtype: fc.option(fc.constantFrom('float32' as const, 'bfloat16' as const, 'float16' as const), { nil: undefined }),
    asSlices: fc.boolean(),
    layers: fc.integer({ min: 1, max: 40 }),
  })
  .filter((r) => !r.others.includes(r.base) && [r.base, ...r.others].every((x) => !x.includes('+')))
  .map((r): MergeDocument => {
    const withParams = r.others.map((model, i) => ({ model, parameters: r.params[i] ?? { weight: 1 } }));
    const common = {
      merge_method: r.method,
      base_model: r.base,
      ...(r.dtype ? { dtype: r.dtype } : {}),
      ...(Object.keys(r.top).length > 0 ? { parameters: r.top } : {}),
    };
    if (!r.asSlices) return { ...common, models: withParams };
    const range = [0, r.layers] as const;
    return { ...common, slices: [{ sources: [{ model: r.base, layer_range: range }, ...withParams.map((m) => ({ ...m, layer_range: range }))] }] };
  });

describe('stringifyMergeConfig', () => {
  it('round-trips: parse(stringify(config)) equals config', () => {
    fc.assert(
      fc.property(fc.array(documentArb, { minLength: 1, maxLength: 1 }), (documents) => {
        const config: MergeConfig = { documents };
        const text = stringifyMergeConfig(config);
        expect(parseMergeConfig(text).config).toEqual(config);
      }),
      { numRuns: 200 },
    );
  });

  it('writes exponent floats with a dot so that PyYAML reads them as numbers', () => {
    const text = stringifyMergeConfig({
      documents: [{ merge_method: 'linear', models: [{ model: 'a', parameters: { weight: 1e-7 } }, { model: 'b', parameters: { weight: [2.5e21, 0.5] } }] }],
    });
    expect(text).toContain('weight: 1.0e-7');
    expect(text).toContain('[2.5e+21,0.5]'.replace(',', ', '));
    expect(parseYaml(text, { version: '1.1' })).toEqual({ merge_method: 'linear', models: [{ model: 'a', parameters: { weight: 1e-7 } }, { model: 'b', parameters: { weight: [2.5e21, 0.5] } }] });
  });

  it('round-trips a multi-document config', () => {
    const text = 'name: s\nmerge_method: slerp\nbase_model: a\nmodels: [{model: b}]\nparameters:\n  t: [0.2, 0.8]\n---\nmerge_method: passthrough\nslices:\n  - sources: [{model: s, layer_range: [0, 2]}]\n';
    const first = parseMergeConfig(text).config;
    const again = stringifyMergeConfig(first);
    expect(again.split('\n---\n')).toHaveLength(2);
    expect(parseMergeConfig(again).config).toEqual(first);
  });
});
