import { formatParamRange, isInParamRange } from '../merge/method-spec.js';
import { findMethodSpec } from '../merge/registry.js';
import { geneParamSpec, isSearchableMethod, methodGenes, SEARCHABLE_METHODS, type GeneParam } from './method-genes.js';
import type { OptimizerKind } from './space.js';
import { describe, valueAt, type PathSeg, type RawIssue, type RawSpace } from './space-schema.js';

/** Checks of a search space beyond its schema: cross-key rules, registry ranges, method needs. */

/** Optimizer keys that only mean something for some kinds. */
const KIND_KEYS: Readonly<Record<string, readonly OptimizerKind[]>> = {
  elitism: ['ga'],
  tournament_size: ['ga'],
  crossover_rate: ['ga', 'nsga2'],
  mutation_rate: ['ga', 'nsga2'],
  categorical_mutation_rate: ['ga', 'nsga2'],
  sbx_eta: ['ga', 'nsga2'],
  mutation_eta: ['ga', 'nsga2'],
  sigma0: ['cmaes'],
  method: ['cmaes'],
};

function orderIssue(r: { min: number; max: number }, path: readonly PathSeg[], issues: RawIssue[]): void {
  if (r.min > r.max) issues.push({ code: 'OUT_OF_RANGE', path: [...path, 'min'], message: `must be ≤ max (${r.max}), got ${r.min}` });
}

/** The first bound of `r` outside the valid range of `method`'s parameter `p` (when it reads one). */
function boundIssue(r: { min: number; max: number }, path: readonly PathSeg[], method: string, p: GeneParam, issues: RawIssue[]): void {
  const spec = isSearchableMethod(method) ? geneParamSpec(method, p) : undefined;
  if (!spec) return;
  for (const side of ['min', 'max'] as const) {
    if (!isInParamRange(spec, r[side])) {
      issues.push({ code: 'OUT_OF_RANGE', path: [...path, side], message: `${boundMessage(spec.min, spec.minExclusive, spec.max, spec.maxExclusive, r[side])} (${method} ${p} must be in ${formatParamRange(spec)})` });
      return;
    }
  }
}

function rangeIssues(raw: RawSpace, issues: RawIssue[]): void {
  const g = raw.genome;
  for (const p of ['weight', 'density', 't'] as const) {
    const r = g[p];
    if (!r) continue;
    // The search range must lie inside the valid range of every method in the space that reads p
    // through it (genome.t is slerp's; other methods' t have ranges of their own, t_ranges).
    orderIssue(r, ['genome', p], issues);
    for (const m of p === 't' ? g.methods.filter((x) => x === 'slerp') : g.methods) boundIssue(r, ['genome', p], m, p, issues);
  }
  const own = g.methods.filter((m) => m !== 'slerp' && isSearchableMethod(m) && methodGenes(m).t);
  if (g.t && !g.methods.includes('slerp') && own.length > 0) {
    issues.push({ code: 'CONFLICT', path: ['genome', 't'], message: `is slerp's t range, and slerp is not in genome.methods; set ${own.map((m) => `genome.t_ranges.${m}`).join(', ')} instead`, atKey: true });
  }
  for (const [m, r] of Object.entries(g.t_ranges ?? {})) {
    const at: PathSeg[] = ['genome', 't_ranges', m];
    if (m === 'slerp') issues.push({ code: 'CONFLICT', path: at, message: `slerp's t range is genome.t`, atKey: true });
    else if (!g.methods.includes(m)) issues.push({ code: 'INVALID_VALUE', path: at, message: `${m} is not in genome.methods (${g.methods.join(', ')})`, atKey: true });
    else if (!own.includes(m)) issues.push({ code: 'INVALID_VALUE', path: at, message: `${m} has no searched t; methods with a t range here: ${own.join(', ') || 'none in this space'}`, atKey: true });
    else {
      orderIssue(r, at, issues);
      boundIssue(r, at, m, 't', issues);
    }
  }
}

function boundMessage(min: number | undefined, minEx: boolean | undefined, max: number | undefined, maxEx: boolean | undefined, v: number): string {
  if (min !== undefined && (minEx ? v <= min : v < min)) return `must be ${minEx ? '>' : '≥'} ${min}, got ${v}`;
  if (max !== undefined && (maxEx ? v >= max : v > max)) return `must be ${maxEx ? '<' : '≤'} ${max}, got ${v}`;
  return `must be a valid value, got ${v}`;
}

