import type { InputSliceDefinition, MergeConfig, MergeDocument, OutputSliceDefinition } from '../merge/config.js';
import type { Setting } from '../merge/resolve.js';
import type { MethodId } from '../merge/task.js';
import { clamp01, type Genome } from './genome-vector.js';
import { CATCH_ALL, decodeGenome, documentHead, geneRange, GenomeError, stageName, type GenomeSchema } from './genome.js';
import { methodGenes, type GeneParam } from './method-genes.js';
import { stableStringify } from './stable-json.js';

/**
 * The inverse of decodeGenome: the genome a mergekit config comes from, when there is one. It
 * reads the config the way mergekit would (filters first-match, a gradient's value at each end
 * of a slice), so an equivalent config written by hand (a plain `weight: 0.5` where the decoder
 * writes a filter list) is accepted too. The result is checked by decoding it again: every value
 * must come back (up to the decoder's 6-decimal rounding), else NOT_REPRESENTABLE.
 */

/** Values read from a config: per group its method and slerp partner, and every parameter value. */
interface RecipeValues {
  readonly methods: MethodId[];
  /** Per group: the partner's model index, or null when the group is not slerp / nearswap. */
  readonly partners: (number | null)[];
  /** `${param}|${where}|${class}|${source}` → value; where is g<k> (constant), g<k>@0 / g<k>@1 (smooth), pre, post. */
  readonly values: Map<string, number>;
}

function vkey(param: GeneParam, where: string, cls: string, source: number | 'base' | null): string {
  return `${param}|${where}|${cls}|${source ?? ''}`;
}

function fail(message: string): never {
  throw new GenomeError('NOT_REPRESENTABLE', message);
}

function sameRange(s: InputSliceDefinition, start: number, end: number): boolean {
  return s.layer_range[0] === start && s.layer_range[1] === end;
}

/** The slice of every group with its method, following the stage structure when there is one. */
function groupSlices(schema: GenomeSchema, config: MergeConfig): { method: MethodId; slice: OutputSliceDefinition }[] {
  const docs = config.documents;
  const checkHead = (doc: MergeDocument): MethodId => {
    const m = doc.merge_method;
    if (!schema.space.genome.methods.includes(m)) fail(`merge_method ${m} is not in the space's methods (${schema.space.genome.methods.join(', ')})`);
    const { slices: _slices, name: _name, ...head } = doc;
    const want = documentHead(schema.space, m, methodGenes(m).usesBase);
    if (stableStringify(head) !== stableStringify(want)) {
      fail(`document ${doc.name ?? '(final)'}: its keys outside slices differ from the space's (${stableStringify(want)})`);
    }
    if (!doc.slices) fail(`document ${doc.name ?? '(final)'}: a genome decodes to slices, not models or modules`);
    return m;
  };
  const groups = schema.groups;
  if (docs.length === 1) {
    const doc = docs[0];
    if (!doc) fail('the config has no document');
    const m = checkHead(doc);
    const slices = doc.slices ?? [];
    if (slices.length !== groups.length) fail(`expected ${groups.length} slices (one per layer group), got ${slices.length}`);
    return slices.map((slice) => ({ method: m, slice }));
  }
  const finals = docs.filter((d) => d.name === undefined);
  const final = finals[0];
  if (finals.length !== 1 || !final) fail('a multi-document recipe needs exactly one unnamed final document');
  if (final.merge_method !== 'passthrough' || !final.slices) fail('the final document must be a passthrough over slices');
  if (final.slices.length !== groups.length) fail(`the final passthrough must have ${groups.length} slices (one per layer group), got ${final.slices.length}`);
  const stages = new Map(docs.filter((d) => d.name !== undefined).map((d) => [d.name ?? '', d]));
  const used = new Set<string>();
  const out = groups.map((grp, gi) => {
    const src = final.slices?.[gi]?.sources;
    const only = src?.[0];
    if (!src || src.length !== 1 || !only) fail(`final slice ${gi} must have exactly one source`);
    const stage = stages.get(only.model);
    if (!stage) fail(`final slice ${gi} names ${only.model}, which is not a stage of this recipe`);
    const m = checkHead(stage);
    if (stage.name !== stageName(m)) fail(`stage ${stage.name} must be called ${stageName(m)}`);
    used.add(only.model);
    let at = 0;
    for (const slice of stage.slices ?? []) {
      const n = (slice.sources[0]?.layer_range[1] ?? 0) - (slice.sources[0]?.layer_range[0] ?? 0);
      if (at === only.layer_range[0] && n === only.layer_range[1] - only.layer_range[0] && slice.sources.every((s) => sameRange(s, grp.start, grp.end))) {
        return { method: m, slice };
      }
      at += n;
    }
    return fail(`final slice ${gi}: ${only.model} layers [${only.layer_range.join(', ')}) are not its slice of layers [${grp.start}, ${grp.end})`);
  });
  const { slices: _s, ...finalHead } = final;
  const wantFinal = { merge_method: 'passthrough', dtype: schema.space.dtype, ...(schema.space.outDtype !== null ? { out_dtype: schema.space.outDtype } : {}) };
  if (stableStringify(finalHead) !== stableStringify(wantFinal)) fail(`the final passthrough's keys outside slices differ from ${stableStringify(wantFinal)}`);
  if (used.size !== stages.size) fail(`stages ${[...stages.keys()].filter((k) => !used.has(k)).join(', ')} are not used by the final document`);
  return out;
}

