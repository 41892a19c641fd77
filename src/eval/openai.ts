import { BackendCounters, BackendError, throwIfAborted } from './backend.js';
import { runShellCommand } from './command.js';
import { fillJson, fillTemplate, placeholdersIn, shellQuote } from './placeholders.js';
import type { BackendStats, GenerateRequest, GenerateResult, InferenceBackend, LoglikelihoodRequest, LoglikelihoodResult, ModelRef } from './types.js';

/**
 * InferenceBackend over an OpenAI-compatible server (vLLM, SGLang, llama.cpp's llama-server,
 * ...), through the legacy /v1/completions endpoint:
 *
 * - generate: `{prompt, max_tokens, temperature: 0, stop}` (greedy). Every server above does this.
 * - loglikelihood, `logprobs: 'echo'` (default): `{prompt: context + continuation, echo: true,
 *   logprobs: 1, max_tokens: 1}`; the continuation's tokens are those whose `text_offset` lies at
 *   or after the end of the context, and their `token_logprobs` are summed. This is OpenAI's
 *   legacy echo, served by vLLM; llama-server rejects `echo` (its completions return logprobs of
 *   generated tokens only), so multiple-choice tasks need the llamacpp backend there.
 * - loglikelihood, `logprobs: 'prompt_logprobs'` (vLLM's extension): the context and the whole
 *   text are tokenized with vLLM's POST /tokenize, the whole token list is sent as the prompt with
 *   `prompt_logprobs: 1`, and the continuation's tokens are the whole list past the context's
 *   (exactly lm-eval's split); `rank === 1` marks a greedy token.
 * - `logprobs: 'none'`: loglikelihood throws (generation-only tasks still work).
 *
 * Per-candidate weights: `reload` is a URL to POST (e.g. SGLang's /update_weights_from_disk with
 * {"model_path": "{model_dir}"}) or a shell command (e.g. restart a llama-server on {gguf});
 * without it, the backend serves one model and refuses to switch to another.
 */

export type OpenAiLogprobsMode = 'echo' | 'prompt_logprobs' | 'none';

export type OpenAiReload =
  | {
      /** URL to call, placeholders allowed ({model_dir}, {gguf}, {id}). */
      readonly url: string;
      /** Default: 'POST'. */
      readonly method?: 'POST' | 'PUT' | 'GET';
      /** JSON body, placeholders allowed in its strings. Default: {"model_path": "{model_dir}"}. */
      readonly body?: unknown;
    }
  | {
      /** Shell command, placeholders shell-quoted; it must return once the server serves the new weights. */
      readonly command: string;
    };

export interface OpenAiBackendOptions {
  /** Server root or its /v1 URL, e.g. http://127.0.0.1:8000. */
  readonly baseUrl: string;
  /** Model name sent with requests ({model_dir}, {id} allowed). Default: the first id of GET /v1/models. */
  readonly model?: string;
  /** Bearer token. Default: $OPENAI_API_KEY when set, else none. */
  readonly apiKey?: string;
  /** How log-likelihoods are obtained. Default: 'echo'. */
  readonly logprobs?: OpenAiLogprobsMode;
  /** Requests in flight at once. Default: 8. */
  readonly concurrency?: number;
  /** Per-request timeout in milliseconds. Default: 600000. */
  readonly timeoutMs?: number;
  /** How to make the server load a candidate. Default: none. */
  readonly reload?: OpenAiReload;
  /** Reload timeout in milliseconds. Default: 1800000. */
  readonly reloadTimeoutMs?: number;
  /** Default: globalThis.fetch. */
  readonly fetch?: typeof fetch;
}

interface CompletionChoice {
  readonly text?: unknown;
  readonly finish_reason?: unknown;
  readonly logprobs?: {
    readonly tokens?: unknown;
    readonly token_logprobs?: unknown;
    readonly top_logprobs?: unknown;
    readonly text_offset?: unknown;
  } | null;
  readonly prompt_logprobs?: unknown;
}

function firstStop(text: string, stop: readonly string[]): number {
  let cut = text.length;
  for (const s of stop) {
    const i = s === '' ? -1 : text.indexOf(s);
    if (i >= 0 && i < cut) cut = i;
  }
  return cut;
}

/** lm-eval moves the context's trailing whitespace onto the continuation. */
function splitTrailingWhitespace(context: string, continuation: string): [string, string] {
  const m = /\s+$/.exec(context);
  return m === null ? [context, continuation] : [context.slice(0, m.index), m[0] + continuation];
}

