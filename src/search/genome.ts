import { EvoError } from '../errors.js';
import type { MergeConfig, MergeDocument, OutputSliceDefinition, InputSliceDefinition } from '../merge/config.js';
import type { ConditionalSetting, ParameterMap, Setting } from '../merge/resolve.js';
import type { MethodId } from '../merge/task.js';
import { dtypeFromMergekit, roundToDType } from '../tensors/dtype.js';
import { assertFitsShape, type Genome, type GenomeShape } from './genome-vector.js';
import { methodGenes, type GeneParam, type MethodGenes } from './method-genes.js';
import { methodTRange, type GeneRange, type SearchSpace } from './space.js';
import { stableHash } from './stable-json.js';

/**
 * Genes ↔ mergekit config (design.md: "a genome decodes to a mergekit config").
 *
 * Layers are cut into groups of `layer_granularity`. Per group: a categorical method gene (when
 * the space lists several methods), a categorical partner (`slerp_model`, when slerp or nearswap
 * is allowed and there are several source models: they move the base toward the chosen one), and
 * per tensor class (each `filters` entry plus the catch-all `*`) the continuous genes: a weight
 * per source model (and for the base, when linear is allowed: linear has no base, so the base is
 * one of its weighted inputs), a density per source model, and a t. The t gene is a fraction
 * x ∈ [0, 1] that each method maps into its own range, min + x·(max − min): slerp into genome.t,
 * nearswap into genome.t_ranges.nearswap (a distance, [0, 0.01] by default), so one gene serves
 * both without squeezing either range. With `embeddings: true`, the pre
 * (embed_tokens) and post (lm_head, final norm) tensors get genes of their own, applied with the
 * method of the first and the last group respectively (mergekit takes pre-weights from the first
 * slice and post-weights from the last, semantics §0.1).
 *
 * With `smooth: true` the continuous genes are knots over depth: knot k sits at the start of
 * group k and knot G at the end of the last group, and group k's slice gets the two-point
 * gradient [knot k, knot k+1]. mergekit interpolates it per slice (t = i/(n−1), semantics §2), so
 * a parameter is piecewise linear over depth; a one-layer group takes knot k+1.
 *
 * The decoded config is ONE document when every group uses the same method (one slice per
 * group), else one named document per method (`stage_<method>`, restricted by slices to its
 * groups) stitched by a final unnamed `passthrough` (semantics §2, config (2)). The passthrough
 * takes its embeddings from the first group's stage and its norm / lm_head from the last's.
 *
 * Decoding repairs what a method cannot take: values are rounded to 6 decimals; density is kept
 * in [1e-6, 1], and for DELLA in [ε + 0.001, 1 − ε − 0.001] (semantics §0.7); linear and
 * multislerp weights that sum to 0 under `normalize` / `normalize_weights` (mergekit would write
 * inf/NaN, §0.8), also once rounded to the space's dtype as the planner sums them, all become the
 * range's largest-magnitude bound (multislerp's sum is over the source models: the base is its
 * tangent origin and carries no weight). In a smooth space so do a knot's weights whose sum has
 * the other sign than that bound, so that no layer between two knots sums to about 0. Genes a group's method does not read are inactive: two
 * genomes that differ only there decode to the same config and share a recipe hash.
 */

/** Where a continuous gene acts: a layer group (constant genes), a knot (smooth), or an embedding class. */
export type GeneDepth = number | 'pre' | 'post';

export interface ContinuousGene {
  readonly kind: 'continuous';
  /** Position in Genome.continuous. */
  readonly index: number;
  /** e.g. `g2.self_attn.weight.m0`, `k3.*.density.m1`, `pre.t` (g: group, k: knot, m: model). */
  readonly name: string;
  readonly param: GeneParam;
  /** Group index (constant genes), knot index (smooth), or 'pre' / 'post'. */
  readonly depth: GeneDepth;
  /** A `genome.filters` substring, or '*' for the catch-all class (and for pre / post). */
  readonly tensorClass: string;
  /** Index into space.models, 'base' (linear's base weight), or null (t). */
  readonly source: number | 'base' | null;
  /**
   * The value gene 0 maps to, in the parameter's units. A t gene's min / max are those of the
   * first t-reading method of the space; another one maps it into its own range (geneRange).
   */
  readonly min: number;
  /** The value gene 1 maps to. */
  readonly max: number;
}

