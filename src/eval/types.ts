import type { GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult } from './llamacpp-protocol.js';

/**
 * The evaluation contract (design.md, Contracts → Evaluator). The search runner builds a
 * candidate, asks the evaluators of its objectives what format they need, points an inference
 * backend at the candidate's weights (`InferenceBackend.useModel`) and calls `evaluate`.
 * Every score comes back with its sample size, its 95% confidence interval and the per-item
 * results the run store keeps.
 */

export type { GenerateRequest, GenerateResult, LoglikelihoodRequest, LoglikelihoodResult };

/** A JSON value (what `details` may hold, so the run store can keep it as is). */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };
export type JsonObject = { readonly [key: string]: JsonValue };

/**
 * Which items a score is measured on. 'search': the split fitness is measured on during a
 * search (GSM8K train, MMLU val, a generic task's search file); 'test': the sealed split, only
 * for a final `evo eval --split test`.
 */
export type EvalSplit = 'search' | 'test';
export const EVAL_SPLITS: readonly EvalSplit[] = ['search', 'test'];

/** One merged model as evaluators see it. */
export interface Candidate {
  /** Stable id of the candidate in its run (store id or recipe hash), or a name for `evo eval`. */
  readonly id: string;
  /** The merged Hugging Face model folder (config.json, *.safetensors, tokenizer files). */
  readonly dir: string;
  /** A GGUF of the same weights when one was already written; backends convert `dir` otherwise. Default: none. */
  readonly gguf?: string | undefined;
  /** The mergekit config the candidate was built from (one document or an array of them); null for a plain model. */
  readonly config: unknown;
  /** Decoded gene values by gene key (numbers; method names for categorical genes); {} for a plain model. */
  readonly genome: Readonly<Record<string, number | string>>;
}

/** How many items, which ones, and from where. */
export interface EvalBudget {
  /** Most items to score; the evaluator's whole split when Infinity. */
  readonly limit: number;
  /**
   * Seed of the item subset (and of anything else random in the evaluation). Give every
   * candidate of a generation the same seed (`generationSeed`) so they answer the same items.
   */
  readonly seed: number;
  /** Score exactly these items, in this order (a racing slice); `limit` and `seed` then only label the run. Default: a seeded subset. */
  readonly itemIds?: readonly string[] | undefined;
  /** Default: 'search'. */
  readonly split?: EvalSplit | undefined;
}

/** Counters an inference backend keeps, for throughput figures. */
export interface BackendStats {
  /** Generation requests answered. */
  readonly generateRequests: number;
  /** Tokens generated. */
  readonly generatedTokens: number;
  /** Log-likelihood requests answered. */
  readonly loglikelihoodRequests: number;
  /** Continuation tokens scored by log-likelihood requests. */
  readonly scoredTokens: number;
  /** Requests whose prompt had to be cut on the left to fit the context (lm-eval does the same). */
  readonly truncatedPrompts: number;
}

/** What a backend must be told about the model it should serve next. */
export interface ModelRef {
  readonly id: string;
  /** HF model folder. */
  readonly dir: string;
  /** GGUF file of the same weights, when there is one. Default: none (converted from `dir` when the backend needs GGUF). */
  readonly gguf?: string | undefined;
}

/**
 * The two operations task evaluators need, whatever runs the model: H's llama.cpp engine
 * (`LlamaCppBackend`), an OpenAI-compatible server (`OpenAiBackend`), or a test stub.
 */
export interface InferenceBackend {
  /** 'llamacpp', 'openai', ... (reported with every result). */
  readonly name: string;
  /** The weights format `useModel` reads. */
  readonly needs: 'gguf' | 'hf-dir';
  /** Points the backend at a model (loads a GGUF, or asks a server to reload its weights). */
  useModel(model: ModelRef, signal?: AbortSignal): Promise<void>;
  /** Sum of log-probabilities of each continuation given its context (lm-eval semantics). */
  loglikelihood(requests: readonly LoglikelihoodRequest[], signal?: AbortSignal): Promise<LoglikelihoodResult[]>;
  /** Greedy completions, cut at the first stop string. */
  generate(requests: readonly GenerateRequest[], signal?: AbortSignal): Promise<GenerateResult[]>;
  /** Counters since the backend was opened. */
  stats(): BackendStats;
  /** Frees the model, the engine process or connections, and temporary files. */
  close(): Promise<void>;
}

