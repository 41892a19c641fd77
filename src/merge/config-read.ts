import { isMap, isScalar, isSeq, type Node as YamlNode } from 'yaml';
import type { MergekitDType } from '../tensors/dtype.js';
import { parameterIssues } from './config-validate.js';
import {
  deref,
  describe,
  isNull,
  join,
  posOf,
  readMap,
  readString,
  report,
  type Ctx,
} from './config-yaml-node.js';
import type {
  InputModelDefinition,
  InputSliceDefinition,
  MergeDocument,
  OutputModuleDefinition,
  OutputSliceDefinition,
  TokenEmbeddingOverride,
  TokenEmbeddingSource,
  TokenizerDefinition,
} from './config.js';
import { findMethodSpec, METHOD_IDS } from './registry.js';
import type { ConditionalSetting, ParameterMap, Setting } from './resolve.js';
import type { MethodId } from './task.js';

/**
 * Reading one YAML document of a mergekit config into a typed MergeDocument, node by node, so that
 * every issue carries the line and column of the value it is about (config.ts drives it).
 */

const CONFIG_DTYPE_NAMES: readonly MergekitDType[] = ['float32', 'float16', 'bfloat16'];

function readModelRef(ctx: Ctx, node: YamlNode | null, path: string): string | undefined {
  const ref = readString(ctx, node, path);
  if (ref === undefined) return undefined;
  if (ref.includes('+')) {
    report(ctx, 'error', 'UNSUPPORTED', path, `LoRA references ('model+lora') are not supported yet, got '${ref}'`, node);
  }
  return ref;
}

function readDType(ctx: Ctx, node: YamlNode | null, path: string): MergekitDType | undefined {
  const s = readString(ctx, node, path);
  if (s === undefined) return undefined;
  const name = s.startsWith('torch.') ? s.slice('torch.'.length) : s;
  if ((CONFIG_DTYPE_NAMES as readonly string[]).includes(name)) return name as MergekitDType;
  report(ctx, 'error', 'INVALID_DTYPE', path, `must be one of ${CONFIG_DTYPE_NAMES.join(', ')}, got '${s}'`, node);
  return undefined;
}

/** A scalar leaf of a parameter setting: a number or boolean (numeric strings are coerced, as pydantic does). */
function readLeaf(ctx: Ctx, node: YamlNode | null, path: string): number | boolean | undefined {
  const pos = posOf(ctx, node);
  if (pos) ctx.positions.set(`${ctx.index}|${path}`, pos);
  if (isScalar(node)) {
    const v = node.value;
    if (typeof v === 'number' || typeof v === 'boolean') return v;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) {
      report(ctx, 'warning', 'QUOTED_NUMBER', path, `quoted number '${v}' read as ${Number(v)}`, node);
      return Number(v);
    }
  }
  report(ctx, 'error', 'PARAM_TYPE', path, `expected a number or boolean, got ${describe(node)}`, node);
  return undefined;
}

function readScalarOrGradient(ctx: Ctx, node: YamlNode | null, path: string): number | boolean | (number | boolean)[] | undefined {
  if (isSeq(node)) {
    if (node.items.length === 0) {
      report(ctx, 'error', 'PARAM_TYPE', path, 'a gradient needs at least one value, got an empty list', node);
      return undefined;
    }
    const out: (number | boolean)[] = [];
    let ok = true;
    node.items.forEach((item, i) => {
      const v = readLeaf(ctx, deref(ctx, item), join(path, i));
      if (v === undefined) ok = false;
      else out.push(v);
    });
    return ok ? out : undefined;
  }
  return readLeaf(ctx, node, path);
}

