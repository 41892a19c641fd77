import { EvoError } from '../errors.js';

/** Why a parsed config cannot be planned against its input models. */
export type PlanIssueCode =
  /** An input model lacks a tensor the merge needs (the message names model and tensor). */
  | 'TENSOR_NOT_FOUND'
  /** Input shapes the method cannot combine (the message names the tensor and each shape). */
  | 'SHAPE_MISMATCH'
  /** A `layer_range` reaches past the model's layers. */
  | 'LAYER_RANGE'
  /** The sources of a slice cover different numbers of layers (e.g. `models:` of different depths). */
  | 'SLICE_LENGTHS'
  | 'MODEL_COUNT'
  | 'BASE_MODEL'
  /** "Missing required parameter weight for <model>.<tensor>" (mergekit's wording). */
  | 'MISSING_PARAMETER'
  /** TIES top-k keeps nothing: int(density·numel) = 0 (mergekit asserts, semantics §0.5). */
  | 'DENSITY_TOO_SMALL'
  /** DELLA needs density ± epsilon inside (0, 1) when density < 1 (semantics §0.7). */
  | 'DELLA_WINDOW'
  /** linear with normalize and Σ weight = 0: mergekit writes inf/NaN (semantics §0.8). */
  | 'WEIGHTS_SUM_ZERO'
  /** tokenizer_source needs a model's tokenizer.json and it is missing or unreadable (the message names the file). */
  | 'TOKENIZER_INVALID'
  /** A `tokenizer.tokens` entry names a token or row its model does not have (the message gives the key path). */
  | 'TOKEN_OVERRIDE'
  | 'UNSUPPORTED';

export interface PlanIssue {
  readonly code: PlanIssueCode;
  readonly message: string;
}

/** How many issues a PlanError message lists before summarising the rest. */
const LISTED = 20;

/**
 * Every problem found while planning, thrown together before anything is written. `code` is the
 * first issue's code; `issues` holds them all.
 */
export class PlanError extends EvoError {
  readonly issues: readonly PlanIssue[];

  constructor(file: string, issues: readonly PlanIssue[]) {
    const first = issues[0];
    const listed = issues.slice(0, LISTED).map((i) => i.message);
    const more = issues.length > LISTED ? [`… and ${issues.length - LISTED} more`] : [];
    const message =
      issues.length === 1 ? `${file}: ${first?.message ?? ''}` : `${file}: ${issues.length} problems\n  ${[...listed, ...more].join('\n  ')}`;
    super(first?.code ?? 'PLAN_INVALID', message);
    this.name = 'PlanError';
    this.issues = issues;
  }
}
