import type { ConfigIssue, ConfigIssueCode } from './config-issue.js';
import { tokenSourcePath, type InputModelDefinition, type MergeConfig, type MergeDocument, type OutputSliceDefinition } from './config.js';
import { formatParamRange, isInParamRange, type MethodSpec } from './method-spec.js';
import { getMethodSpec } from './registry.js';
import type { ParameterMap, Setting } from './resolve.js';

/**
 * Checks on a typed MergeConfig that need no checkpoint: structure, parameter names and ranges,
 * base model and model counts, slice lengths, stage graph. Used by parseMergeConfig (which adds
 * line:col) and by resolvePlan for configs built in code.
 */

/** The inputs of a document after `modules:` (one module only, so far) is unwrapped. */
export interface DocumentInputs {
  readonly models?: readonly InputModelDefinition[];
  readonly slices?: readonly OutputSliceDefinition[];
  /** `modules.<name>.parameters`: the level between slice and top level. */
  readonly moduleParameters?: ParameterMap;
  /** Key path of the inputs' container ('' or `modules.<name>`). */
  readonly path: string;
}

export function documentInputs(doc: MergeDocument): DocumentInputs {
  if (doc.modules) {
    const [name, mod] = Object.entries(doc.modules)[0] ?? [];
    if (name !== undefined && mod !== undefined) {
      return {
        ...(mod.models ? { models: mod.models } : {}),
        ...(mod.slices ? { slices: mod.slices } : {}),
        ...(mod.parameters ? { moduleParameters: mod.parameters } : {}),
        path: `modules.${name}`,
      };
    }
  }
  return { ...(doc.models ? { models: doc.models } : {}), ...(doc.slices ? { slices: doc.slices } : {}), path: '' };
}

/** The document's tokenizer_source, if any; a `tokenizer:` block without `source` means union, as in mergekit. */
export function tokenizerSourceOf(doc: MergeDocument): string | undefined {
  return doc.tokenizer_source ?? (doc.tokenizer === undefined ? undefined : (doc.tokenizer.source ?? 'union'));
}

/** Every model reference a document uses (base models included), in first-use order. */
export function documentModelRefs(doc: MergeDocument): string[] {
  const refs: string[] = [];
  const add = (r: string | undefined): void => {
    if (r !== undefined && !refs.includes(r)) refs.push(r);
  };
  add(doc.base_model);
  const mods = doc.modules ? Object.values(doc.modules) : [{ models: doc.models, slices: doc.slices }];
  for (const m of mods) {
    for (const x of m.models ?? []) add(x.model);
    for (const s of m.slices ?? []) {
      add(s.base_model);
      for (const src of s.sources) add(src.model);
    }
  }
  if (doc.tokenizer_source !== undefined && doc.tokenizer_source !== 'base' && doc.tokenizer_source !== 'union') {
    add(doc.tokenizer_source);
  }
  return refs;
}

/** The dependency structure of a multi-document config. */
export interface StageGraph {
  /** Index of the document whose output is the final model. */
  readonly finalIndex: number;
  /** Document indices in dependency order (every stage before the documents that use it). */
  readonly order: readonly number[];
  /** For each document, the indices of the stages it references. */
  readonly deps: readonly (readonly number[])[];
}