function readSetting(ctx: Ctx, node: YamlNode | null, path: string): Setting | undefined {
  if (isMap(node)) {
    report(
      ctx,
      'error',
      'PARAM_TYPE',
      path,
      'a single {filter, value} must be written as a list: [{filter: ..., value: ...}] (mergekit fails on the bare mapping)',
      node,
    );
    return undefined;
  }
  if (isSeq(node) && node.items.some((item) => isMap(deref(ctx, item)))) {
    const out: ConditionalSetting[] = [];
    let ok = true;
    node.items.forEach((item, i) => {
      const p = join(path, i);
      const entry = readMap(ctx, deref(ctx, item), p, ['filter', 'value']);
      if (!entry) {
        ok = false;
        return;
      }
      const filterNode = entry.get('filter');
      let filter: string | undefined;
      if (filterNode !== undefined && !isNull(filterNode)) {
        filter = readString(ctx, filterNode, join(p, 'filter'));
        if (filter === undefined) ok = false;
      }
      if (!entry.has('value')) {
        report(ctx, 'error', 'MISSING_KEY', p, "a filter entry needs 'value'", deref(ctx, item));
        ok = false;
        return;
      }
      const value = readScalarOrGradient(ctx, entry.get('value') ?? null, join(p, 'value'));
      if (value === undefined) ok = false;
      else out.push(filter === undefined ? { value } : { filter, value });
    });
    return ok ? out : undefined;
  }
  return readScalarOrGradient(ctx, node, path);
}

function readParameters(ctx: Ctx, node: YamlNode | null, path: string, level: 'top' | 'model'): ParameterMap | undefined {
  if (isNull(node)) return undefined;
  if (!isMap(node)) {
    report(ctx, 'error', 'WRONG_TYPE', path, `expected a mapping of parameter names, got ${describe(node)}`, node);
    return undefined;
  }
  const out: Record<string, Setting> = {};
  for (const pair of node.items) {
    const keyNode = deref(ctx, pair.key);
    const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
    if (key === undefined) {
      report(ctx, 'error', 'WRONG_TYPE', path, 'parameter names must be plain strings', keyNode);
      continue;
    }
    const p = join(path, key);
    const valueNode = deref(ctx, pair.value);
    const pos = posOf(ctx, valueNode) ?? posOf(ctx, keyNode);
    if (pos) ctx.positions.set(`${ctx.index}|${p}`, pos);
    const setting = readSetting(ctx, valueNode, p);
    if (setting !== undefined) out[key] = setting;
  }
  if (ctx.spec) {
    for (const i of parameterIssues(ctx.spec, out, path, level)) report(ctx, i.severity, i.code, i.path, i.message);
  }
  return out;
}

function readList<T>(ctx: Ctx, node: YamlNode | null, path: string, item: (n: YamlNode | null, p: string) => T | undefined): T[] | undefined {
  if (!isSeq(node)) {
    report(ctx, 'error', 'WRONG_TYPE', path, `expected a list, got ${describe(node)}`, node);
    return undefined;
  }
  const out: T[] = [];
  node.items.forEach((n, i) => {
    const p = join(path, i);
    const pos = posOf(ctx, deref(ctx, n));
    if (pos) ctx.positions.set(`${ctx.index}|${p}`, pos);
    const v = item(deref(ctx, n), p);
    if (v !== undefined) out.push(v);
  });
  return out;
}

function readInputModel(ctx: Ctx, node: YamlNode | null, path: string): InputModelDefinition | undefined {
  const m = readMap(ctx, node, path, ['model', 'parameters']);
  if (!m) return undefined;
  if (!m.has('model')) {
    report(ctx, 'error', 'MISSING_KEY', path, "missing 'model'", node);
    return undefined;
  }
  const model = readModelRef(ctx, m.get('model') ?? null, join(path, 'model'));
  const parameters = readParameters(ctx, m.get('parameters') ?? null, join(path, 'parameters'), 'model');
  if (model === undefined) return undefined;
  return parameters ? { model, parameters } : { model };
}

