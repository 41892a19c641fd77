import { readFile } from 'node:fs/promises';
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { resolveRacingOptions, type ResolvedRacingOptions } from '../eval/racing.js';
import type { MethodId } from '../merge/task.js';
import type { MergekitDType } from '../tensors/dtype.js';
import { geneParamSpec, methodGenes, type GeneParam } from './method-genes.js';
import { semanticIssues } from './space-checks.js';
import { SpaceError, type SpaceIssue } from './space-issue.js';
import { describe, pathString, SCHEMA, zodIssues, type InitialKind, type PathSeg, type RawSpace } from './space-schema.js';
import { stableHash } from './stable-json.js';

/**
 * The search space: what `evo search space.yaml` explores. Parsing is pure (text in, typed
 * SearchSpace out); the number of layers comes from the base model's config.json at run time and
 * is an input of genome construction (genome.ts), not of this file. Relative model and module
 * paths are kept as written; the runner resolves them against the space file's folder.
 */

/** A closed search interval of a continuous gene, in the parameter's own units. */
export interface GeneRange {
  readonly min: number;
  readonly max: number;
}

export interface GenomeOptions {
  /** Merge methods a layer group may use (a categorical gene per group when more than one). */
  readonly methods: readonly MethodId[];
  /** Layers per group; the last group may be shorter. Default: 4. */
  readonly layerGranularity: number;
  /**
   * Tensor classes with genes of their own, as mergekit filter substrings (first match wins);
   * tensors matching none share a catch-all class. Default: [] (one class).
   */
  readonly filters: readonly string[];
  /** Genes for the embedding (pre) and final norm / lm_head (post) tensors too. Default: false. */
  readonly embeddings: boolean;
  /**
   * Filter substrings of the pre and post tensors. Default: pre [embed_tokens], post [lm_head,
   * model.norm] (Llama, Mistral, Qwen, Gemma naming).
   */
  readonly embeddingFilters: { readonly pre: readonly string[]; readonly post: readonly string[] };
  /** Search range of every `weight` gene. Default: the registry's search range, [0, 1]. */
  readonly weight: GeneRange;
  /** Search range of every `density` gene. Default: the registry's search range, [0.1, 1]. */
  readonly density: GeneRange;
  /** Search range of slerp's `t`. Default: [0, 1]. */
  readonly t: GeneRange;
  /**
   * Search ranges of the `t` of the other methods that read one (nearswap, whose t is a distance,
   * searched in [0, 0.01] by default): `t_ranges: {nearswap: {min, max}}` in the file. Present
   * only when the space lists such a method, so spaces written before keep their hash.
   */
  readonly tRanges?: Readonly<Partial<Record<MethodId, GeneRange>>>;
  /**
   * Genes are the knots of piecewise-linear gradients over depth (one per group boundary), so
   * each group's slice gets a two-point gradient; false: one constant value per group. Default: false.
   */
  readonly smooth: boolean;
  /** Fixed (not searched) parameters per method, written to that method's document. Default: {}. */
  readonly parameters: Readonly<Partial<Record<MethodId, Readonly<Record<string, number | boolean>>>>>;
}

export type EvaluatorRef = { readonly kind: 'builtin'; readonly name: string } | { readonly kind: 'module'; readonly module: string };

export interface ObjectiveSpec {
  /** Unique name, used in reports and the run store. */
  readonly name: string;
  readonly evaluator: EvaluatorRef;
  /** Items scored per evaluation, or null for the evaluator's default. */
  readonly limit: number | null;
  /** Higher is better. Default: true. Optimizers always maximize; the runner negates otherwise. */
  readonly maximize: boolean;
  /** Weight of this objective when ga, cmaes or random scalarize (nsga2 ignores it). Default: 1. */
  readonly weight: number;
  /** Passed to the evaluator as is. Default: {}. */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * Successive halving of this objective inside each generation (`racing:` in the file; at most
   * one objective). Absent when the file has no `racing:`, so spaces written before racing keep
   * their hash and their runs resume.
   */
  readonly racing?: ResolvedRacingOptions;
}

export type OptimizerKind = 'ga' | 'nsga2' | 'cmaes' | 'random';

