import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { writeGguf } from '../convert/hf-to-gguf.js';
import type { GgufOutType } from '../convert/hf-to-gguf.js';
import { prepareTokenizerMetadata } from '../convert/tokenizer-gguf.js';
import type { GgufTokenizerMetadata } from '../convert/tokenizer-gguf.js';
import { openCheckpoint } from '../tensors/checkpoint.js';
import { TOKENIZER_FILE_NAMES } from '../tensors/hf-files.js';
import { LlamaCppEngine } from './llamacpp.js';
import type { LlamaCppEngineOptions } from './llamacpp.js';
import type {
  BackendStats,
  GenerateRequest,
  GenerateResult,
  InferenceBackend,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ModelRef,
} from './types.js';

/**
 * InferenceBackend over helper H's LlamaCppEngine (llama.cpp in a child process). It converts
 * an HF candidate folder to GGUF when no GGUF is given (the tokenizer metadata is converted once
 * per distinct tokenizer), and cuts over-long generation prompts on the left as lm-eval does
 * (log-likelihood requests are cut by the engine itself).
 */

export class BackendError extends EvoError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'BackendError';
  }
}

/** Counters as a mutable record, shared by the backends. */
export class BackendCounters {
  generateRequests = 0;
  generatedTokens = 0;
  loglikelihoodRequests = 0;
  scoredTokens = 0;
  truncatedPrompts = 0;

  snapshot(): BackendStats {
    return {
      generateRequests: this.generateRequests,
      generatedTokens: this.generatedTokens,
      loglikelihoodRequests: this.loglikelihoodRequests,
      scoredTokens: this.scoredTokens,
      truncatedPrompts: this.truncatedPrompts,
    };
  }
}

/** The difference of two stats snapshots (what one evaluation used). */
export function statsDelta(after: BackendStats, before: BackendStats): BackendStats {
  return {
    generateRequests: after.generateRequests - before.generateRequests,
    generatedTokens: after.generatedTokens - before.generatedTokens,
    loglikelihoodRequests: after.loglikelihoodRequests - before.loglikelihoodRequests,
    scoredTokens: after.scoredTokens - before.scoredTokens,
    truncatedPrompts: after.truncatedPrompts - before.truncatedPrompts,
  };
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new BackendError('EVAL_ABORTED', `${what}: aborted`, { cause: signal.reason });
}

export interface LlamaCppBackendOptions extends LlamaCppEngineOptions {
  /** Matrix type of GGUFs converted from HF folders. Default: 'auto' (keeps the stored float type). */
  readonly ggufOutType?: GgufOutType;
  /** Folder for converted GGUFs. Default: a fresh folder under os.tmpdir(), removed by close(). */
  readonly workDir?: string;
}

/** Timings of the last useModel call, in seconds. */
export interface ModelLoadTimes {
  readonly convertSeconds: number;
  readonly loadSeconds: number;
}

export class LlamaCppBackend implements InferenceBackend {
  readonly name = 'llamacpp';
  readonly needs = 'gguf' as const;
  private readonly engine: LlamaCppEngine;
  private readonly ownsEngine: boolean;
  private readonly options: LlamaCppBackendOptions;
  private readonly counters = new BackendCounters();
  private readonly tokenizers = new Map<string, GgufTokenizerMetadata>();
  private workDir: string | undefined;
  private readonly ownsWorkDir: boolean;
  private converted: string | undefined;
  private times: ModelLoadTimes = { convertSeconds: 0, loadSeconds: 0 };

  private constructor(engine: LlamaCppEngine, ownsEngine: boolean, options: LlamaCppBackendOptions) {
    this.engine = engine;
    this.ownsEngine = ownsEngine;
    this.options = options;
    this.workDir = options.workDir;
    this.ownsWorkDir = options.workDir === undefined;
  }

  /** Starts a llama.cpp engine for this backend (closed by close()). */
  static async open(options: LlamaCppBackendOptions = {}): Promise<LlamaCppBackend> {
    return new LlamaCppBackend(await LlamaCppEngine.start(options), true, options);
  }

  /** Wraps an engine the caller owns (close() then leaves it running). */
  static fromEngine(engine: LlamaCppEngine, options: LlamaCppBackendOptions = {}): LlamaCppBackend {
    return new LlamaCppBackend(engine, false, options);
  }

  /** The engine's GPU kind (false on CPU) and thread count. */
  get engineInfo(): LlamaCppEngine['info'] {
    return this.engine.info;
  }

  get lastLoadTimes(): ModelLoadTimes {
    return this.times;
  }