function readLayerRange(ctx: Ctx, node: YamlNode | null, path: string): [number, number] | undefined {
  if (isSeq(node) && node.items.length === 2) {
    const [a, b] = node.items.map((n) => deref(ctx, n));
    const start = isScalar(a) ? a.value : undefined;
    const end = isScalar(b) ? b.value : undefined;
    if (typeof start === 'number' && typeof end === 'number' && Number.isSafeInteger(start) && Number.isSafeInteger(end)) {
      if (start >= 0 && start < end) return [start, end];
      report(ctx, 'error', 'LAYER_RANGE', path, `must be [start, end) with 0 ≤ start < end, got [${start}, ${end}]`, node);
      return undefined;
    }
  }
  report(ctx, 'error', 'LAYER_RANGE', path, `must be a list of two integers [start, end), got ${describe(node)}`, node);
  return undefined;
}

function readSource(ctx: Ctx, node: YamlNode | null, path: string): InputSliceDefinition | undefined {
  const m = readMap(ctx, node, path, ['model', 'layer_range', 'parameters']);
  if (!m) return undefined;
  for (const key of ['model', 'layer_range']) {
    if (!m.has(key)) report(ctx, 'error', 'MISSING_KEY', path, `missing '${key}'`, node);
  }
  if (!m.has('model') || !m.has('layer_range')) return undefined;
  const model = readModelRef(ctx, m.get('model') ?? null, join(path, 'model'));
  const range = readLayerRange(ctx, m.get('layer_range') ?? null, join(path, 'layer_range'));
  const parameters = readParameters(ctx, m.get('parameters') ?? null, join(path, 'parameters'), 'model');
  if (model === undefined || range === undefined) return undefined;
  return { model, layer_range: range, ...(parameters ? { parameters } : {}) };
}

function readSlice(ctx: Ctx, node: YamlNode | null, path: string): OutputSliceDefinition | undefined {
  const m = readMap(ctx, node, path, ['sources', 'base_model', 'residual_weight', 'parameters']);
  if (!m) return undefined;
  if (!m.has('sources')) {
    report(ctx, 'error', 'MISSING_KEY', path, "missing 'sources'", node);
    return undefined;
  }
  const sourcesNode = m.get('sources') ?? null;
  const sources = readList(ctx, sourcesNode, join(path, 'sources'), (n, p) => readSource(ctx, n, p));
  if (isSeq(sourcesNode) && sourcesNode.items.length === 0) report(ctx, 'error', 'INPUTS_STRUCTURE', join(path, 'sources'), 'a slice needs at least one source', sourcesNode);
  const baseNode = m.get('base_model');
  const base_model = baseNode === undefined || isNull(baseNode) ? undefined : readModelRef(ctx, baseNode, join(path, 'base_model'));
  const rwNode = m.get('residual_weight');
  let residual_weight: number | undefined;
  if (rwNode !== undefined && !isNull(rwNode)) {
    const v = readLeaf(ctx, rwNode, join(path, 'residual_weight'));
    if (typeof v === 'number') residual_weight = v;
    report(ctx, 'warning', 'IGNORED_PARAMETER', join(path, 'residual_weight'), 'residual_weight is parsed but unused by mergekit', rwNode);
  }
  const parameters = readParameters(ctx, m.get('parameters') ?? null, join(path, 'parameters'), 'top');
  if (!sources) return undefined;
  return {
    sources,
    ...(base_model !== undefined ? { base_model } : {}),
    ...(residual_weight !== undefined ? { residual_weight } : {}),
    ...(parameters ? { parameters } : {}),
  };
}

function readInputs(
  ctx: Ctx,
  m: Map<string, YamlNode | null>,
  path: string,
): { models?: InputModelDefinition[]; slices?: OutputSliceDefinition[] } {
  const out: { models?: InputModelDefinition[]; slices?: OutputSliceDefinition[] } = {};
  const modelsNode = m.get('models');
  if (modelsNode !== undefined && !isNull(modelsNode)) {
    const models = readList(ctx, modelsNode, join(path, 'models'), (n, p) => readInputModel(ctx, n, p));
    if (models) out.models = models;
  }
  const slicesNode = m.get('slices');
  if (slicesNode !== undefined && !isNull(slicesNode)) {
    const slices = readList(ctx, slicesNode, join(path, 'slices'), (n, p) => readSlice(ctx, n, p));
    if (slices) out.slices = slices;
  }
  return out;
}