export interface CategoricalGene {
  readonly kind: 'categorical';
  /** Position in Genome.categorical. */
  readonly index: number;
  /** e.g. `g2.method`, `g2.slerp_model`. */
  readonly name: string;
  readonly role: 'method' | 'slerp_model';
  readonly group: number;
  /** Method ids, or model references for slerp_model. */
  readonly choices: readonly string[];
}

/** Layers [start, end) of the base model. */
export interface LayerGroup {
  readonly index: number;
  readonly start: number;
  readonly end: number;
}

export interface GenomeSchema {
  readonly space: SearchSpace;
  readonly numLayers: number;
  readonly groups: readonly LayerGroup[];
  /** Tensor classes of layer genes: genome.filters in order, then '*'. */
  readonly classes: readonly string[];
  readonly continuous: readonly ContinuousGene[];
  readonly categorical: readonly CategoricalGene[];
  readonly shape: GenomeShape;
  /** Per group: index of its method gene, or null when the space has one method. */
  readonly methodGene: readonly (number | null)[];
  /** Per group: index of its slerp partner gene, or null. */
  readonly partnerGene: readonly (number | null)[];
  /** @internal `${param}|${depth}|${class}|${source}` → continuous gene index. */
  readonly lookup: ReadonlyMap<string, number>;
  /** @internal What each method of the space reads and how its values are repaired. */
  readonly methodInfo: ReadonlyMap<MethodId, MethodInfo>;
}

/** A method's genes plus the repairs the decoder applies for it in this space. */
export interface MethodInfo extends MethodGenes {
  /** Density is clamped into [lo, hi] (semantics §0.5, §0.7). */
  readonly densityBounds: readonly [number, number];
  /** Weights summing to 0 are repaired (linear under normalize, multislerp under normalize_weights, §0.8). */
  readonly repairWeights: boolean;
  /** The search range of its `t` (slerp: genome.t, others: genome.t_ranges), or null when it reads none. */
  readonly tRange: GeneRange | null;
}

/** A genome or config the genome cannot handle. */
export class GenomeError extends EvoError {
  constructor(code: 'NOT_REPRESENTABLE' | 'GENOME_SHAPE' | 'NUM_LAYERS', message: string) {
    super(code, message);
    this.name = 'GenomeError';
  }
}

/** The tensor class of tensors that match no filter. */
export const CATCH_ALL = '*';
const DECIMALS = 1e6;

export function geneKey(param: GeneParam, depth: GeneDepth, cls: string, source: number | 'base' | null): string {
  return `${param}|${depth}|${cls}|${source ?? ''}`;
}

function anyMethod(space: SearchSpace, pred: (g: MethodGenes) => boolean): boolean {
  return space.genome.methods.some((m) => pred(methodGenes(m)));
}

/**
 * The genes of a space over a base model of `numLayers` layers (read from its config.json by the
 * caller; space.numLayers, when given, must agree).
 */