/** Length in code points (OpenAI's text_offset counts characters, not UTF-16 units). */
function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

async function pool<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await work(items[i] as T, i);
    }),
  );
  return out;
}

export class OpenAiBackend implements InferenceBackend {
  readonly name = 'openai';
  readonly needs: 'gguf' | 'hf-dir';
  private readonly options: OpenAiBackendOptions;
  private readonly root: string;
  private readonly v1: string;
  private readonly doFetch: typeof fetch;
  private readonly counters = new BackendCounters();
  private model: ModelRef | undefined;
  private modelName: string | undefined;

  constructor(options: OpenAiBackendOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new BackendError('BAD_BACKEND_OPTION', `openai: baseUrl must be a URL such as http://127.0.0.1:8000, got ${JSON.stringify(options.baseUrl)}`);
    }
    const root = url.href.replace(/\/+$/, '').replace(/\/v1$/, '');
    this.root = root;
    this.v1 = `${root}/v1`;
    this.options = options;
    this.doFetch = options.fetch ?? globalThis.fetch;
    const mode = options.logprobs ?? 'echo';
    if (!['echo', 'prompt_logprobs', 'none'].includes(mode)) throw new BackendError('BAD_BACKEND_OPTION', `openai: logprobs must be echo, prompt_logprobs or none, got ${JSON.stringify(mode)}`);
    const c = options.concurrency ?? 8;
    if (!Number.isSafeInteger(c) || c < 1) throw new BackendError('BAD_BACKEND_OPTION', `openai: concurrency must be a positive integer, got ${c}`);
    const reload = options.reload;
    const templates = reload === undefined ? [] : 'command' in reload ? [reload.command] : [reload.url, JSON.stringify(reload.body ?? {})];
    this.needs = templates.some((t) => placeholdersIn(t).includes('gguf')) ? 'gguf' : 'hf-dir';
  }

  private headers(): Record<string, string> {
    const key = this.options.apiKey ?? process.env.OPENAI_API_KEY;
    return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
  }

  private async call(url: string, init: { method: string; body?: unknown }, signal: AbortSignal | undefined, timeoutMs: number): Promise<unknown> {
    const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
    let res: Response;
    try {
      res = await this.doFetch(url, {
        method: init.method,
        headers: this.headers(),
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      throw new BackendError('OPENAI_UNREACHABLE', `openai: ${init.method} ${url} failed: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.text();
    if (!res.ok) throw new BackendError('OPENAI_HTTP', `openai: ${init.method} ${url} answered HTTP ${res.status}: ${text.slice(0, 300)}`);
    try {
      return text === '' ? null : (JSON.parse(text) as unknown);
    } catch {
      throw new BackendError('OPENAI_REPLY', `openai: ${init.method} ${url} answered with non-JSON: ${text.slice(0, 120)}`);
    }
  }

  private post(pathOrUrl: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    return this.call(pathOrUrl, { method: 'POST', body }, signal, this.options.timeoutMs ?? 600_000);
  }

  private values(model: ModelRef): Record<string, string> {
    return { model_dir: model.dir, gguf: model.gguf ?? '', id: model.id };
  }

  /** The model name to send: the option (filled in), else the server's first model. */
  private async servedModel(signal?: AbortSignal): Promise<string> {
    if (this.modelName !== undefined) return this.modelName;
    if (this.options.model !== undefined) {
      this.modelName = this.model === undefined ? this.options.model : fillTemplate(this.options.model, this.values(this.model), 'openai: model');
      return this.modelName;
    }
    const list = (await this.call(`${this.v1}/models`, { method: 'GET' }, signal, this.options.timeoutMs ?? 600_000)) as { data?: { id?: unknown }[] } | null;
    const id = list?.data?.[0]?.id;
    if (typeof id !== 'string') throw new BackendError('OPENAI_REPLY', `openai: GET ${this.v1}/models lists no model; set the backend's model`);
    this.modelName = id;
    return id;
  }

  async useModel(model: ModelRef, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal, `load ${model.id}`);
    const reload = this.options.reload;
    if (reload === undefined) {
      if (this.model !== undefined && this.model.dir !== model.dir) {
        throw new BackendError('OPENAI_NO_RELOAD', `openai: the server cannot switch from ${this.model.dir} to ${model.dir}: configure reload (a URL such as SGLang's /update_weights_from_disk, or a command)`);
      }
    } else if ('command' in reload) {
      await runShellCommand(fillTemplate(reload.command, this.values(model), 'openai: reload.command', shellQuote), {
        timeoutMs: this.options.reloadTimeoutMs ?? 1_800_000,
        ...(signal === undefined ? {} : { signal }),
      });
    } else {
      const url = fillTemplate(reload.url, this.values(model), 'openai: reload.url');
      const body = fillJson(reload.body ?? { model_path: '{model_dir}' }, this.values(model), 'openai: reload.body');
      const method = reload.method ?? 'POST';
      const reply = (await this.call(url, method === 'GET' ? { method } : { method, body }, signal, this.options.reloadTimeoutMs ?? 1_800_000)) as { success?: unknown; message?: unknown } | null;
      // SGLang answers 200 with {"success": false, "message": ...} when the load fails.
      if (reply !== null && reply.success === false) throw new BackendError('OPENAI_RELOAD', `openai: ${method} ${url} did not load ${model.dir}: ${String(reply.message ?? 'success: false')}`);
    }
    this.model = model;
    this.modelName = undefined;
  }

  async generate(requests: readonly GenerateRequest[], signal?: AbortSignal): Promise<GenerateResult[]> {
    throwIfAborted(signal, 'generate');
    const model = await this.servedModel(signal);
    const out = await pool(requests, this.options.concurrency ?? 8, async (r) => {
      const body = { model, prompt: r.prompt, max_tokens: r.maxTokens, temperature: 0, ...(r.stop.length > 0 ? { stop: r.stop } : {}) };
      const reply = (await this.post(`${this.v1}/completions`, body, signal)) as { choices?: CompletionChoice[]; usage?: { completion_tokens?: unknown } } | null;
      const choice = reply?.choices?.[0];
      if (typeof choice?.text !== 'string') throw new BackendError('OPENAI_REPLY', `openai: POST ${this.v1}/completions returned no choices[0].text`);
      // Servers drop the stop string; cut again in case one returns it.
      const cut = firstStop(choice.text, r.stop);
      const tokens = typeof reply?.usage?.completion_tokens === 'number' ? reply.usage.completion_tokens : 0;
      const finish: GenerateResult['finish'] = cut < choice.text.length || choice.finish_reason === 'stop' ? 'stop' : choice.finish_reason === 'length' ? 'length' : 'eog';
      return { text: choice.text.slice(0, cut), tokens, finish };
    });
    this.counters.generateRequests += out.length;
    for (const r of out) this.counters.generatedTokens += r.tokens;
    return out;
  }

  async loglikelihood(requests: readonly LoglikelihoodRequest[], signal?: AbortSignal): Promise<LoglikelihoodResult[]> {
    throwIfAborted(signal, 'loglikelihood');
    const mode = this.options.logprobs ?? 'echo';
    if (mode === 'none') {
      throw new BackendError('OPENAI_NO_LOGPROBS', 'openai: this backend was configured with logprobs: none, so it cannot score multiple-choice tasks; use logprobs: echo or prompt_logprobs (vLLM), or the llamacpp backend');
    }
    const model = await this.servedModel(signal);
    const tokenized = new Map<string, Promise<number[]>>();
    const out = await pool(requests, this.options.concurrency ?? 8, (r) =>
      mode === 'echo' ? this.echoLoglikelihood(model, r, signal) : this.promptLogprobsLoglikelihood(model, r, tokenized, signal),
    );
    this.counters.loglikelihoodRequests += out.length;
    for (const r of out) this.counters.scoredTokens += r.tokens;
    return out;
  }

  private async echoLoglikelihood(model: string, req: LoglikelihoodRequest, signal?: AbortSignal): Promise<LoglikelihoodResult> {
    const [context, continuation] = splitTrailingWhitespace(req.context, req.continuation);
    const prompt = context + continuation;
    const body = { model, prompt, max_tokens: 1, temperature: 0, echo: true, logprobs: 1 };
    const url = `${this.v1}/completions`;
    const reply = (await this.post(url, body, signal)) as { choices?: CompletionChoice[] } | null;
    const lp = reply?.choices?.[0]?.logprobs;
    const tokens = lp?.tokens;
    const logprobs = lp?.token_logprobs;
    const offsets = lp?.text_offset;
    const tops = lp?.top_logprobs;
    if (!Array.isArray(tokens) || !Array.isArray(logprobs) || !Array.isArray(offsets)) {
      throw new BackendError('OPENAI_NO_LOGPROBS', `openai: POST ${url} with echo + logprobs returned no logprobs.tokens / token_logprobs / text_offset; this server does not support echo (try logprobs: prompt_logprobs on vLLM, or the llamacpp backend)`);
    }
    const boundary = codePoints(context);
    const end = codePoints(prompt);
    let sum = 0;
    let n = 0;
    let greedy = true;
    for (let i = 0; i < tokens.length; i++) {
      const start = offsets[i];
      const token = tokens[i];
      if (typeof start !== 'number' || typeof token !== 'string') throw new BackendError('OPENAI_REPLY', `openai: POST ${url}: logprobs entry ${i} is malformed`);
      // Continuation tokens: those ending past the context and starting inside the prompt (not the generated one).
      if (start >= end || start + codePoints(token) <= boundary) continue;
      const value = logprobs[i];
      if (typeof value !== 'number') throw new BackendError('OPENAI_REPLY', `openai: POST ${url}: no log-probability for prompt token ${i} (${JSON.stringify(token)}); an empty context cannot be scored with echo`);
      sum += value;
      n++;
      const top = Array.isArray(tops) ? (tops[i] as Record<string, number> | null | undefined) : undefined;
      if (top) {
        const best = Math.max(...Object.values(top));
        if (best > value + 1e-6) greedy = false;
      }
    }
    if (n === 0 && continuation.length > 0) throw new BackendError('OPENAI_REPLY', `openai: POST ${url}: found no continuation tokens after character ${boundary}`);
    return { logprob: sum, greedy, tokens: n };
  }

  private tokenize(text: string, model: string, cache: Map<string, Promise<number[]>>, signal?: AbortSignal): Promise<number[]> {
    let p = cache.get(text);
    if (p === undefined) {
      p = (async () => {
        const url = `${this.root}/tokenize`;
        const reply = (await this.post(url, { model, prompt: text }, signal)) as { tokens?: unknown } | null;
        if (!Array.isArray(reply?.tokens) || reply.tokens.some((t) => typeof t !== 'number')) throw new BackendError('OPENAI_REPLY', `openai: POST ${url} returned no token list (prompt_logprobs mode needs vLLM's /tokenize)`);
        return reply.tokens as number[];
      })();
      cache.set(text, p);
    }
    return p;
  }

  private async promptLogprobsLoglikelihood(model: string, req: LoglikelihoodRequest, cache: Map<string, Promise<number[]>>, signal?: AbortSignal): Promise<LoglikelihoodResult> {
    const [context, continuation] = splitTrailingWhitespace(req.context, req.continuation);
    const ctx = await this.tokenize(context, model, cache, signal);
    const whole = await this.tokenize(context + continuation, model, cache, signal);
    const cont = whole.slice(ctx.length);
    if (cont.length === 0) return { logprob: 0, greedy: true, tokens: 0 };
    if (ctx.length === 0) throw new BackendError('OPENAI_REPLY', 'openai: prompt_logprobs cannot score a continuation with no context tokens before it');
    const url = `${this.v1}/completions`;
    const reply = (await this.post(url, { model, prompt: whole, max_tokens: 1, temperature: 0, prompt_logprobs: 1 }, signal)) as { choices?: CompletionChoice[] } | null;
    const entries = reply?.choices?.[0]?.prompt_logprobs;
    if (!Array.isArray(entries) || entries.length < whole.length) throw new BackendError('OPENAI_NO_LOGPROBS', `openai: POST ${url} with prompt_logprobs returned no prompt_logprobs for the ${whole.length} prompt tokens (is this vLLM?)`);
    let sum = 0;
    let greedy = true;
    for (let i = ctx.length; i < whole.length; i++) {
      const entry = entries[i] as Record<string, { logprob?: unknown; rank?: unknown }> | null;
      const hit = entry?.[String(whole[i])];
      if (typeof hit?.logprob !== 'number') throw new BackendError('OPENAI_REPLY', `openai: POST ${url}: prompt_logprobs[${i}] lacks token ${whole[i]}`);
      sum += hit.logprob;
      if (hit.rank !== 1) greedy = false;
    }
    return { logprob: sum, greedy, tokens: cont.length };
  }

  stats(): BackendStats {
    return this.counters.snapshot();
  }

  async close(): Promise<void> {
    this.model = undefined;
  }
}