function duplicates(list: readonly string[], path: readonly PathSeg[], what: string, issues: RawIssue[]): void {
  const seen = new Set<string>();
  list.forEach((v, i) => {
    if (seen.has(v)) issues.push({ code: 'DUPLICATE', path: [...path, i], message: `${what} ${JSON.stringify(v)} is listed twice` });
    seen.add(v);
  });
}

export function semanticIssues(raw: RawSpace, data: unknown): RawIssue[] {
  const issues: RawIssue[] = [];
  const g = raw.genome;
  duplicates(raw.models, ['models'], 'model', issues);
  raw.models.forEach((m, i) => {
    if (m === raw.base_model) issues.push({ code: 'CONFLICT', path: ['models', i], message: `is the base_model; list only the models merged into it` });
    if (m.startsWith('stage_')) issues.push({ code: 'INVALID_VALUE', path: ['models', i], message: `names beginning with 'stage_' are reserved for intermediate merges` });
  });
  if (raw.base_model.startsWith('stage_')) issues.push({ code: 'INVALID_VALUE', path: ['base_model'], message: `names beginning with 'stage_' are reserved for intermediate merges` });
  duplicates(g.methods, ['genome', 'methods'], 'method', issues);
  g.methods.forEach((m, i) => {
    if (!findMethodSpec(m)) issues.push({ code: 'UNKNOWN_METHOD', path: ['genome', 'methods', i], message: `unknown merge method ${JSON.stringify(m)}; searchable: ${SEARCHABLE_METHODS.join(', ')}` });
    else if (!isSearchableMethod(m)) issues.push({ code: 'UNKNOWN_METHOD', path: ['genome', 'methods', i], message: `${m} cannot be searched (no gene mapping); searchable: ${SEARCHABLE_METHODS.join(', ')}` });
    else {
      const need = methodGenes(m).minModels;
      if (raw.models.length < need) issues.push({ code: 'CONFLICT', path: ['genome', 'methods', i], message: `${m} needs at least ${need} models besides the base, got ${raw.models.length}` });
    }
  });
  duplicates(g.filters, ['genome', 'filters'], 'filter', issues);
  g.filters.forEach((f, i) => {
    if (f === '*') issues.push({ code: 'INVALID_VALUE', path: ['genome', 'filters', i], message: `'*' is the catch-all class, which always exists; list only substrings` });
  });
  if (g.embeddings) {
    const embed = new Set([...g.embedding_filters.pre, ...g.embedding_filters.post]);
    g.filters.forEach((f, i) => {
      if (embed.has(f)) issues.push({ code: 'CONFLICT', path: ['genome', 'filters', i], message: `${JSON.stringify(f)} is an embedding filter; with embeddings: true it has genes of its own` });
    });
  }
  rangeIssues(raw, issues);
  const w = g.weight;
  if (w && w.min === 0 && w.max === 0 && g.methods.includes('linear')) {
    issues.push({ code: 'CONFLICT', path: ['genome', 'weight', 'max'], message: 'linear needs weights that are not all 0 (their sum divides the output)' });
  }
  if (w && w.min === 0 && w.max === 0 && g.methods.includes('multislerp')) {
    issues.push({ code: 'CONFLICT', path: ['genome', 'weight', 'max'], message: 'multislerp needs weights that are not all 0 (their sum divides them, and their weighted mean direction must not vanish)' });
  }
  for (const [method, params] of Object.entries(g.parameters)) {
    const path: PathSeg[] = ['genome', 'parameters', method];
    if (!g.methods.includes(method)) {
      issues.push({ code: 'INVALID_VALUE', path, message: `${method} is not in genome.methods (${g.methods.join(', ')})`, atKey: true });
      continue;
    }
    if (!isSearchableMethod(method)) continue;
    const genes = methodGenes(method);
    for (const [name, value] of Object.entries(params)) {
      const spec = genes.spec.params.find((p) => p.name === name);
      const at = [...path, name];
      if (!spec) {
        issues.push({ code: 'UNKNOWN_KEY', path: at, message: `${method} has no parameter ${name}; it has: ${genes.spec.params.map((p) => p.name).join(', ')}`, atKey: true });
      } else if ((name === 'weight' && genes.weight) || (name === 'density' && genes.density) || (name === 't' && genes.t)) {
        const key = name === 't' && method !== 'slerp' ? `t_ranges.${method}` : name;
        issues.push({ code: 'CONFLICT', path: at, message: `${name} is searched; set its range with genome.${key} instead`, atKey: true });
      } else if (spec.kind === 'boolean' && typeof value !== 'boolean') {
        issues.push({ code: 'WRONG_TYPE', path: at, message: `must be true or false, got ${describe(value)}` });
      } else if (spec.kind === 'number' && (typeof value !== 'number' || !isInParamRange(spec, value))) {
        issues.push({ code: typeof value === 'number' ? 'OUT_OF_RANGE' : 'WRONG_TYPE', path: at, message: `must be in ${formatParamRange(spec)}, got ${describe(value)}` });
      }
    }
  }
  const o = raw.optimizer;
  const given = (valueAt(data, ['optimizer']) ?? {}) as Record<string, unknown>;
  for (const [key, kinds] of Object.entries(KIND_KEYS)) {
    if (given[key] !== undefined && !kinds.includes(o.kind)) {
      issues.push({ code: 'CONFLICT', path: ['optimizer', key], message: `only applies to kind ${kinds.join(' or ')}, got kind ${o.kind}`, atKey: true });
    }
  }
  if (o.kind === 'ga' && o.population !== undefined && o.elitism >= o.population) {
    issues.push({ code: 'CONFLICT', path: ['optimizer', 'elitism'], message: `must be < population (${o.population}), got ${o.elitism}` });
  }
  if (o.kind === 'ga' && o.population === undefined && o.elitism >= 16) {
    issues.push({ code: 'CONFLICT', path: ['optimizer', 'elitism'], message: `must be < population (16), got ${o.elitism}` });
  }
  if (o.kind === 'nsga2' && raw.objectives.length < 2) {
    issues.push({ code: 'CONFLICT', path: ['optimizer', 'kind'], message: `nsga2 needs at least 2 objectives, got ${raw.objectives.length}; use ga for one` });
  }
  if (o.method !== undefined && !g.methods.includes(o.method)) {
    issues.push({ code: 'INVALID_VALUE', path: ['optimizer', 'method'], message: `must be one of genome.methods (${g.methods.join(', ')}), got ${describe(o.method)}` });
  }
  duplicates(raw.objectives.map((x) => x.name), ['objectives'], 'objective', issues);
  const raced = raw.objectives.findIndex((x) => x.racing !== undefined);
  raw.objectives.forEach((obj, i) => {
    if (obj.racing !== undefined && i !== raced) {
      issues.push({ code: 'CONFLICT', path: ['objectives', i, 'racing'], message: `only one objective can be raced, and objectives[${raced}] (${raw.objectives[raced]?.name ?? ''}) already is`, atKey: true });
    }
  });
  raw.objectives.forEach((obj, i) => {
    const ev = obj.evaluator;
    const at: PathSeg[] = ['objectives', i, 'evaluator'];
    if (ev === undefined) issues.push({ code: 'MISSING_KEY', path: at, message: 'is required: an evaluator name or {module, options}' });
    else if (typeof ev === 'string') {
      if (ev === '') issues.push({ code: 'INVALID_VALUE', path: at, message: 'must not be empty' });
    } else if (typeof ev === 'object' && ev !== null && !Array.isArray(ev)) {
      const rec = ev as Record<string, unknown>;
      for (const k of Object.keys(rec)) {
        if (k !== 'module' && k !== 'options') issues.push({ code: 'UNKNOWN_KEY', path: [...at, k], message: 'unknown key; allowed: module, options', atKey: true });
      }
      if (typeof rec.module !== 'string' || rec.module === '') issues.push({ code: rec.module === undefined ? 'MISSING_KEY' : 'WRONG_TYPE', path: [...at, 'module'], message: `must be the path of an evaluator module, got ${describe(rec.module)}` });
      if (rec.options !== undefined && (typeof rec.options !== 'object' || rec.options === null || Array.isArray(rec.options))) {
        issues.push({ code: 'WRONG_TYPE', path: [...at, 'options'], message: `must be a mapping, got ${describe(rec.options)}` });
      }
      if (rec.options !== undefined && obj.options !== undefined) {
        issues.push({ code: 'CONFLICT', path: ['objectives', i, 'options'], message: 'give options either here or under evaluator, not both', atKey: true });
      }
    } else issues.push({ code: 'WRONG_TYPE', path: at, message: `must be an evaluator name or {module, options}, got ${describe(ev)}` });
    if (!Number.isFinite(obj.weight)) issues.push({ code: 'OUT_OF_RANGE', path: ['objectives', i, 'weight'], message: `must be a finite number, got ${obj.weight}` });
  });
  return issues;
}