export interface OptimizerConfig {
  /** Default: ga. */
  readonly kind: OptimizerKind;
  /** Seed of the optimizer's random streams. Default: 0. */
  readonly seed: number;
  /** Genomes per generation; null: 16, and for cmaes 4 + ⌊3 ln n⌋ with n continuous genes. */
  readonly population: number | null;
  /** Generations to run. Default: 20. */
  readonly generations: number;
  /** Stop after this many evaluations whatever the generation, or null for no cap. */
  readonly maxEvaluations: number | null;
  /** ga: best genomes carried unchanged into the next generation. Default: 2. */
  readonly elitism: number;
  /** ga: contestants per tournament. Default: 3. */
  readonly tournamentSize: number;
  /** ga, nsga2: probability that two parents are crossed. Default: 0.9. */
  readonly crossoverRate: number;
  /** ga, nsga2: per-gene mutation probability of continuous genes; null: 1 / (continuous genes). */
  readonly mutationRate: number | null;
  /** ga, nsga2: per-gene resampling probability of categorical genes; null: 1 / (categorical genes). */
  readonly categoricalMutationRate: number | null;
  /** ga, nsga2: SBX distribution index (larger: children nearer their parents). Default: 15. */
  readonly sbxEta: number;
  /** ga, nsga2: polynomial mutation distribution index. Default: 20. */
  readonly mutationEta: number;
  /** cmaes: initial step size in normalized gene units (every gene spans [0, 1]). Default: 0.3. */
  readonly sigma0: number;
  /** cmaes: the method used for every group (categorical genes are frozen). Default: genome.methods[0]. */
  readonly method: MethodId | null;
  /** Genomes asked before any random one: each source alone, all sources at weight 1 (initial-genomes.ts). Default: none. */
  readonly initial: readonly InitialKind[];
}

export interface SearchSpace {
  readonly name: string;
  readonly description: string | null;
  readonly baseModel: string;
  readonly models: readonly string[];
  /** Layers of the base model when the file states it, else null (read from config.json at run time). */
  readonly numLayers: number | null;
  readonly genome: GenomeOptions;
  readonly objectives: readonly ObjectiveSpec[];
  readonly optimizer: OptimizerConfig;
  /** mergekit `dtype:` of every document (the compute dtype). Default: bfloat16, as mergekit-evolve. */
  readonly dtype: MergekitDType;
  readonly outDtype: MergekitDType | null;
  readonly tokenizerSource: string | null;
  /** Seed of the DARE / DELLA masks of every candidate merge. Default: 0. */
  readonly mergeSeed: number;
}

function searchRange(p: GeneParam, fallback: readonly [number, number], owner: string = p === 't' ? 'slerp' : p === 'density' ? 'ties' : 'linear'): GeneRange {
  const r = geneParamSpec(owner, p)?.searchRange ?? fallback;
  return { min: r[0], max: r[1] };
}

/** A t-reading method's own t range (not slerp's): the given one, else the registry's searchRange. */
function ownTRange(given: Readonly<Partial<Record<string, GeneRange>>> | undefined, method: MethodId): GeneRange {
  return given?.[method] ?? searchRange('t', [0, 1], method);
}

/**
 * The search range of a t-reading method's t: genome.t for slerp; for the others genome.tRanges'
 * entry, else the registry's (a space built in code may leave tRanges out).
 */
export function methodTRange(genome: Pick<GenomeOptions, 't' | 'tRanges'>, method: MethodId): GeneRange {
  return method === 'slerp' ? genome.t : ownTRange(genome.tRanges, method);
}

/** The t range of every listed t-reading method besides slerp: the file's, else the registry's. */
function tRanges(methods: readonly MethodId[], given: Readonly<Record<string, GeneRange>> | undefined): GenomeOptions['tRanges'] {
  const own = methods.filter((m) => m !== 'slerp' && methodGenes(m).t);
  if (own.length === 0) return undefined;
  return Object.fromEntries(own.map((m) => [m, ownTRange(given, m)]));
}

