import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EvoError } from '../errors.js';
import { defaultLlamaThreads } from './llamacpp-threads.js';
import type {
  ChildMessage,
  ChildOp,
  ChildOps,
  EngineInfo,
  GenerateRequest,
  GenerateResult,
  LlamaCppLogLevel,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ModelInfo,
} from './llamacpp-protocol.js';

export type { GenerateRequest, GenerateResult, LlamaCppLogLevel, LoglikelihoodRequest, LoglikelihoodResult, ModelInfo, EngineInfo };

/**
 * llama.cpp inference for evaluators, through node-llama-cpp, in a child process: a malformed
 * GGUF can abort the process that loads it, and that must not take the search down with it.
 * Requests are sent one operation at a time; inside an operation the child spreads the requests
 * over several sequences of one context, which llama.cpp decodes in shared batches.
 */

export interface LlamaCppEngineOptions {
  /**
   * CPU threads for llama.cpp. Default: the cores the current load leaves idle, at least 1
   * (llamacpp-threads.ts: availableParallelism() minus the 1-minute load average, read when the
   * engine starts).
   */
  readonly threads?: number;
  /** 'auto': use a GPU when one is found, with every layer offloaded; false: CPU only. Default: 'auto'. */
  readonly gpu?: 'auto' | false;
  /** Tokens per sequence. Default: min(2048, the model's training context). */
  readonly contextSize?: number;
  /** Parallel sequences in the context (requests scored at once). Default: 4. */
  readonly sequences?: number;
  /** Tokens per decode batch. Default: node-llama-cpp's (512, or the context size when smaller). */
  readonly batchSize?: number;
  /** KV-cache element type; 'f32' removes its rounding for exact comparisons. Default: 'f16'. */
  readonly kvCacheType?: 'f16' | 'f32';
  /**
   * Flash attention. On CPU llama.cpp's flash-attention kernel works in f16 (logit errors ~1e-3),
   * so exact comparisons turn it off. Default: 'auto' (llama.cpp decides; faster).
   */
  readonly flashAttention?: boolean | 'auto';
  /** Receives llama.cpp's warnings and errors. Default: none (they are still kept for error messages). */
  readonly logger?: (level: LlamaCppLogLevel, message: string) => void;
}

export class LlamaCppError extends EvoError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'LlamaCppError';
  }
}

interface Pending {
  readonly op: ChildOp;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

const LOG_TAIL = 20;

/**
 * The child entry: beside this file when running from dist/, else the built copy under dist/
 * (tests run from src/ through vitest, which cannot hand a .ts entry to a plain node child).
 */
function childEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const beside = path.join(path.dirname(here), 'llamacpp-child.js');
  if (existsSync(beside)) return beside;
  let dir = path.dirname(here);
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'dist', 'src', 'eval', 'llamacpp-child.js');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new LlamaCppError('LLAMACPP_CHILD_MISSING', `cannot find llamacpp-child.js beside ${here} or in dist/ (run npm run build)`);
}

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new LlamaCppError('LLAMACPP_BAD_OPTION', `${name} must be a positive integer, got ${v}`);
  return v;
}

export class LlamaCppEngine {
  private readonly child: ChildProcess;
  private readonly stderrTail: string[];
  private engineInfo: EngineInfo;
  private readonly options: LlamaCppEngineOptions;
  private readonly pending = new Map<number, Pending>();
  private readonly logTail: string[] = [];
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private exitError: LlamaCppError | undefined;
  private model: ModelInfo | undefined;

  private constructor(child: ChildProcess, options: LlamaCppEngineOptions, stderrTail: string[], threads: number) {
    this.child = child;
    this.options = options;
    this.stderrTail = stderrTail;
    this.engineInfo = { gpu: false, threads };
    child.on('message', (m: ChildMessage) => this.onMessage(m));
    child.on('exit', (code, signal) => this.onExit(code, signal));
  }

  /** What the child reported at start: the GPU kind in use (false for CPU) and threads. */
  get info(): EngineInfo {
    return this.engineInfo;
  }