/** mergekit's first-match filter selection for a tensor whose name is `name` ('' matches only unfiltered entries). */
function select(setting: Setting | undefined, name: string, allowed: ReadonlySet<string>, what: string): number | readonly number[] | undefined {
  if (setting === undefined) return undefined;
  if (typeof setting === 'number') return setting;
  if (typeof setting === 'boolean') return fail(`${what}: a boolean is not a value the genome can hold`);
  const list = setting as readonly unknown[];
  if (list.every((v) => typeof v === 'number')) return list as readonly number[];
  let found: number | readonly number[] | undefined;
  for (const entry of list) {
    if (typeof entry !== 'object' || entry === null) fail(`${what}: unsupported setting`);
    const e = entry as { filter?: string; value: unknown };
    if (e.filter !== undefined && e.filter !== '*' && !allowed.has(e.filter)) fail(`${what}: filter ${JSON.stringify(e.filter)} is not a class of this space`);
    const matches = e.filter === undefined || e.filter === '*' || (name !== '' && name.includes(e.filter));
    if (found === undefined && matches) {
      if (typeof e.value === 'number') found = e.value;
      else if (Array.isArray(e.value) && e.value.every((v) => typeof v === 'number')) found = e.value as number[];
      else fail(`${what}: unsupported value`);
    }
  }
  return found;
}

/** A gradient's [start, end] when it is linear over the slice (constant counts), else undefined. */
function endpoints(v: number | readonly number[]): [number, number] | undefined {
  if (typeof v === 'number') return [v, v];
  const a = v[0];
  const b = v[v.length - 1];
  if (a === undefined || b === undefined) return undefined;
  const m = v.length;
  for (let i = 0; i < m; i++) {
    const want = m === 1 ? a : a + ((b - a) * i) / (m - 1);
    if (Math.abs((v[i] ?? Number.NaN) - want) > 1e-9) return undefined;
  }
  return [a, b];
}

