/**
 * Messages between LlamaCppEngine (parent) and llamacpp-child.ts (the process that loads
 * llama.cpp). Both sides import these types only; the child never imports the engine.
 */

export interface LoglikelihoodRequest {
  readonly context: string;
  readonly continuation: string;
}

export interface LoglikelihoodResult {
  /** Sum of the natural-log probabilities of the continuation's tokens given what precedes them. */
  readonly logprob: number;
  /** Whether every continuation token was the model's argmax (lm-eval's `is_greedy`). */
  readonly greedy: boolean;
  /** Number of continuation tokens scored. */
  readonly tokens: number;
}

export interface GenerateRequest {
  readonly prompt: string;
  /** Generation stops before the first occurrence of any of these; the text is cut there. */
  readonly stop: readonly string[];
  /** Most tokens to generate. */
  readonly maxTokens: number;
}

export interface GenerateResult {
  readonly text: string;
  /** Tokens generated (including the one that completed a stop string). */
  readonly tokens: number;
  readonly finish: 'stop' | 'eog' | 'length';
}

export interface LogitsRequest {
  /** Token ids to evaluate, as given (no BOS is added). */
  readonly tokens: readonly number[];
}

export type LlamaCppLogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface ChildInitParams {
  readonly threads: number;
  readonly gpu: 'auto' | false;
}

export interface ChildLoadParams {
  readonly modelPath: string;
  /** Tokens per sequence; 0 = min(2048, the model's training context). */
  readonly contextSize: number;
  readonly sequences: number;
  /** 0 = node-llama-cpp's default. */
  readonly batchSize: number;
  readonly kvCacheType: 'f16' | 'f32';
  readonly flashAttention: boolean | 'auto';
}

export interface EngineInfo {
  /** 'cuda', 'vulkan', 'metal' or false for CPU. */
  readonly gpu: string | false;
  readonly threads: number;
}

export interface ModelInfo {
  readonly modelPath: string;
  readonly contextSize: number;
  readonly trainContextSize: number;
  readonly sequences: number;
  readonly gpuLayers: number;
  readonly bos: number | null;
  readonly eos: number | null;
  readonly addBos: boolean;
}

/** Each operation's parameters and result. */
export interface ChildOps {
  init: { params: ChildInitParams; result: EngineInfo };
  load: { params: ChildLoadParams; result: ModelInfo };
  unload: { params: Record<string, never>; result: null };
  tokenize: { params: { readonly text: string }; result: number[] };
  detokenize: { params: { readonly tokens: readonly number[] }; result: string };
  loglikelihood: { params: { readonly requests: readonly LoglikelihoodRequest[] }; result: LoglikelihoodResult[] };
  generate: { params: { readonly requests: readonly GenerateRequest[] }; result: GenerateResult[] };
  logits: { params: { readonly requests: readonly LogitsRequest[] }; result: Float32Array[][] };
  close: { params: Record<string, never>; result: null };
}

export type ChildOp = keyof ChildOps;

export type ChildRequest = { [K in ChildOp]: { readonly id: number; readonly op: K; readonly params: ChildOps[K]['params'] } }[ChildOp];

export interface ChildErrorPayload {
  readonly code: string;
  readonly message: string;
}

export type ChildMessage =
  | { readonly kind: 'reply'; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly kind: 'reply'; readonly id: number; readonly ok: false; readonly error: ChildErrorPayload }
  | { readonly kind: 'log'; readonly level: LlamaCppLogLevel; readonly message: string }
  | { readonly kind: 'ready' };