  /** Starts the child process and llama.cpp in it (prebuilt binaries only, never a build). */
  static async start(options: LlamaCppEngineOptions = {}): Promise<LlamaCppEngine> {
    const threads = positiveInt('options.threads', options.threads, defaultLlamaThreads());
    positiveInt('options.sequences', options.sequences, 1);
    positiveInt('options.contextSize', options.contextSize, 1);
    positiveInt('options.batchSize', options.batchSize, 1);
    const child = fork(childEntry(), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
    });
    const stderrTail: string[] = [];
    const keep = (chunk: Buffer): void => {
      stderrTail.push(...chunk.toString('utf8').split('\n').filter((l) => l.trim() !== ''));
      stderrTail.splice(0, Math.max(0, stderrTail.length - LOG_TAIL));
    };
    child.stderr?.on('data', keep);
    child.stdout?.on('data', keep);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: ChildMessage): void => {
        if (m.kind !== 'ready') return;
        child.off('exit', onExit);
        child.off('message', onMessage);
        resolve();
      };
      const onExit = (code: number | null, signal: string | null): void => {
        reject(new LlamaCppError('LLAMACPP_CRASHED', `llama.cpp child exited (${signal ?? `code ${code}`}) before it was ready: ${stderrTail.join(' | ')}`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    const engine = new LlamaCppEngine(child, options, stderrTail, threads);
    try {
      engine.engineInfo = await engine.send('init', { threads, gpu: options.gpu ?? 'auto' });
    } catch (err) {
      child.kill();
      throw err;
    }
    return engine;
  }

  private onMessage(m: ChildMessage): void {
    if (m.kind === 'log') {
      this.logTail.push(m.message);
      this.logTail.splice(0, Math.max(0, this.logTail.length - LOG_TAIL));
      this.options.logger?.(m.level, m.message);
      return;
    }
    if (m.kind !== 'reply') return;
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else {
      const logs = m.error.code === 'LLAMACPP_FAILED' && this.logTail.length > 0 ? ` (llama.cpp: ${this.logTail.slice(-3).join(' | ')})` : '';
      p.reject(new LlamaCppError(m.error.code, `${p.op}: ${m.error.message}${logs}`));
    }
  }

  private onExit(code: number | null, signal: string | null): void {
    const tail = [...this.logTail.slice(-3), ...this.stderrTail.slice(-3)].join(' | ');
    const what = this.model === undefined ? '' : ` with ${this.model.modelPath} loaded`;
    this.exitError = new LlamaCppError('LLAMACPP_CRASHED', `llama.cpp child exited (${signal ?? `code ${code}`})${what}${tail ? `: ${tail}` : ''}`);
    for (const p of this.pending.values()) p.reject(this.exitError);
    this.pending.clear();
  }

  private send<K extends ChildOp>(op: K, params: ChildOps[K]['params']): Promise<ChildOps[K]['result']> {
    if (this.exitError !== undefined) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise<ChildOps[K]['result']>((resolve, reject) => {
      this.pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, params }, (err) => {
        if (!err || !this.pending.delete(id)) return;
        // The IPC channel is gone, so the child is too; its 'exit' event may come later, and
        // until then `closed` must already say so and later calls fail at once.
        const lost = new LlamaCppError('LLAMACPP_CRASHED', `${op}: cannot reach the llama.cpp child (${err.message})`);
        this.exitError ??= lost;
        reject(lost);
      });
    });
  }

  /** Operations run one after another, in call order. */
  private call<K extends ChildOp>(op: K, params: ChildOps[K]['params']): Promise<ChildOps[K]['result']> {
    const run = this.queue.then(() => this.send(op, params));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Process id of the llama.cpp child (for diagnostics and resource accounting). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the child process has exited (after close() or a crash). */
  get closed(): boolean {
    return this.exitError !== undefined;
  }

  /** The loaded model, if any. */
  get loadedModel(): ModelInfo | undefined {
    return this.model;
  }

  /** Loads a GGUF model (replacing any loaded one) and creates its context and sequences. */
  async loadModel(ggufPath: string): Promise<ModelInfo> {
    this.model = undefined;
    this.model = await this.call('load', {
      modelPath: path.resolve(ggufPath),
      contextSize: this.options.contextSize ?? 0,
      sequences: this.options.sequences ?? 4,
      batchSize: this.options.batchSize ?? 0,
      kvCacheType: this.options.kvCacheType ?? 'f16',
      flashAttention: this.options.flashAttention ?? 'auto',
    });
    return this.model;
  }

  /** Frees the loaded model. */
  async unloadModel(): Promise<void> {
    await this.call('unload', {});
    this.model = undefined;
  }

  /**
   * Log-likelihood of each continuation given its context, lm-eval style: the context's trailing
   * whitespace moves to the continuation, the continuation's tokens are those of
   * tokenize(context + continuation) past tokenize(context), BOS is prepended when the model
   * asks for it, and each request is one decode (cached context prefixes are reused).
   */
  loglikelihood(requests: readonly LoglikelihoodRequest[]): Promise<LoglikelihoodResult[]> {
    return this.call('loglikelihood', { requests });
  }

  /** Greedy generation from each prompt, until EOG, a stop string (cut off) or maxTokens. */
  async generate(requests: readonly GenerateRequest[]): Promise<GenerateResult[]> {
    requests.forEach((r, i) => positiveInt(`requests[${i}].maxTokens`, r.maxTokens, 1));
    return this.call('generate', { requests });
  }

  /** Token ids of `text` (no BOS, special-token text not parsed). */
  tokenize(text: string): Promise<number[]> {
    return this.call('tokenize', { text });
  }

  detokenize(tokens: readonly number[]): Promise<string> {
    return this.call('detokenize', { tokens });
  }

  /**
   * Debug/verification: full next-token logits after each position of each token list, evaluated
   * from an empty cache exactly as given (no BOS added). Returns [request][position][vocab].
   */
  evaluateLogits(tokenLists: readonly (readonly number[])[]): Promise<Float32Array[][]> {
    return this.call('logits', { requests: tokenLists.map((tokens) => ({ tokens })) });
  }

  /** Frees the model and llama.cpp, and ends the child process. */
  async close(): Promise<void> {
    if (this.exitError !== undefined) {
      // Unreachable but maybe not yet gone (its channel failed first): make sure it ends.
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
      return;
    }
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    // A child stuck in a long decode may never answer 'close': give it 5 s, then stop it, and
    // SIGKILL it 5 s after that, so closing an engine can never hang its caller.
    let answerTimer: NodeJS.Timeout | undefined;
    const noAnswer = new Promise<'timeout'>((resolve) => {
      answerTimer = setTimeout(() => resolve('timeout'), 5000);
    });
    try {
      const answer = await Promise.race([this.call('close', {}).then(() => 'closed' as const), noAnswer, exited.then(() => 'exited' as const)]);
      if (answer === 'timeout') this.child.kill();
    } catch {
      this.child.kill();
    } finally {
      clearTimeout(answerTimer);
    }
    const killTimer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killTimer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
