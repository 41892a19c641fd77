import type { MethodId } from './task.js';

/**
 * The declaration of a merge method as data: its parameters with defaults and valid ranges,
 * what inputs it needs and how it treats shapes. config.ts validates against it, plan.ts
 * resolves with it, the search space takes gene bounds from it and the CLI documents it.
 * The arithmetic lives elsewhere (src/merge/methods/<family>.ts and native/).
 */

/** `global`: one value per tensor (slice → module → top-level); `model`: one value per input model. */
export type ParamScope = 'global' | 'model';

/** Resolved values are numbers or booleans; gradients interpolate booleans as 0/1 (semantics §2). */
export type ParamKind = 'number' | 'boolean';

export interface ParamSpec {
  /** The YAML key, as mergekit spells it (`lambda`, not `lambda_`). */
  readonly name: string;
  readonly scope: ParamScope;
  readonly kind: ParamKind;
  /**
   * Value used when no level of the config sets it. Absent on required parameters and on
   * optional ones that mergekit leaves as None (passthrough `scale`): those are then omitted
   * from the resolved parameters.
   */
  readonly default?: number | boolean;
  /** A missing value is an error ("Missing required parameter weight for <model>.<tensor>"). */
  readonly required: boolean;
  /** Lower bound of valid values (numbers only); inclusive unless `minExclusive`. */
  readonly min?: number;
  readonly minExclusive?: boolean;
  /** Upper bound of valid values (numbers only); inclusive unless `maxExclusive`. */
  readonly max?: number;
  readonly maxExclusive?: boolean;
  /** Only whole numbers are valid (e.g. karcher `max_iter`). */
  readonly integer?: boolean;
  /**
   * Bounds a search space uses when the user gives none: a sensible sub-range of the valid one
   * (weights are valid on the whole real line, but searched in [0, 1]). Numbers only.
   */
  readonly searchRange?: readonly [number, number];
  /** One sentence for `evo merge --help`-style docs and the exporter. */
  readonly doc: string;
}

/** Per-model sparsification of task vectors (semantics §1.2). */
export type Sparsifier = 'magnitude' | 'random' | 'magnitude_outliers' | 'della_magprune';

/** Sign election across task vectors; mergekit only exposes `sum` from YAML (semantics §0.5). */
export type Consensus = 'sum';

/**
 * How an embedding / lm_head tensor (`isEmbed`) with differing shapes is handled (semantics §0.11):
 * `common`: every input is cut to the largest common leading submatrix;
 * `base`: every input is cut to the base's shape (an input smaller than the base is an error);
 * `exact`: shapes must match.
 */
export type EmbedShapeRule = 'common' | 'base' | 'exact';

/**
 * How a non-embedding tensor with differing shapes is handled: `error`, or `skip` the
 * mismatching model for that tensor with a warning (task-vector methods, semantics §0.11).
 */
export type OtherShapeRule = 'error' | 'skip';

/**
 * Checks beyond a single parameter's range, run by the planner per tensor with resolved values:
 * `topk-nonzero`: magnitude sparsification needs k = int(density·numel) ≥ 1 (semantics §0.5);
 * `della-window`: density ± epsilon must lie in (0, 1) when density < 1 (§0.7);
 * `weights-sum-nonzero`: with `normalize` (multislerp: `normalize_weights`), Σ weight over the
 *   non-base models must not be 0 (mergekit writes inf/NaN, §0.8);
 * `breadcrumbs-empty-slice`: int(gamma·numel) = 0 drops the whole delta — reproduced, but warned (§0.6).
 */
export type MethodRule = 'topk-nonzero' | 'della-window' | 'weights-sum-nonzero' | 'breadcrumbs-empty-slice';

/** The family a method's arithmetic belongs to; task-vector variants share one family. */
export type MethodFamily =
  | 'linear'
  | 'slerp'
  | 'nuslerp'
  | 'multislerp'
  | 'karcher'
  | 'task_vector'
  | 'model_stock'
  | 'passthrough'
  | 'sce'
  | 'nearswap';

export interface MethodSpec {
  /** mergekit's `merge_method:` spelling. */
  readonly id: MethodId;
  readonly family: MethodFamily;
  /** Human name, e.g. "TIES". */
  readonly title: string;
  /** Paper or reference URL. */
  readonly reference?: string;
  /** One or two sentences on what it computes. */
  readonly doc: string;
  readonly params: readonly ParamSpec[];
  /**
   * `yes`: `base_model` is required and must be an input of every slice; `optional`: used when
   * given; `no`: the method has no base, and a `base_model` is merged like any other model.
   */
  readonly needsBase: 'yes' | 'no' | 'optional';
  /**
   * Distinct models per tensor, NOT counting the base when the method uses one
   * (slerp: exactly 1 besides the base; passthrough: exactly 1). Absent: any number.
   */
  readonly modelCount?: { readonly min: number; readonly max: number };
  readonly sparsifier?: Sparsifier;
  readonly consensus?: Consensus;
  readonly embedShapes: EmbedShapeRule;
  readonly otherShapes: OtherShapeRule;
  /** Draws random numbers (DARE / DELLA masks), keyed by TensorTask.randomKey. */
  readonly randomized: boolean;
  readonly rules: readonly MethodRule[];
}

/** The boolean parameter that divides by Σ weight (`weights-sum-nonzero`): multislerp's `normalize_weights`, else `normalize`. */
export function normalizeFlagOf(spec: MethodSpec): string {
  return spec.params.some((p) => p.name === 'normalize_weights') ? 'normalize_weights' : 'normalize';
}

/** A human rendering of a parameter's valid range: `(0, 1]`, `[0, ∞)`, `any number`. */
export function formatParamRange(p: ParamSpec): string {
  if (p.kind === 'boolean') return 'true or false';
  if (p.min === undefined && p.max === undefined) return p.integer ? 'any integer' : 'any number';
  const lo = p.min === undefined ? '(−∞' : `${p.minExclusive ? '(' : '['}${p.min}`;
  const hi = p.max === undefined ? '∞)' : `${p.max}${p.maxExclusive ? ')' : ']'}`;
  return `${lo}, ${hi}${p.integer ? ' (integer)' : ''}`;
}

/** Whether a number lies in a parameter's valid range (booleans and unbounded params: always). */
export function isInParamRange(p: ParamSpec, value: number): boolean {
  if (!Number.isFinite(value)) return false;
  if (p.integer && !Number.isInteger(value)) return false;
  if (p.min !== undefined && (p.minExclusive ? value <= p.min : value < p.min)) return false;
  if (p.max !== undefined && (p.maxExclusive ? value >= p.max : value > p.max)) return false;
  return true;
}

/** The per-model `weight` shared by linear, the task-vector family, nuslerp and multislerp. */
export const WEIGHT_PARAM: ParamSpec = {
  name: 'weight',
  scope: 'model',
  kind: 'number',
  required: true,
  searchRange: [0, 1],
  doc: 'Mixing weight of this model (any real number; negative subtracts).',
};