/** Builds the stage graph, or returns the issues that prevent it (duplicate names, cycles, no final). */
export function stageGraph(config: MergeConfig): StageGraph | ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const docs = config.documents;
  const byName = new Map<string, number>();
  docs.forEach((d, i) => {
    if (d.name === undefined) return;
    if (byName.has(d.name)) issues.push(issue('error', 'STAGES', i, 'name', `stage name '${d.name}' is used by two documents`));
    else byName.set(d.name, i);
  });
  const deps = docs.map((d) =>
    documentModelRefs(d)
      .map((r) => byName.get(r))
      .filter((j): j is number => j !== undefined),
  );
  const unnamed = docs.flatMap((d, i) => (d.name === undefined ? [i] : []));
  let finalIndex = -1;
  if (unnamed.length > 1) {
    for (const i of unnamed.slice(1)) issues.push(issue('error', 'STAGES', i, '', 'only one document may be unnamed (the final merge)'));
  } else if (unnamed.length === 1) {
    finalIndex = unnamed[0] ?? -1;
  } else if (docs.length === 1) {
    finalIndex = 0;
  } else {
    const used = new Set(deps.flat());
    const sinks = docs.flatMap((_d, i) => (used.has(i) ? [] : [i]));
    if (sinks.length === 1) finalIndex = sinks[0] ?? -1;
    else {
      issues.push(
        issue('error', 'STAGES', 0, '', `no unnamed final document, and ${sinks.length} documents are used by no other; leave the final one unnamed`),
      );
    }
  }
  // Depth-first topological order; a grey node met again is a cycle.
  const state = docs.map(() => 0);
  const order: number[] = [];
  const visitDoc = (i: number, trail: number[]): void => {
    if (state[i] === 2) return;
    if (state[i] === 1) {
      const cycle = [...trail.slice(trail.indexOf(i)), i].map((j) => docs[j]?.name ?? `#${j + 1}`);
      issues.push(issue('error', 'STAGES', i, 'name', `stages reference each other in a cycle: ${cycle.join(' → ')}`));
      return;
    }
    state[i] = 1;
    for (const j of deps[i] ?? []) visitDoc(j, [...trail, i]);
    state[i] = 2;
    order.push(i);
  };
  docs.forEach((_d, i) => visitDoc(i, []));
  if (issues.length > 0) return issues;
  return { finalIndex, order, deps };
}