function toSpace(raw: RawSpace): SearchSpace {
  const g = raw.genome;
  const o = raw.optimizer;
  const ranges = tRanges(g.methods as MethodId[], g.t_ranges); // methods checked by semanticIssues
  return {
    name: raw.name,
    description: raw.description ?? null,
    baseModel: raw.base_model,
    models: raw.models,
    numLayers: raw.num_layers ?? null,
    genome: {
      methods: g.methods as MethodId[], // checked by semanticIssues
      layerGranularity: g.layer_granularity,
      filters: g.filters,
      embeddings: g.embeddings,
      embeddingFilters: g.embedding_filters,
      weight: g.weight ?? searchRange('weight', [0, 1]),
      density: g.density ?? searchRange('density', [0.1, 1]),
      t: g.t ?? searchRange('t', [0, 1]),
      ...(ranges !== undefined ? { tRanges: ranges } : {}),
      smooth: g.smooth,
      parameters: g.parameters as GenomeOptions['parameters'],
    },
    objectives: raw.objectives.map((x) => {
      const ev = x.evaluator;
      const rec = typeof ev === 'object' && ev !== null ? (ev as { module: string; options?: Record<string, unknown> }) : undefined;
      return {
        name: x.name,
        evaluator: rec ? { kind: 'module', module: rec.module } : { kind: 'builtin', name: String(ev) },
        limit: x.limit ?? null,
        maximize: x.maximize,
        weight: x.weight,
        options: rec?.options ?? x.options ?? {},
        ...(x.racing !== undefined
          ? {
              racing: resolveRacingOptions({
                ...(x.racing.eta !== undefined ? { eta: x.racing.eta } : {}),
                ...(x.racing.rule !== undefined ? { rule: x.racing.rule } : {}),
                ...(x.racing.min_first_rung_items !== undefined ? { minFirstRungItems: x.racing.min_first_rung_items } : {}),
                ...(x.racing.min_survivors !== undefined ? { minSurvivors: x.racing.min_survivors } : {}),
                ...(x.racing.confidence !== undefined ? { confidence: x.racing.confidence } : {}),
              }),
            }
          : {}),
      };
    }),
    optimizer: {
      kind: o.kind,
      seed: o.seed,
      population: o.population ?? null,
      generations: o.generations,
      maxEvaluations: o.max_evaluations ?? null,
      elitism: o.elitism,
      tournamentSize: o.tournament_size,
      crossoverRate: o.crossover_rate,
      mutationRate: o.mutation_rate ?? null,
      categoricalMutationRate: o.categorical_mutation_rate ?? null,
      sbxEta: o.sbx_eta,
      mutationEta: o.mutation_eta,
      sigma0: o.sigma0,
      method: (o.method as MethodId | undefined) ?? null,
      initial: o.initial,
    },
    dtype: raw.dtype,
    outDtype: raw.out_dtype ?? null,
    tokenizerSource: raw.tokenizer_source ?? null,
    mergeSeed: raw.merge_seed,
  };
}

/** The YAML node at `path`, or its nearest ancestor that exists; the key node when `atKey`. */
function locate(doc: Document, path: readonly PathSeg[], atKey: boolean): YamlNode | undefined {
  for (let n = path.length; n >= 0; n--) {
    const prefix = path.slice(0, n);
    if (atKey && n === path.length && n > 0) {
      const parent = doc.getIn(prefix.slice(0, -1), true);
      const key = prefix[prefix.length - 1];
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
        if (pair && isScalar(pair.key)) return pair.key;
      }
      continue;
    }
    const node = n === 0 ? doc.contents : doc.getIn(prefix, true);
    if (node && typeof node === 'object' && 'range' in node) return node as YamlNode;
  }
  return undefined;
}

/**
 * Parses a search space from YAML text. Every problem is collected with its line and column and
 * reported in one SpaceError (`space.yaml:14:7 genome.density.max: must be ≤ 1, got 1.5`).
 *
 * @param file the name used in messages. Default: 'space.yaml'.
 */
export function parseSpace(text: string, file = 'space.yaml'): SearchSpace {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (node: YamlNode | undefined): { line?: number; col?: number } => {
    const start = node?.range?.[0];
    if (start === undefined) return {};
    const p = lines.linePos(start);
    return { line: p.line, col: p.col };
  };
  if (doc.errors.length > 0) {
    throw new SpaceError(
      file,
      doc.errors.map((e): SpaceIssue => {
        const p = lines.linePos(e.pos[0]);
        return { code: 'YAML_SYNTAX', path: '', message: e.message.split('\n')[0] ?? e.message, line: p.line, col: p.col };
      }),
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new SpaceError(file, [{ code: 'WRONG_TYPE', path: '', message: `a search space must be a mapping, got ${describe(data)}`, ...at(doc.contents ?? undefined) }]);
  }
  const parsed = SCHEMA.safeParse(data);
  const raw = parsed.success ? parsed.data : undefined;
  const rawIssues = parsed.success ? semanticIssues(parsed.data, data) : zodIssues(parsed.error, data);
  if (rawIssues.length > 0 || !raw) {
    throw new SpaceError(
      file,
      rawIssues.map((i) => ({ code: i.code, path: pathString(i.path), message: i.message, ...at(locate(doc, i.path, i.atKey ?? false)) })),
    );
  }
  return toSpace(raw);
}

/** Reads and parses a search space file; see parseSpace. */
export async function loadSpace(file: string): Promise<SearchSpace> {
  return parseSpace(await readFile(file, 'utf8'), file);
}

/** Hex SHA-256 of the space's canonical JSON: the identity the run store freezes a run under. */
export function spaceHash(space: SearchSpace): string {
  return stableHash(space);
}