function readModule(ctx: Ctx, node: YamlNode | null, path: string): OutputModuleDefinition | undefined {
  const m = readMap(ctx, node, path, ['models', 'slices', 'parameters']);
  if (!m) return undefined;
  const inputs = readInputs(ctx, m, path);
  const parameters = readParameters(ctx, m.get('parameters') ?? null, join(path, 'parameters'), 'top');
  return { ...inputs, ...(parameters ? { parameters } : {}) };
}

function readTokenizer(ctx: Ctx, node: YamlNode | null, path: string): TokenizerDefinition | undefined {
  const m = readMap(ctx, node, path, ['source', 'tokens', 'pad_to_multiple_of']);
  if (!m) return undefined;
  const out: { source?: string; tokens?: TokenEmbeddingOverride[]; pad_to_multiple_of?: number } = {};
  const source = m.get('source');
  if (source !== undefined && !isNull(source)) {
    const s = readString(ctx, source, join(path, 'source'));
    if (s !== undefined) out.source = s;
  }
  const tokens = m.get('tokens');
  if (tokens !== undefined && tokens !== null && !isNull(tokens)) {
    const list = readTokenOverrides(ctx, tokens, join(path, 'tokens'));
    if (list) out.tokens = list;
  }
  const pad = m.get('pad_to_multiple_of');
  if (pad !== undefined && !isNull(pad)) {
    const v = readLeaf(ctx, pad, join(path, 'pad_to_multiple_of'));
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) out.pad_to_multiple_of = v;
    else report(ctx, 'error', 'WRONG_TYPE', join(path, 'pad_to_multiple_of'), `expected a positive integer, got ${describe(pad)}`, pad);
  }
  return out;
}

/**
 * `tokenizer.tokens` (mergekit's Dict[str, TokenEmbeddingConfig]): token → {source, force}. Key
 * paths quote the token (`tokenizer.tokens."<|im_start|>".source`), as tokens hold dots and spaces.
 */
function readTokenOverrides(ctx: Ctx, node: YamlNode, path: string): TokenEmbeddingOverride[] | undefined {
  if (!isMap(node)) {
    report(ctx, 'error', 'WRONG_TYPE', path, `expected a mapping of token → {source, force}, got ${describe(node)}`, node);
    return undefined;
  }
  const out: TokenEmbeddingOverride[] = [];
  for (const pair of node.items) {
    const keyNode = deref(ctx, pair.key);
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
      // mergekit's Dict[str, ...] rejects a YAML number or boolean key too (`1:`, `yes:`).
      report(ctx, 'error', 'WRONG_TYPE', path, `token keys must be strings (quote them), got ${describe(keyNode)}`, keyNode);
      continue;
    }
    const token = keyNode.value;
    const p = `${path}.${JSON.stringify(token)}`;
    const entry = readMap(ctx, deref(ctx, pair.value), p, ['source', 'force']);
    if (!entry) continue;
    const sourceNode = entry.get('source') ?? null;
    let source: TokenEmbeddingSource | undefined;
    if (isNull(sourceNode)) {
      // mergekit accepts a missing source and then fails mid-merge (NotImplementedError).
      report(ctx, 'error', 'MISSING_KEY', join(p, 'source'), "required: a model name, {kind: model_token, model, token | token_id} or {kind: zero}", sourceNode ?? keyNode);
    } else {
      source = readTokenSource(ctx, sourceNode, join(p, 'source'));
    }
    let force = false;
    const forceNode = entry.get('force') ?? null;
    if (!isNull(forceNode)) {
      if (isScalar(forceNode) && typeof forceNode.value === 'boolean') force = forceNode.value;
      else report(ctx, 'error', 'WRONG_TYPE', join(p, 'force'), `expected true or false, got ${describe(forceNode)}`, forceNode);
    }
    if (source !== undefined) out.push({ token, source, force });
  }
  return out;
}