function readValues(schema: GenomeSchema, config: MergeConfig): RecipeValues {
  const space = schema.space;
  const g = space.genome;
  const values = new Map<string, number>();
  const methods: MethodId[] = [];
  const partners: (number | null)[] = [];
  const last = schema.groups.length - 1;
  groupSlices(schema, config).forEach(({ method, slice }, gi) => {
    const grp = schema.groups[gi];
    if (!grp) return;
    methods.push(method);
    const mg = methodGenes(method);
    const here = `layers [${grp.start}, ${grp.end})`;
    if (slice.base_model !== undefined || slice.residual_weight !== undefined) fail(`${here}: slice-level base_model / residual_weight are not genes`);
    if (!slice.sources.every((s) => sameRange(s, grp.start, grp.end))) fail(`${here}: every source must cover exactly the group's layers`);
    const allowed = new Set<string>([...g.filters, ...(g.embeddings && gi === 0 ? g.embeddingFilters.pre : []), ...(g.embeddings && gi === last ? g.embeddingFilters.post : [])]);
    const record = (param: GeneParam, s: Setting | undefined, source: number | 'base' | null): void => {
      const what = `${here} ${param}${source === null ? '' : ` of ${source === 'base' ? space.baseModel : space.models[source]}`}`;
      if (s === undefined) fail(`${what} is not set`);
      for (const cls of schema.classes) {
        const v = select(s, cls === CATCH_ALL ? '' : cls, allowed, what);
        if (v === undefined) fail(`${what}: no value for class ${cls}`);
        if (g.smooth) {
          const ends = endpoints(v);
          if (!ends) fail(`${what}: class ${cls} is not linear over the slice`);
          values.set(vkey(param, `g${gi}@0`, cls, source), ends[0]);
          values.set(vkey(param, `g${gi}@1`, cls, source), ends[1]);
        } else {
          const ends = endpoints(v);
          if (!ends || ends[0] !== ends[1]) fail(`${what}: class ${cls} is a gradient, but the space is not smooth`);
          values.set(vkey(param, `g${gi}`, cls, source), ends[0]);
        }
      }
      for (const [depth, filters, on] of [['pre', g.embeddingFilters.pre, gi === 0], ['post', g.embeddingFilters.post, gi === last]] as const) {
        if (!g.embeddings || !on) continue;
        const v = select(s, filters[0] ?? '', allowed, what);
        if (v === undefined) fail(`${what}: no value for ${depth}`);
        const at0 = typeof v === 'number' ? v : v[0];
        if (at0 === undefined) fail(`${what}: empty gradient`);
        values.set(vkey(param, depth, CATCH_ALL, source), at0);
      }
    };
    const base = slice.sources[0];
    if (!base || base.model !== space.baseModel) fail(`${here}: the first source must be the base model ${space.baseModel}`);
    if (mg.t) {
      const other = slice.sources[1];
      const partner = other ? space.models.indexOf(other.model) : -1;
      if (slice.sources.length !== 2 || !other || partner < 0) fail(`${here}: ${method} needs the base and one of the space's models`);
      if (base.parameters !== undefined || other.parameters !== undefined) fail(`${here}: ${method} sources take no parameters`);
      if (Object.keys(slice.parameters ?? {}).join() !== 't') fail(`${here}: ${method} slices set exactly t`);
      partners.push(space.models.length > 1 ? partner : null);
      record('t', slice.parameters?.t, null);
      return;
    }
    partners.push(null);
    if (slice.parameters !== undefined) fail(`${here}: ${method} slices take no slice-level parameters`);
    if (slice.sources.length !== space.models.length + 1) fail(`${here}: expected the base and the ${space.models.length} models`);
    const want = (withWeight: boolean, withDensity: boolean): string => [withDensity ? 'density' : '', withWeight ? 'weight' : ''].filter(Boolean).join();
    const keysOf = (s: InputSliceDefinition): string => Object.keys(s.parameters ?? {}).sort().join();
    if (keysOf(base) !== want(mg.baseWeight, false)) fail(`${here}: the base source must set exactly: ${want(mg.baseWeight, false) || 'nothing'}`);
    if (mg.baseWeight) record('weight', base.parameters?.weight, 'base');
    space.models.forEach((model, i) => {
      const s = slice.sources[i + 1];
      if (!s || s.model !== model) fail(`${here}: source ${i + 1} must be ${model}`);
      if (keysOf(s) !== want(mg.weight, mg.density)) fail(`${here}: ${model} must set exactly: ${want(mg.weight, mg.density) || 'nothing'}`);
      if (mg.weight) record('weight', s.parameters?.weight, i);
      if (mg.density) record('density', s.parameters?.density, i);
    });
  });
  return { methods, partners, values };
}

/**
 * The gene value in [0, 1] that decodes to `v` (the inverse of min + x·(max − min)), or undefined
 * when v lies outside the search range; 0.5 for a zero-width range that holds v.
 */
