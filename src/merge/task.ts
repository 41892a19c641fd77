import type { DType, FloatDType } from '../tensors/dtype.js';
import type { PermutationStats } from './vocab-permutation.js';

/**
 * A merge method id, spelled as in mergekit's YAML (`merge_method:`). The registry
 * (src/merge/registry.ts) declares each one once: parameters, defaults, ranges, arithmetic.
 */
export type MethodId =
  | 'linear'
  | 'slerp'
  | 'nuslerp'
  | 'task_arithmetic'
  | 'ties'
  | 'dare_ties'
  | 'dare_linear'
  | 'breadcrumbs'
  | 'breadcrumbs_ties'
  | 'della'
  | 'della_linear'
  | 'model_stock'
  | 'passthrough'
  | 'sce'
  | 'karcher'
  | 'multislerp'
  | 'nearswap';

/** One stored tensor of one input checkpoint, located down to its bytes. */
export interface FileTensorInput {
  readonly kind: 'file';
  /** The model reference as written in the config (the key of per-model parameters). */
  readonly model: string;
  /** Absolute path of the safetensors file holding the tensor. */
  readonly file: string;
  /** The tensor's name inside that file. */
  readonly tensor: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in `file`. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/**
 * A tensor produced by an earlier stage of a multi-document config, computed in memory
 * (never written) unless --intermediate-dir asks for it.
 */
export interface StageTensorInput {
  readonly kind: 'stage';
  /** The stage's name (the `name:` of its document), which is the model reference later stages use. */
  readonly model: string;
  readonly task: TensorTask;
}

/**
 * A tensor rows of a permuted input are gathered from: stored in a file (read by position), or
 * computed by an earlier stage (computed whole in the worker, in the stage's output dtype: the
 * bytes mergekit's multimerge writes for the stage and loads back as a model).
 */
export type PermutationSource = FileTensorInput | StageTensorInput;

/**
 * A 2-D embedding (or lm_head) of one model re-indexed into the output vocabulary of
 * `tokenizer_source` (semantics §1.5): row r is gathered from `sources` as `rows[r]` says (one
 * pair copies a row, several are averaged, none is zeros). The worker reads only the rows it needs
 * of file sources, with positional reads, so memory is bounded by this tensor, not by the source
 * models; a stage source is computed whole once per task. vocab-permutation.ts decides the rows.
 */
export interface PermutedTensorInput {
  readonly kind: 'permuted';
  readonly model: string;
  /** The model's own tensor name, stored or a stage's output (for messages and --dry-run). */
  readonly tensor: string;
  /** dtype of the gathered tensor: the model's own stored dtype (rows of other dtypes are converted). */
  readonly dtype: DType;
  /** [output vocabulary rows, hidden]. */
  readonly shape: readonly number[];
  /** Whole tensors rows are read from (every model of the task, in task order). */
  readonly sources: readonly PermutationSource[];
  /**
   * Per output row, `[index into sources, row]` pairs, packed (vocab-permutation.ts PackedRows):
   * row r's pairs are pairs[2k], pairs[2k+1] for k in [rowOffsets[r], rowOffsets[r+1]).
   */
  readonly rowOffsets: Uint32Array;
  readonly pairs: Int32Array;
  /**
   * With `pad_to_multiple_of`: the packed sources of the real (unpadded) rows of the whole tensor,
   * whose mean every padded row (`[PAD_MEAN, 0]`) is; kept by a row chunk only when it holds padded rows.
   */
  readonly padMeanOf?: { readonly rowOffsets: Uint32Array; readonly pairs: Int32Array };
  /** What the rows are, for --dry-run: own rows, borrowed from one model, averaged, zeros, overridden, padded. */
  readonly stats: PermutationStats;
}

export type TensorInput = FileTensorInput | StageTensorInput | PermutedTensorInput;

/** Resolved parameter values for one tensor: already interpolated, filtered and defaulted. */
export type ResolvedParams = Readonly<Record<string, number | boolean>>;

/**
 * Everything needed to compute one output tensor. Plain data: it can be hashed, logged, sent to
 * a worker and tested on its own (design.md, Contracts).
 */
export interface TensorTask {
  /** Output tensor name. */
  readonly output: string;
  /**
   * Shape of the output. The planner (plan.ts) guarantees that every input has this shape, except
   * for `isEmbed` 2-D tensors whose vocab sizes differ (semantics §0.11): then each input has the
   * same rank and is at least as large in every dim, and is read as its leading submatrix
   * `x[:outShape[0], :outShape[1]]` (the common submatrix for linear/slerp/nuslerp/model_stock/
   * karcher, the base's shape for the task-vector family). Task-vector inputs of a non-embedding
   * tensor whose shape differs from the base are already dropped from `inputs` (with a warning).
   */
  readonly outShape: readonly number[];
  /** dtype written to the output file (`out_dtype`, else `dtype`, else the base's stored dtype). */
  readonly outDType: DType;
  /**
   * dtype the arithmetic runs in (mergekit's `dtype:`, else the stored dtype of the first input).
   * BF16/F16 mean per-operation rounding is emulated to match mergekit (semantics §0.3).
   */
  readonly computeDType: FloatDType;
  readonly method: MethodId;
  /** Inputs in mergekit's model order; per-model parameters are aligned with this array. */
  readonly inputs: readonly TensorInput[];
  /** Index into `inputs` of the base model, or null when the method runs without one. */
  readonly baseIndex: number | null;
  /**
   * Global (method-level) parameters, e.g. normalize, lambda, t, rescale, keyed by their YAML names
   * (`lambda`, not mergekit's `lambda_`). plan.ts fills in every declared global parameter (value or
   * registry default), coerced to its kind (booleans for flags).
   */
  readonly params: ResolvedParams;
  /**
   * Per-input parameters, e.g. weight, density, gamma, epsilon; aligned with `inputs`. A parameter
   * with no value and no default is absent: the base's `weight` (mergekit's None) and an unset
   * passthrough `scale`.
   */
  readonly modelParams: readonly ResolvedParams[];
  /** True for embedding / lm_head tensors, whose vocab dimension may be truncated (semantics §0.11). */
  readonly isEmbed: boolean;
  /**
   * Key of the counter-based random stream (DARE / DELLA masks): the merge seed and this tensor.
   * `tensor` is the output name, prefixed `<stage>/` for tasks of a named stage.
   */
  readonly randomKey: { readonly seed: number; readonly tensor: string };
}

/** One named intermediate of a multi-document config, written only when --intermediate-dir asks. */
export interface PlannedStage {
  readonly name: string;
  readonly tasks: readonly TensorTask[];
  readonly outputConfig: Readonly<Record<string, unknown>>;
  /** The stage's tokenizer files, as MergePlan's: written into its --intermediate-dir folder. */
  readonly tokenizerDir: string | null;
  readonly tokenizerFiles: readonly string[];
  readonly tokenizerGenerated?: Readonly<Record<string, string>>;
}

/**
 * The resolved form of a mergekit config: what `plan.ts` produces from headers alone and
 * `materialize.ts` executes. No tensor data has been read to make it.
 */
export interface MergePlan {
  /** One task per output tensor of the final model, in the order the writer lays them out. */
  readonly tasks: readonly TensorTask[];
  /** config.json of the output model (num_hidden_layers updated for layer stacking). */
  readonly outputConfig: Readonly<Record<string, unknown>>;
  /** Directory whose tokenizer files are copied to the output (base or tokenizer_source), or null. */
  readonly tokenizerDir: string | null;
  /** File names (relative to tokenizerDir) to copy: tokenizer.json, tokenizer_config.json, ... */
  readonly tokenizerFiles: readonly string[];
  /**
   * Tokenizer files written instead of copying tokenizerDir's, by name: tokenizer.json when
   * tokenizer_source changes the vocabulary (union, added tokens, the base stripped of ids past
   * vocab_size), with tokenizer_config.json's added_tokens_decoder (and a donor's added_tokens.json) to match.
   */
  readonly tokenizerGenerated?: Readonly<Record<string, string>>;
  /** The mergekit YAML text the plan came from; written beside the output as mergekit_config.yml. */
  readonly configText: string;
  /** Seed of the counter-based random streams (DARE / DELLA). */
  readonly seed: number;
  /** Named intermediates (multi-document configs); the final tasks already embed them as stage inputs. */
  readonly stages: readonly PlannedStage[];
}