/** A token's `source`: a model name (or `{model: name}`, as pydantic reads a ModelReference), `{kind: model_token, ...}` or `{kind: zero}`. */
function readTokenSource(ctx: Ctx, node: YamlNode | null, path: string): TokenEmbeddingSource | undefined {
  if (!isMap(node)) {
    const model = readModelRef(ctx, node, path);
    return model === undefined ? undefined : { kind: 'model', model };
  }
  const m = readMap(ctx, node, path, ['kind', 'model', 'token', 'token_id']);
  if (!m) return undefined;
  const kindNode = m.get('kind') ?? null;
  if (isNull(kindNode)) {
    if (m.has('token') || m.has('token_id')) {
      // pydantic would read this as a plain ModelReference and drop token / token_id silently.
      report(ctx, 'error', 'MISSING_KEY', join(path, 'kind'), "required with token or token_id: 'model_token'", node);
      return undefined;
    }
    if (!m.has('model')) {
      report(ctx, 'error', 'MISSING_KEY', join(path, 'kind'), "expected 'model_token' or 'zero' (or a model name)", node);
      return undefined;
    }
    const model = readModelRef(ctx, m.get('model') ?? null, join(path, 'model'));
    return model === undefined ? undefined : { kind: 'model', model };
  }
  const kind = isScalar(kindNode) ? kindNode.value : undefined;
  if (kind === 'zero') {
    for (const k of ['model', 'token', 'token_id']) if (m.has(k)) report(ctx, 'warning', 'UNKNOWN_KEY', join(path, k), `is ignored with kind: zero`, m.get(k));
    return { kind: 'zero' };
  }
  if (kind !== 'model_token') {
    report(ctx, 'error', 'WRONG_TYPE', join(path, 'kind'), `expected 'model_token' or 'zero', got ${describe(kindNode)}`, kindNode);
    return undefined;
  }
  const modelNode = m.get('model');
  if (modelNode === undefined || isNull(modelNode)) {
    report(ctx, 'error', 'MISSING_KEY', join(path, 'model'), 'required with kind: model_token (the model whose row is taken)', node);
    return undefined;
  }
  const model = readModelRef(ctx, modelNode, join(path, 'model'));
  const tokenNode = m.get('token');
  const idNode = m.get('token_id');
  const hasToken = tokenNode !== undefined && !isNull(tokenNode);
  const hasId = idNode !== undefined && !isNull(idNode);
  if (hasToken === hasId) {
    report(ctx, 'error', hasToken ? 'INPUTS_STRUCTURE' : 'MISSING_KEY', path, `kind: model_token needs exactly one of token or token_id, got ${hasToken ? 'both' : 'neither'}`, node);
    return undefined;
  }
  if (hasToken) {
    if (!(isScalar(tokenNode) && typeof tokenNode.value === 'string')) {
      report(ctx, 'error', 'WRONG_TYPE', join(path, 'token'), `expected a token string, got ${describe(tokenNode ?? null)}`, tokenNode);
      return undefined;
    }
    return model === undefined ? undefined : { kind: 'model_token', model, token: tokenNode.value };
  }
  const id = isScalar(idNode) ? idNode.value : undefined;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    report(ctx, 'error', 'WRONG_TYPE', join(path, 'token_id'), `expected a non-negative integer row index, got ${describe(idNode ?? null)}`, idNode);
    return undefined;
  }
  return model === undefined ? undefined : { kind: 'model_token', model, token_id: id };
}

export const DOCUMENT_KEYS = [
  'name',
  'merge_method',
  'base_model',
  'dtype',
  'out_dtype',
  'tokenizer_source',
  'tokenizer',
  'chat_template',
  'parameters',
  'models',
  'slices',
  'modules',
] as const;