export function geneFraction(v: number, min: number, max: number): number | undefined {
  if (max === min) return Math.abs(v - min) > 1e-6 ? undefined : 0.5;
  const x = (v - min) / (max - min);
  return x < -1e-9 || x > 1 + 1e-9 ? undefined : clamp01(x);
}

function normalize(v: number, min: number, max: number, name: string): number {
  const x = geneFraction(v, min, max);
  if (x !== undefined) return x;
  return fail(max === min ? `${name} = ${v} but its search range is exactly ${min}` : `${name} = ${v} is outside its search range [${min}, ${max}]`);
}

/**
 * The genome that decodes to `config` (see the file comment), with inactive genes at 0.5 and
 * unused categorical genes at 0. Throws GenomeError NOT_REPRESENTABLE naming what does not fit.
 */
export function encodeConfig(schema: GenomeSchema, config: MergeConfig): Genome {
  const read = readValues(schema, config);
  const continuous = schema.continuous.map(() => 0.5);
  const categorical = schema.categorical.map(() => 0);
  schema.groups.forEach((grp) => {
    const mi = schema.methodGene[grp.index];
    if (mi !== null && mi !== undefined) categorical[mi] = schema.space.genome.methods.indexOf(read.methods[grp.index] ?? 'linear');
    const pi = schema.partnerGene[grp.index];
    const partner = read.partners[grp.index];
    if (pi !== null && pi !== undefined && partner !== null && partner !== undefined) categorical[pi] = partner;
  });
  const smooth = schema.space.genome.smooth;
  for (const gene of schema.continuous) {
    const k = (where: string): string => vkey(gene.param, where, gene.tensorClass, gene.source);
    // Each value with the group it was read from: a t gene maps into that group's method's range.
    const last = schema.groups.length - 1;
    let candidates: [number | undefined, number][];
    if (typeof gene.depth !== 'number') candidates = [[read.values.get(k(gene.depth)), gene.depth === 'pre' ? 0 : last]];
    else if (!smooth) candidates = [[read.values.get(k(`g${gene.depth}`)), gene.depth]];
    else {
      // A knot is shared by the group before and after it; prefer the side whose method does not
      // repair this parameter (its value is the gene's own). The final check catches conflicts.
      const before = read.values.get(k(`g${gene.depth - 1}@1`));
      const after = read.values.get(k(`g${gene.depth}@0`));
      const repairs = (gi: number): boolean => {
        const m = read.methods[gi];
        if (m === undefined) return true;
        const mg = methodGenes(m);
        return gene.param === 'density' ? mg.dellaWindow : gene.param === 'weight' && mg.weightsSumNonzero;
      };
      const pairs: [number | undefined, number][] = [[before, gene.depth - 1], [after, gene.depth]];
      candidates = repairs(gene.depth) ? pairs : [pairs[1] ?? [undefined, 0], pairs[0] ?? [undefined, 0]];
    }
    const found = candidates.find((c) => c[0] !== undefined);
    const method = found ? read.methods[found[1]] : undefined;
    if (found?.[0] !== undefined && method !== undefined) {
      const r = geneRange(schema, gene, method);
      continuous[gene.index] = normalize(found[0], r.min, r.max, gene.name);
    }
  }
  const genome: Genome = { continuous, categorical };
  const back = readValues(schema, decodeGenome(schema, genome));
  const differs = (): string | undefined => {
    for (let i = 0; i < schema.groups.length; i++) {
      if (back.methods[i] !== read.methods[i]) return `group ${i} method`;
      if (back.partners[i] !== read.partners[i]) return `group ${i} slerp / nearswap model`;
    }
    for (const [key, v] of read.values) {
      const w = back.values.get(key);
      if (w === undefined || Math.abs(w - v) > 1e-6) return `${key.split('|').join(' ')} (config ${v}, genome gives ${w ?? 'nothing'})`;
    }
    return undefined;
  };
  const diff = differs();
  if (diff !== undefined) fail(`no genome decodes to this config: ${diff}`);
  return genome;
}