export function buildGenomeSchema(space: SearchSpace, numLayers: number): GenomeSchema {
  if (!Number.isInteger(numLayers) || numLayers < 1) throw new GenomeError('NUM_LAYERS', `num_layers must be a positive integer, got ${numLayers}`);
  if (space.numLayers !== null && space.numLayers !== numLayers) {
    throw new GenomeError('NUM_LAYERS', `the space says num_layers: ${space.numLayers} but the base model has ${numLayers} layers`);
  }
  const g = space.genome;
  const groups: LayerGroup[] = [];
  for (let s = 0; s < numLayers; s += g.layerGranularity) groups.push({ index: groups.length, start: s, end: Math.min(numLayers, s + g.layerGranularity) });
  const classes = [...g.filters, CATCH_ALL];

  const categorical: CategoricalGene[] = [];
  const methodGene: (number | null)[] = [];
  const partnerGene: (number | null)[] = [];
  // slerp and nearswap: two-model methods with a t gene and a partner model per group.
  const hasT = anyMethod(space, (m) => m.t);
  const firstT = g.methods.find((m) => methodGenes(m).t);
  const tRange = firstT === undefined ? g.t : methodTRange(g, firstT);
  for (const grp of groups) {
    if (g.methods.length > 1) {
      methodGene.push(categorical.length);
      categorical.push({ kind: 'categorical', index: categorical.length, name: `g${grp.index}.method`, role: 'method', group: grp.index, choices: g.methods });
    } else methodGene.push(null);
    if (hasT && space.models.length > 1) {
      partnerGene.push(categorical.length);
      categorical.push({ kind: 'categorical', index: categorical.length, name: `g${grp.index}.slerp_model`, role: 'slerp_model', group: grp.index, choices: space.models });
    } else partnerGene.push(null);
  }

  const continuous: ContinuousGene[] = [];
  const lookup = new Map<string, number>();
  const hasWeight = anyMethod(space, (m) => m.weight);
  const hasBaseWeight = anyMethod(space, (m) => m.baseWeight);
  const hasDensity = anyMethod(space, (m) => m.density);
  const add = (param: GeneParam, depth: GeneDepth, cls: string, source: number | 'base' | null): void => {
    const range = param === 't' ? tRange : g[param];
    const where = typeof depth === 'number' ? `${g.smooth ? 'k' : 'g'}${depth}.${cls}` : depth;
    const src = source === null ? '' : source === 'base' ? '.base' : `.m${source}`;
    lookup.set(geneKey(param, depth, cls, source), continuous.length);
    continuous.push({ kind: 'continuous', index: continuous.length, name: `${where}.${param}${src}`, param, depth, tensorClass: cls, source, min: range.min, max: range.max });
  };
  const depthGenes = (depth: GeneDepth, cls: string): void => {
    if (hasBaseWeight) add('weight', depth, cls, 'base');
    if (hasWeight) space.models.forEach((_, i) => add('weight', depth, cls, i));
    if (hasDensity) space.models.forEach((_, i) => add('density', depth, cls, i));
    if (hasT) add('t', depth, cls, null);
  };
  const depths = g.smooth ? groups.length + 1 : groups.length;
  for (let d = 0; d < depths; d++) for (const cls of classes) depthGenes(d, cls);
  if (g.embeddings) {
    depthGenes('pre', CATCH_ALL);
    depthGenes('post', CATCH_ALL);
  }
  return {
    space,
    numLayers,
    groups,
    classes,
    continuous,
    categorical,
    shape: { continuous: continuous.length, categorical: categorical.map((c) => c.choices.length) },
    methodGene,
    partnerGene,
    lookup,
    methodInfo: new Map(g.methods.map((m) => [m, methodInfo(space, m)])),
  };
}

function round6(v: number): number {
  const r = Math.round(v * DECIMALS) / DECIMALS;
  return Object.is(r, -0) ? 0 : r;
}

/** The method of each group. */
export function groupMethods(schema: GenomeSchema, genome: Genome): MethodId[] {
  const methods = schema.space.genome.methods;
  return schema.groups.map((grp) => {
    const gi = schema.methodGene[grp.index];
    const m = gi === null || gi === undefined ? methods[0] : methods[genome.categorical[gi] ?? 0];
    if (m === undefined) throw new GenomeError('GENOME_SHAPE', `group ${grp.index}: method index out of range`);
    return m;
  });
}

function groupPartner(schema: GenomeSchema, genome: Genome, group: number): number {
  const gi = schema.partnerGene[group];
  return gi === null || gi === undefined ? 0 : (genome.categorical[gi] ?? 0);
}

/** A fixed parameter of a method: the space's value, else the registry default. */
function fixedParam(space: SearchSpace, genes: MethodGenes, name: string): number | boolean | undefined {
  const v = space.genome.parameters[genes.method]?.[name];
  return v !== undefined ? v : genes.spec.params.find((p) => p.name === name)?.default;
}