  /** The tokenizer metadata of an HF folder, converted once per distinct set of tokenizer files. */
  private async tokenizerFor(dir: string): Promise<GgufTokenizerMetadata> {
    const hash = createHash('sha256');
    for (const name of TOKENIZER_FILE_NAMES) {
      const bytes = await readFile(path.join(dir, name)).catch(() => undefined);
      if (bytes !== undefined) hash.update(`${name}\0${bytes.length}\0`).update(bytes);
    }
    const key = hash.digest('hex');
    let meta = this.tokenizers.get(key);
    if (meta === undefined) {
      meta = await prepareTokenizerMetadata(dir);
      this.tokenizers.set(key, meta);
    }
    return meta;
  }

  async useModel(model: ModelRef, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal, `load ${model.id}`);
    let gguf = model.gguf;
    const t0 = performance.now();
    let convertSeconds = 0;
    if (gguf === undefined) {
      this.workDir ??= await mkdtemp(path.join(os.tmpdir(), 'evo-eval-gguf-'));
      await mkdir(this.workDir, { recursive: true });
      const target = path.join(this.workDir, `${model.id.replace(/[^\w.-]+/g, '_')}.gguf`);
      const checkpoint = await openCheckpoint(model.dir);
      await writeGguf(checkpoint, await this.tokenizerFor(checkpoint.dir), target, { outType: this.options.ggufOutType ?? 'auto', name: model.id });
      convertSeconds = (performance.now() - t0) / 1000;
      gguf = target;
    }
    const t1 = performance.now();
    await this.engine.loadModel(gguf);
    // The previous conversion is no longer mapped by llama.cpp: remove it.
    if (this.converted !== undefined && this.converted !== gguf) await rm(this.converted, { force: true });
    this.converted = model.gguf === undefined ? gguf : undefined;
    this.times = { convertSeconds, loadSeconds: (performance.now() - t1) / 1000 };
  }

  private loaded(what: string): { contextSize: number; addBos: boolean } {
    const m = this.engine.loadedModel;
    if (m === undefined) throw new BackendError('NO_MODEL', `${what}: no model loaded (call useModel first)`);
    return { contextSize: m.contextSize, addBos: m.addBos };
  }

  async loglikelihood(requests: readonly LoglikelihoodRequest[], signal?: AbortSignal): Promise<LoglikelihoodResult[]> {
    throwIfAborted(signal, 'loglikelihood');
    const { contextSize } = this.loaded('loglikelihood');
    // Count the requests the engine will cut (only those that could be too long are tokenized).
    const checked = new Map<string, boolean>();
    for (const r of requests) {
      const text = r.context + r.continuation;
      if (Buffer.byteLength(text) + 2 <= contextSize || checked.has(text)) continue;
      const long = (await this.engine.tokenize(text)).length + 1 > contextSize;
      checked.set(text, long);
      if (long) this.counters.truncatedPrompts++;
    }
    const out = await this.engine.loglikelihood(requests);
    this.counters.loglikelihoodRequests += requests.length;
    for (const r of out) this.counters.scoredTokens += r.tokens;
    return out;
  }

  /**
   * lm-eval keeps the last (context − max new tokens) prompt tokens. A prompt of b UTF-8 bytes has
   * at most b + 1 tokens (one token covers at least one byte; SentencePiece may add one prefix
   * piece), so only prompts that could be too long are tokenized.
   */
  private async fitPrompt(prompt: string, maxTokens: number, contextSize: number, addBos: boolean): Promise<string> {
    const bos = addBos ? 1 : 0;
    const budget = Math.max(1, contextSize - bos - Math.min(maxTokens, contextSize - bos - 1));
    if (Buffer.byteLength(prompt) + 1 <= budget) return prompt;
    const tokens = await this.engine.tokenize(prompt);
    if (tokens.length <= budget) return prompt;
    this.counters.truncatedPrompts++;
    return this.engine.detokenize(tokens.slice(tokens.length - budget));
  }

  async generate(requests: readonly GenerateRequest[], signal?: AbortSignal): Promise<GenerateResult[]> {
    throwIfAborted(signal, 'generate');
    const { contextSize, addBos } = this.loaded('generate');
    const fitted: GenerateRequest[] = [];
    for (const r of requests) fitted.push({ ...r, prompt: await this.fitPrompt(r.prompt, r.maxTokens, contextSize, addBos) });
    const out = await this.engine.generate(fitted);
    this.counters.generateRequests += requests.length;
    for (const r of out) this.counters.generatedTokens += r.tokens;
    return out;
  }

  stats(): BackendStats {
    return this.counters.snapshot();
  }

  async close(): Promise<void> {
    try {
      if (this.ownsEngine) await this.engine.close();
      else if (this.engine.loadedModel !== undefined && this.converted !== undefined) await this.engine.unloadModel();
    } finally {
      // Temporary GGUFs go even when the engine fails to close cleanly.
      if (this.converted !== undefined) await rm(this.converted, { force: true });
      this.converted = undefined;
      if (this.ownsWorkDir && this.workDir !== undefined) await rm(this.workDir, { recursive: true, force: true });
      this.workDir = undefined;
    }
  }
}