/** Per-call context. The backend already serves the candidate (the caller ran `useModel`). */
export interface EvalContext {
  /** Absent for evaluators that need none (`command`, most user modules). */
  readonly backend?: InferenceBackend | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Called after each chunk of items. Default: none. */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

/** One scored item. */
export interface ItemResult {
  /** Stable item id within the evaluator and split, e.g. `train/1234` or `val/anatomy/7`. */
  readonly id: string;
  /** Whether the answer was right (tasks with a right answer), else null. */
  readonly correct: boolean | null;
  /** The item's score: 1/0 for right/wrong, or a value in [0, 1]. */
  readonly score: number;
}

/** An evaluation's outcome. */
export interface EvaluationResult {
  /** The primary metric, higher is better (e.g. GSM8K strict exact match, MMLU micro accuracy). */
  readonly score: number;
  /** 95% confidence interval of `score` (Wilson for right/wrong items), or null when the evaluator cannot give one. */
  readonly ci: readonly [number, number] | null;
  /** Standard error of `score`, or null when unknown. */
  readonly stderr: number | null;
  /** Items the score rests on. */
  readonly itemsUsed: number;
  /** Wall seconds of this evaluation (the model load excluded). */
  readonly seconds: number;
  /** Per-item results in the order they were scored (empty when the evaluator gives none). */
  readonly items: readonly ItemResult[];
  /** Evaluator-specific figures: secondary metrics, per-subject scores, prompts' settings, token counts. */
  readonly details: JsonObject;
}

/**
 * What a candidate must be materialized as: 'backend' = whatever the backend reads (task
 * evaluators), 'hf-dir' = the HF folder itself, 'gguf' = a GGUF file (e.g. a command template
 * with `{gguf}`).
 */
export type EvaluatorNeeds = 'backend' | 'hf-dir' | 'gguf';

/** A built-in or adapted evaluator. Instances are stateless between calls (datasets may be cached). */
export interface Evaluator {
  /** Name as reported (e.g. 'gsm8k', 'mmlu', 'generic:demo-math', 'module:./my-eval.mjs'). */
  readonly name: string;
  readonly needs: EvaluatorNeeds;
  /**
   * Every item id of a split in the seeded order subsets are taken in: the first `limit` ids are
   * the subset `evaluate` scores for that seed, and a racing slice is a range of this order.
   * Absent for evaluators that do not enumerate items (they cannot be raced).
   */
  subsetOrder?(split: EvalSplit, seed: number): Promise<readonly string[]>;
  evaluate(candidate: Candidate, budget: EvalBudget, ctx: EvalContext): Promise<EvaluationResult>;
}

/**
 * A user evaluator module's export: `export async function evaluate(candidate, options, context)`.
 * It returns a number (the score) or `{score, ...}` with optional `n` (items the score rests on;
 * `itemsUsed` is accepted too), `ci: [low, high]`, `stderr`, `items: [{id, correct?, score?}]`
 * and anything else (kept as details). The same contract as the search runner's
 * (src/search/run-evaluators.ts); see evaluators/example-user-evaluator.mjs.
 */
export type UserEvaluateFunction = (
  candidate: Candidate,
  options: Readonly<Record<string, unknown>>,
  context: UserEvaluatorContext,
) => unknown;

/** The third argument of a user evaluator. */
export interface UserEvaluatorContext {
  readonly limit: number;
  readonly seed: number;
  readonly split: EvalSplit;
  readonly itemIds: readonly string[] | undefined;
  readonly backend: InferenceBackend | undefined;
  readonly signal: AbortSignal | undefined;
}