function methodInfo(space: SearchSpace, method: MethodId): MethodInfo {
  const genes = methodGenes(method);
  let densityBounds: readonly [number, number] = [1e-6, 1];
  if (genes.dellaWindow) {
    const eps = Number(fixedParam(space, genes, 'epsilon') ?? 0.15);
    densityBounds = [round6(eps + 0.001), round6(1 - eps - 0.001)];
  }
  return {
    ...genes,
    densityBounds,
    repairWeights: genes.weightsSumNonzero && fixedParam(space, genes, genes.normalizeFlag) !== false,
    tRange: genes.t ? methodTRange(space.genome, method) : null,
  };
}

function info(schema: GenomeSchema, method: MethodId): MethodInfo {
  const i = schema.methodInfo.get(method);
  if (!i) throw new GenomeError('GENOME_SHAPE', `method ${method} is not in the space`);
  return i;
}

/** The value of the linear weights' repair: the range bound of largest magnitude. */
function weightRepair(schema: GenomeSchema): number {
  const r = schema.space.genome.weight;
  return Math.abs(r.max) >= Math.abs(r.min) ? r.max : r.min;
}

interface Decoder {
  readonly schema: GenomeSchema;
  readonly genome: Genome;
}

/** The range a gene's fraction maps into in a group of `method`: t genes take the method's own t range. */
export function geneRange(schema: GenomeSchema, gene: ContinuousGene, method: MethodId): GeneRange {
  const r = gene.param === 't' ? schema.methodInfo.get(method)?.tRange : undefined;
  return r ?? { min: gene.min, max: gene.max };
}

/** The method whose value a gene holds at its depth: a knot's group after it (the last knot: before it). */
export function geneMethod(schema: GenomeSchema, methods: readonly MethodId[], gene: ContinuousGene): MethodId | undefined {
  const last = schema.groups.length - 1;
  if (gene.depth === 'pre') return methods[0];
  if (gene.depth === 'post') return methods[last];
  return methods[Math.min(gene.depth, last)];
}

/** The raw (unrepaired) value of a gene in parameter units, as `method` reads it, rounded. */
function rawValue(d: Decoder, method: MethodId, param: GeneParam, depth: GeneDepth, cls: string, source: number | 'base' | null): number {
  const i = d.schema.lookup.get(geneKey(param, depth, cls, source));
  const gene = i === undefined ? undefined : d.schema.continuous[i];
  if (i === undefined || !gene) throw new GenomeError('GENOME_SHAPE', `no gene for ${param} at ${depth} ${cls} ${source}`);
  const x = d.genome.continuous[i] ?? 0;
  const r = geneRange(d.schema, gene, method);
  return round6(r.min + x * (r.max - r.min));
}

/** Repaired values of `param` for every source of a method at one depth and class (aligned with sources). */
function depthValues(d: Decoder, method: MethodId, param: GeneParam, depth: GeneDepth, cls: string, sources: readonly (number | 'base' | null)[]): number[] {
  const vals = sources.map((s) => rawValue(d, method, param, depth, cls, s));
  const mi = info(d.schema, method);
  if (param === 'density') {
    const [lo, hi] = mi.densityBounds;
    return vals.map((v) => Math.min(hi, Math.max(lo, v)));
  }
  if (param === 'weight' && mi.repairWeights) {
    const sum = vals.reduce((a, b) => a + b, 0);
    // The planner sums the weights rounded to the compute dtype and refuses an exact 0.
    const dtype = dtypeFromMergekit(d.schema.space.dtype) ?? 'F32';
    const rounded = vals.reduce((a, b) => a + roundToDType(dtype, b), 0);
    const repair = weightRepair(d.schema);
    // Smooth knots are interpolated over the layers between them: two knots whose sums have
    // opposite signs would pass through a sum of about 0 there. Every knot keeps the repair's sign.
    const knot = d.schema.space.genome.smooth && typeof depth === 'number';
    if (Math.abs(sum) < 1e-6 || rounded === 0 || (knot && sum * repair < 0)) return vals.map(() => repair);
  }
  return vals;
}

