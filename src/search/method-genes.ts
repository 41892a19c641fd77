import { normalizeFlagOf, type MethodFamily, type MethodSpec, type ParamSpec } from '../merge/method-spec.js';
import { findMethodSpec, METHODS } from '../merge/registry.js';
import type { MethodId } from '../merge/task.js';

/**
 * Which genes a merge method reads, derived from its registry spec (style.md §1: genome.ts takes
 * gene bounds from the registry). A method is searchable when its family has a gene mapping:
 *
 * * `weight` genes: one per source model, when the method has a per-model `weight`; `linear`
 *   has no base, so the base model is listed as an input with a weight gene of its own;
 * * `density` genes: one per source model, when the method has `density` AND a sparsifier
 *   (task_arithmetic declares density but never sparsifies, so it gets none);
 * * `t` genes: global, for slerp and nearswap (each reads exactly one model besides the base),
 *   together with a categorical gene choosing that model (when there are several). The methods
 *   share the gene, a fraction in [0, 1], and each maps it into its own range (genome.ts);
 * * multislerp reads a weight per source model around the base: with `base_model` given, mergekit
 *   takes the spherical mean of the task vectors xᵢ − base (semantics §1.3), so the base is the
 *   tangent origin, not a weighted input;
 * * model_stock, sce and karcher have no per-model knobs: choosing them is the only gene. karcher's
 *   max_iter and tol only decide how closely the fixed-point iteration reaches the same mean, so
 *   they stay fixed (registry defaults, or genome.parameters.karcher) rather than spend
 *   evaluations on numerical noise.
 */

/** The continuous parameters the genome can search. */
export type GeneParam = 'weight' | 'density' | 't';

const SEARCHABLE_FAMILIES: ReadonlySet<MethodFamily> = new Set(['linear', 'slerp', 'task_vector', 'model_stock', 'sce', 'multislerp', 'karcher', 'nearswap']);

export interface MethodGenes {
  readonly method: MethodId;
  readonly spec: MethodSpec;
  /** The method reads a per-model `weight` (a gene per source model). */
  readonly weight: boolean;
  /** The base is a weighted input like the others (linear): it gets weight genes too. */
  readonly baseWeight: boolean;
  /** The method sparsifies by a per-model `density` (a gene per source model). */
  readonly density: boolean;
  /** The method reads a global `t` (slerp, nearswap), and moves the base toward ONE chosen source. */
  readonly t: boolean;
  /**
   * The document names `base_model` (required by the method, or optional and taken: multislerp
   * then works on task vectors around it). The base is always each slice's first source.
   */
  readonly usesBase: boolean;
  /** Fewest source models (besides the base) the method accepts in this genome. */
  readonly minModels: number;
  /** DELLA: density ± epsilon must stay inside (0, 1) (semantics §0.7). */
  readonly dellaWindow: boolean;
  /** With normalize, the weights of a tensor must not sum to 0 (linear has no guard, §0.8). */
  readonly weightsSumNonzero: boolean;
  /** The flag that turns that normalisation on (linear: normalize, multislerp: normalize_weights). */
  readonly normalizeFlag: string;
}

/** Every method the genome can search, in registry order. */
export const SEARCHABLE_METHODS: readonly MethodId[] = METHODS.filter((m) => SEARCHABLE_FAMILIES.has(m.family)).map((m) => m.id);

export function isSearchableMethod(id: string): boolean {
  const spec = findMethodSpec(id);
  return spec !== undefined && SEARCHABLE_FAMILIES.has(spec.family);
}

function param(spec: MethodSpec, name: string): ParamSpec | undefined {
  return spec.params.find((p) => p.name === name);
}

/** The gene mapping of a searchable method; throws RangeError for any other id (checked by space.ts first). */
export function methodGenes(id: string): MethodGenes {
  const spec = findMethodSpec(id);
  if (!spec || !SEARCHABLE_FAMILIES.has(spec.family)) throw new RangeError(`method '${id}' has no gene mapping`);
  const t = param(spec, 't') !== undefined;
  return {
    method: spec.id,
    spec,
    weight: param(spec, 'weight') !== undefined,
    baseWeight: spec.family === 'linear',
    density: param(spec, 'density') !== undefined && spec.sparsifier !== undefined,
    t,
    usesBase: spec.needsBase !== 'no',
    // slerp and nearswap read exactly one model besides the base, but the genome picks it among
    // all sources. multislerp around a base returns a lone model's tensor as it is (§1.3), so its
    // weights would mean nothing with one source.
    minModels: t ? 1 : spec.family === 'multislerp' ? 2 : Math.max(1, spec.modelCount?.min ?? 1),
    dellaWindow: spec.rules.includes('della-window'),
    weightsSumNonzero: spec.rules.includes('weights-sum-nonzero'),
    normalizeFlag: normalizeFlagOf(spec),
  };
}

/** The registry spec of the continuous parameter `p` as read by method `id` (undefined if it does not read it). */
export function geneParamSpec(id: string, p: GeneParam): ParamSpec | undefined {
  const spec = findMethodSpec(id);
  return spec ? param(spec, p) : undefined;
}