export function readDocument(ctx: Ctx): MergeDocument | undefined {
  const root = deref(ctx, ctx.doc.contents);
  if (isNull(root)) {
    report(ctx, 'error', 'WRONG_TYPE', '', 'empty document');
    return undefined;
  }
  const m = readMap(ctx, root, '', DOCUMENT_KEYS);
  if (!m) return undefined;
  const get = (key: string): YamlNode | null | undefined => {
    const n = m.get(key);
    return n === undefined || isNull(n) ? undefined : n;
  };
  let method: MethodId | undefined;
  const methodNode = get('merge_method');
  if (methodNode === undefined) {
    report(ctx, 'error', 'MISSING_KEY', 'merge_method', "missing 'merge_method'", root);
  } else {
    const id = readString(ctx, methodNode, 'merge_method');
    if (id !== undefined) {
      const spec = findMethodSpec(id);
      if (spec) {
        method = spec.id;
        ctx.spec = spec;
      }
      else report(ctx, 'error', 'UNKNOWN_METHOD', 'merge_method', `unknown merge_method '${id}'; known: ${METHOD_IDS.join(', ')}`, methodNode);
    }
  }
  const str = (key: string, read: (n: YamlNode | null, p: string) => string | undefined): string | undefined => {
    const n = get(key);
    return n === undefined ? undefined : read(n, key);
  };
  const name = str('name', (n, p) => readString(ctx, n, p));
  const base_model = str('base_model', (n, p) => readModelRef(ctx, n, p));
  const dtypeNode = get('dtype');
  const dtype = dtypeNode === undefined ? undefined : readDType(ctx, dtypeNode, 'dtype');
  const outNode = get('out_dtype');
  const out_dtype = outNode === undefined ? undefined : readDType(ctx, outNode, 'out_dtype');
  const tokenizer_source = str('tokenizer_source', (n, p) => readString(ctx, n, p));
  const tokNode = get('tokenizer');
  const tokenizer = tokNode === undefined ? undefined : readTokenizer(ctx, tokNode, 'tokenizer');
  const chat_template = str('chat_template', (n, p) => readString(ctx, n, p));
  const parameters = readParameters(ctx, get('parameters') ?? null, 'parameters', 'top');
  const inputs = readInputs(ctx, m, '');
  let modules: Record<string, OutputModuleDefinition> | undefined;
  const modulesNode = get('modules');
  if (modulesNode !== undefined) {
    const mm = isMap(modulesNode) ? modulesNode : undefined;
    if (!mm) report(ctx, 'error', 'WRONG_TYPE', 'modules', `expected a mapping of module names, got ${describe(modulesNode)}`, modulesNode);
    else {
      modules = {};
      for (const pair of mm.items) {
        const keyNode = deref(ctx, pair.key);
        const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
        if (key === undefined) continue;
        const p = join('modules', key);
        const v = deref(ctx, pair.value);
        const pos = posOf(ctx, v);
        if (pos) ctx.positions.set(`${ctx.index}|${p}`, pos);
        const mod = readModule(ctx, v, p);
        if (mod) modules[key] = mod;
      }
    }
  }
  if (method === undefined) return undefined;
  return {
    ...(name !== undefined ? { name } : {}),
    merge_method: method,
    ...(base_model !== undefined ? { base_model } : {}),
    ...(dtype !== undefined ? { dtype } : {}),
    ...(out_dtype !== undefined ? { out_dtype } : {}),
    ...(tokenizer_source !== undefined ? { tokenizer_source } : {}),
    ...(tokenizer !== undefined ? { tokenizer } : {}),
    ...(chat_template !== undefined ? { chat_template } : {}),
    ...(parameters !== undefined ? { parameters } : {}),
    ...inputs,
    ...(modules !== undefined ? { modules } : {}),
  };
}