/**
 * The setting of `param` for every source in one group's slice: per class (plus the embedding
 * entries in the first / last group), constant or a two-point gradient.
 */
function groupSettings(d: Decoder, method: MethodId, param: GeneParam, group: number, sources: readonly (number | 'base' | null)[]): Setting[] {
  const { schema } = d;
  const g = schema.space.genome;
  const smooth = g.smooth;
  const perClass = schema.classes.map((cls) => {
    if (!smooth) return depthValues(d, method, param, group, cls, sources);
    const a = depthValues(d, method, param, group, cls, sources);
    const b = depthValues(d, method, param, group + 1, cls, sources);
    return a.map((v, i) => [v, b[i] ?? v]);
  });
  const pre = g.embeddings && group === 0 ? depthValues(d, method, param, 'pre', CATCH_ALL, sources) : null;
  const post = g.embeddings && group === schema.groups.length - 1 ? depthValues(d, method, param, 'post', CATCH_ALL, sources) : null;
  return sources.map((_, si) => {
    const entries: ConditionalSetting[] = [];
    if (pre) for (const f of g.embeddingFilters.pre) entries.push({ filter: f, value: pre[si] ?? 0 });
    if (post) for (const f of g.embeddingFilters.post) entries.push({ filter: f, value: post[si] ?? 0 });
    schema.classes.forEach((cls, ci) => {
      const v = perClass[ci]?.[si] ?? 0;
      entries.push(cls === CATCH_ALL ? { value: v } : { filter: cls, value: v });
    });
    const only = entries[0];
    return entries.length === 1 && only ? only.value : entries;
  });
}

function setting(list: readonly Setting[], i: number): Setting {
  const s = list[i];
  if (s === undefined) throw new GenomeError('GENOME_SHAPE', `missing setting ${i}`);
  return s;
}

/** The slice of one group for its method. */
function groupSlice(d: Decoder, method: MethodId, grp: LayerGroup): { slice: OutputSliceDefinition; usesBase: boolean } {
  const { space } = d.schema;
  const mg = info(d.schema, method);
  // A fresh array per source: shared ones would be written as YAML anchors.
  const range = (): [number, number] => [grp.start, grp.end];
  if (mg.t) {
    const partner = space.models[groupPartner(d.schema, d.genome, grp.index)] ?? space.models[0] ?? '';
    const t = setting(groupSettings(d, method, 't', grp.index, [null]), 0);
    return {
      slice: { sources: [{ model: space.baseModel, layer_range: range() }, { model: partner, layer_range: range() }], parameters: { t } },
      usesBase: true,
    };
  }
  const modelIdx = space.models.map((_, i) => i);
  const weights = mg.weight ? groupSettings(d, method, 'weight', grp.index, mg.baseWeight ? ['base', ...modelIdx] : modelIdx) : null;
  const densities = mg.density ? groupSettings(d, method, 'density', grp.index, modelIdx) : null;
  const off = mg.baseWeight ? 1 : 0;
  const base: InputSliceDefinition = weights && mg.baseWeight
    ? { model: space.baseModel, layer_range: range(), parameters: { weight: setting(weights, 0) } }
    : { model: space.baseModel, layer_range: range() };
  const others = space.models.map((model, i): InputSliceDefinition => {
    const parameters: Record<string, Setting> = {};
    if (weights) parameters.weight = setting(weights, i + off);
    if (densities) parameters.density = setting(densities, i);
    return Object.keys(parameters).length > 0 ? { model, layer_range: range(), parameters } : { model, layer_range: range() };
  });
  return { slice: { sources: [base, ...others] }, usesBase: mg.usesBase };
}

export function documentHead(space: SearchSpace, method: MethodId, usesBase: boolean): Omit<MergeDocument, 'slices'> {
  const fixed = space.genome.parameters[method];
  return {
    merge_method: method,
    ...(usesBase ? { base_model: space.baseModel } : {}),
    ...(fixed && Object.keys(fixed).length > 0 ? { parameters: fixed as ParameterMap } : {}),
    dtype: space.dtype,
    ...(space.outDtype !== null ? { out_dtype: space.outDtype } : {}),
    ...(space.tokenizerSource !== null ? { tokenizer_source: space.tokenizerSource } : {}),
  };
}