function issue(severity: 'error' | 'warning', code: ConfigIssueCode, document: number, path: string, message: string): ConfigIssue {
  return { severity, code, document, path, message };
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** All checks on a typed config; returns errors and warnings (never throws). */
export function validateMergeConfig(config: MergeConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const stageNames = new Set(config.documents.flatMap((d) => (d.name === undefined ? [] : [d.name])));
  config.documents.forEach((doc, index) => issues.push(...validateDocument(doc, index, stageNames)));
  const graph = stageGraph(config);
  if (Array.isArray(graph)) issues.push(...graph);
  return issues;
}

/** Checks of one document; `stageNames` are the names of all documents in the file. */
export function validateDocument(
  doc: MergeDocument,
  index: number,
  stageNames: ReadonlySet<string>,
  options: { readonly parameters: boolean } = { parameters: true },
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (severity: 'error' | 'warning', code: ConfigIssueCode, path: string, message: string): void => {
    issues.push(issue(severity, code, index, path, message));
  };
  const spec = getMethodSpec(doc.merge_method);

  // Exactly one of models / slices / modules (mergekit's validate_inputs).
  const present = (['models', 'slices', 'modules'] as const).filter((k) => doc[k] !== undefined);
  if (present.length !== 1) {
    add('error', 'INPUTS_STRUCTURE', '', `exactly one of 'models', 'slices' or 'modules' is needed, got ${present.length === 0 ? 'none' : present.join(' and ')}`);
    return issues;
  }
  if (doc.modules) {
    const names = Object.keys(doc.modules);
    if (names.length !== 1) {
      add('error', 'UNSUPPORTED', 'modules', `multi-module architectures are not supported yet (got ${names.length} modules)`);
      return issues;
    }
    const mod = doc.modules[names[0] ?? ''];
    if (mod && (mod.models === undefined) === (mod.slices === undefined)) {
      add('error', 'INPUTS_STRUCTURE', `modules.${names[0]}`, "exactly one of 'models' or 'slices' is needed");
      return issues;
    }
  }
  const inputs = documentInputs(doc);
  if (inputs.models?.length === 0) add('error', 'INPUTS_STRUCTURE', join(inputs.path, 'models'), 'needs at least one model');
  if (inputs.slices?.length === 0) add('error', 'INPUTS_STRUCTURE', join(inputs.path, 'slices'), 'needs at least one slice');

  // Tokenizer (§1.5): base, union or a model, per-token overrides, padding.
  if (doc.tokenizer_source !== undefined && doc.tokenizer !== undefined) {
    add('error', 'INPUTS_STRUCTURE', 'tokenizer', "give either 'tokenizer_source' or 'tokenizer', not both");
  }
  // tokenizer.tokens: a source model must be merged here (mergekit asserts "referenced but not part of merge").
  const merged = documentModelRefs({ ...doc, tokenizer_source: 'base' });
  for (const o of doc.tokenizer?.tokens ?? []) {
    if (o.source.kind === 'zero') continue;
    const at = `${tokenSourcePath(o.token)}${o.source.kind === 'model_token' ? '.model' : ''}`;
    if (!merged.includes(o.source.model)) add('error', 'INPUTS_STRUCTURE', at, `'${o.source.model}' is not one of this document's models (${merged.join(', ')})`);
  }
  if (doc.tokenizer_source !== undefined && doc.tokenizer_source !== 'base' && doc.tokenizer_source !== 'union') {
    if (!merged.includes(doc.tokenizer_source)) add('error', 'INPUTS_STRUCTURE', 'tokenizer_source', `'${doc.tokenizer_source}' is not one of this document's models`);
  }
  if ((doc.tokenizer_source === 'base' || doc.tokenizer?.source === 'base') && doc.base_model === undefined) {
    add('error', 'BASE_MODEL', doc.tokenizer_source !== undefined ? 'tokenizer_source' : 'tokenizer.source', "'base' needs a base_model");
  }
  if (doc.name !== undefined && doc.name.includes('/')) {
    add('error', 'STAGES', 'name', `a stage name may not contain '/', got '${doc.name}'`);
  }

  // Parameters at every level (config.ts checks them while reading, with exact positions).
  if (options.parameters) {
    const check = (params: ParameterMap | undefined, path: string, level: 'top' | 'model'): void => {
      for (const i of parameterIssues(spec, params, path, level)) add(i.severity, i.code, i.path, i.message);
    };
    check(doc.parameters, 'parameters', 'top');
    if (inputs.moduleParameters) check(inputs.moduleParameters, join(inputs.path, 'parameters'), 'top');
    inputs.models?.forEach((m, i) => check(m.parameters, join(join(join(inputs.path, 'models'), i), 'parameters'), 'model'));
    inputs.slices?.forEach((s, i) => {
      const sp = join(join(inputs.path, 'slices'), i);
      check(s.parameters, join(sp, 'parameters'), 'top');
      s.sources.forEach((src, j) => check(src.parameters, join(join(join(sp, 'sources'), j), 'parameters'), 'model'));
    });
  }

  // Base model and model counts (§1.1).
  if (inputs.models) {
    const refs = inputs.models.map((m) => m.model);
    warnDuplicates(refs, (i) => join(join(inputs.path, 'models'), i), add);
    const distinct = [...new Set(refs)];
    const base = doc.base_model;
    if (spec.needsBase === 'yes' && base === undefined) {
      add('error', 'BASE_MODEL', 'base_model', `${spec.id} needs a base_model`);
    } else {
      // mergekit appends a base_model missing from `models:` (semantics §2).
      const all = base !== undefined && !distinct.includes(base) ? [...distinct, base] : distinct;
      checkCount(spec, all, base, join(inputs.path, 'models'), add);
    }
  }
  inputs.slices?.forEach((s, i) => {
    const sp = join(join(inputs.path, 'slices'), i);
    const refs = s.sources.map((src) => src.model);
    warnDuplicates(refs, (j) => join(join(sp, 'sources'), j), add);
    const lengths = s.sources.map((src) => src.layer_range[1] - src.layer_range[0]);
    if (new Set(lengths).size > 1) {
      add('error', 'SLICE_LENGTHS', join(sp, 'sources'), `all sources of a slice must cover the same number of layers, got ${lengths.join(', ')}`);
    }
    const base = s.base_model ?? doc.base_model;
    const distinct = [...new Set(refs)];
    if (spec.needsBase === 'yes' && base === undefined) {
      add('error', 'BASE_MODEL', sp, `${spec.id} needs a base_model (top level or on the slice)`);
      return;
    }
    if (spec.needsBase !== 'no' && base !== undefined && !distinct.includes(base)) {
      add('error', 'BASE_MODEL', join(sp, 'sources'), `the base model '${base}' must be one of the slice's sources for ${spec.id}`);
      return;
    }
    checkCount(spec, distinct, base, join(sp, 'sources'), add);
  });

  // A stage may not reference itself by name.
  if (doc.name !== undefined && documentModelRefs(doc).includes(doc.name) && stageNames.has(doc.name)) {
    add('error', 'STAGES', 'name', `document '${doc.name}' uses itself as a model`);
  }
  return issues;
}

function warnDuplicates(
  refs: readonly string[],
  pathOf: (i: number) => string,
  add: (s: 'error' | 'warning', c: ConfigIssueCode, p: string, m: string) => void,
): void {
  refs.forEach((r, i) => {
    const first = refs.indexOf(r);
    if (first !== i) {
      add('warning', 'DUPLICATE_MODEL', join(pathOf(i), 'model'), `'${r}' is listed again; mergekit counts it once and the first entry's parameters win (semantics §0.13)`);
    }
  });
}

function checkCount(
  spec: MethodSpec,
  distinct: readonly string[],
  base: string | undefined,
  path: string,
  add: (s: 'error' | 'warning', c: ConfigIssueCode, p: string, m: string) => void,
): void {
  if (!spec.modelCount) return;
  const counted = spec.needsBase === 'no' || base === undefined ? distinct.length : distinct.filter((r) => r !== base).length;
  const { min, max } = spec.modelCount;
  if (counted >= min && counted <= max) return;
  const want = min === max ? `exactly ${min}` : max === Number.POSITIVE_INFINITY ? `at least ${min}` : `${min} to ${max}`;
  const besides = spec.needsBase === 'no' || base === undefined ? '' : ' besides the base model';
  const note = spec.needsBase === 'no' && base !== undefined ? ' (a base_model is merged like any other model here)' : '';
  add('error', 'MODEL_COUNT', path, `${spec.id} takes ${want} model${max === 1 ? '' : 's'}${besides}, got ${counted}${note}`);
}

/**
 * Name, scope and range checks of one `parameters:` map. `level` is 'model' for a model's or a
 * source's own parameters (where global parameters are ignored by mergekit).
 */
export function parameterIssues(
  spec: MethodSpec,
  params: ParameterMap | undefined,
  path: string,
  level: 'top' | 'model',
): { severity: 'error' | 'warning'; code: ConfigIssueCode; path: string; message: string }[] {
  const out: { severity: 'error' | 'warning'; code: ConfigIssueCode; path: string; message: string }[] = [];
  if (!params) return out;
  for (const [name, setting] of Object.entries(params)) {
    const p = join(path, name);
    const param = spec.params.find((x) => x.name === name);
    if (!param) {
      const known = spec.params.map((x) => x.name).join(', ') || 'none';
      out.push({ severity: 'warning', code: 'UNKNOWN_PARAMETER', path: p, message: `${spec.id} has no parameter '${name}'; it is ignored (known: ${known})` });
      continue;
    }
    if (level === 'model' && param.scope === 'global') {
      out.push({ severity: 'warning', code: 'IGNORED_PARAMETER', path: p, message: `'${name}' is a global parameter of ${spec.id}; mergekit ignores it under a model's parameters` });
    }
    if (param.kind !== 'number') continue;
    // Interpolation stays inside an interval, so checking every leaf checks every resolved value.
    forEachLeaf(setting, p, (value, leafPath) => {
      const v = typeof value === 'boolean' ? (value ? 1 : 0) : value;
      if (!isInParamRange(param, v)) out.push({ severity: 'error', code: 'PARAM_RANGE', path: leafPath, message: `must be in ${formatParamRange(param)}, got ${v}` });
    });
  }
  return out;
}

function forEachLeaf(setting: Setting, path: string, f: (v: number | boolean, path: string) => void): void {
  if (!Array.isArray(setting)) {
    f(setting as number | boolean, path);
    return;
  }
  (setting as readonly unknown[]).forEach((e, i) => {
    const p = join(path, i);
    if (typeof e === 'number' || typeof e === 'boolean') f(e, p);
    else if (e !== null && typeof e === 'object' && 'value' in e) {
      const value = (e as { value: number | boolean | readonly (number | boolean)[] }).value;
      if (Array.isArray(value)) (value as readonly (number | boolean)[]).forEach((x, k) => f(x, join(join(p, 'value'), k)));
      else f(value as number | boolean, join(p, 'value'));
    }
  });
}