/** Name of the intermediate document of a method in a multi-stage recipe. */
export function stageName(method: MethodId): string {
  return `stage_${method}`;
}

/** Decodes a genome into a mergekit config (see the file comment for the encoding). */
export function decodeGenome(schema: GenomeSchema, genome: Genome): MergeConfig {
  try {
    assertFitsShape(genome, schema.shape);
  } catch (e) {
    throw new GenomeError('GENOME_SHAPE', e instanceof Error ? e.message : String(e));
  }
  const d: Decoder = { schema, genome };
  const space = schema.space;
  const methods = groupMethods(schema, genome);
  const slices = schema.groups.map((grp) => groupSlice(d, methods[grp.index] ?? 'linear', grp));
  const order = [...new Set(methods)];
  if (order.length === 1) {
    const m = order[0] ?? 'linear';
    return { documents: [{ ...documentHead(space, m, slices[0]?.usesBase ?? false), slices: slices.map((s) => s.slice) }] };
  }
  const documents: MergeDocument[] = [];
  /** Per group: its stage and the stage's own layer range for it. */
  const stitched: InputSliceDefinition[] = [];
  const stageLayers = new Map<MethodId, number>();
  for (const m of order) {
    const mine = schema.groups.filter((grp) => methods[grp.index] === m);
    const first = mine[0];
    documents.push({
      name: stageName(m),
      ...documentHead(space, m, first ? (slices[first.index]?.usesBase ?? false) : false),
      slices: mine.map((grp) => slices[grp.index]?.slice ?? { sources: [] }),
    });
  }
  for (const grp of schema.groups) {
    const m = methods[grp.index] ?? 'linear';
    const at = stageLayers.get(m) ?? 0;
    const n = grp.end - grp.start;
    stitched.push({ model: stageName(m), layer_range: [at, at + n] });
    stageLayers.set(m, at + n);
  }
  documents.push({ merge_method: 'passthrough', slices: stitched.map((s) => ({ sources: [s] })), dtype: space.dtype, ...(space.outDtype !== null ? { out_dtype: space.outDtype } : {}) });
  return { documents };
}

/**
 * The canonical identity of a recipe: hex SHA-256 of the stable JSON of its documents. Genomes
 * that decode to the same config share it, so none is built and evaluated twice.
 */
export function recipeHash(config: MergeConfig): string {
  return stableHash(config.documents);
}

/** recipeHash(decodeGenome(schema, genome)). */
export function genomeRecipeHash(schema: GenomeSchema, genome: Genome): string {
  return recipeHash(decodeGenome(schema, genome));
}

/**
 * Which continuous genes the decoder reads for this genome (their method reads the parameter,
 * at that depth). Inactive genes have no effect on the decoded config.
 */
export function activeContinuousGenes(schema: GenomeSchema, genome: Genome): boolean[] {
  const methods = groupMethods(schema, genome);
  const reads = (m: MethodId | undefined, gene: ContinuousGene): boolean => {
    if (m === undefined) return false;
    const mg = info(schema, m);
    if (gene.param === 't') return mg.t;
    if (gene.param === 'density') return mg.density;
    return mg.weight && (gene.source !== 'base' || mg.baseWeight);
  };
  const last = schema.groups.length - 1;
  return schema.continuous.map((gene) => {
    if (gene.depth === 'pre') return reads(methods[0], gene);
    if (gene.depth === 'post') return reads(methods[last], gene);
    if (!schema.space.genome.smooth) return reads(methods[gene.depth], gene);
    return reads(methods[gene.depth - 1], gene) || reads(methods[gene.depth], gene);
  });
}

/** Whether each categorical gene is read (a partner only matters in a slerp or nearswap group). */
export function activeCategoricalGenes(schema: GenomeSchema, genome: Genome): boolean[] {
  const methods = groupMethods(schema, genome);
  return schema.categorical.map((gene) => gene.role === 'method' || info(schema, methods[gene.group] ?? 'linear').t);
}
