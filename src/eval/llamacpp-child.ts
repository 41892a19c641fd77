/**
 * The process that loads llama.cpp (through node-llama-cpp) for LlamaCppEngine. It runs apart
 * from the evomerge process because llama.cpp aborts the whole process on some malformed GGUF
 * files; here that only ends this child. It answers ChildRequest messages over the IPC channel.
 */
import { GgmlType, LlamaLogLevel, getLlama } from 'node-llama-cpp';
import type { ControlledEvaluateInputItem, Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import type {
  ChildInitParams,
  ChildLoadParams,
  ChildMessage,
  ChildOp,
  ChildOps,
  ChildRequest,
  EngineInfo,
  GenerateRequest,
  GenerateResult,
  LlamaCppLogLevel,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ModelInfo,
} from './llamacpp-protocol.js';

class ChildError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

interface Loaded {
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly sequences: readonly LlamaContextSequence[];
  readonly info: ModelInfo;
}

let llama: Llama | undefined;
let threads = 1;
let loaded: Loaded | undefined;

function send(message: ChildMessage): void {
  process.send?.(message);
}

function logLevel(level: LlamaLogLevel): LlamaCppLogLevel {
  switch (level) {
    case LlamaLogLevel.fatal:
    case LlamaLogLevel.error:
      return 'error';
    case LlamaLogLevel.warn:
      return 'warn';
    case LlamaLogLevel.info:
    case LlamaLogLevel.log:
      return 'info';
    default:
      return 'debug';
  }
}

async function init(params: ChildInitParams): Promise<EngineInfo> {
  if (llama !== undefined) throw new ChildError('LLAMACPP_STATE', 'llama.cpp is already initialised');
  threads = params.threads;
  llama = await getLlama({
    gpu: params.gpu,
    build: 'never',
    skipDownload: true,
    progressLogs: false,
    maxThreads: params.threads,
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => send({ kind: 'log', level: logLevel(level), message: message.trimEnd() }),
  });
  return { gpu: llama.gpu, threads: params.threads };
}

function requireLoaded(): Loaded {
  if (loaded === undefined) throw new ChildError('LLAMACPP_NO_MODEL', 'no model is loaded (call loadModel first)');
  return loaded;
}

async function unload(): Promise<void> {
  const l = loaded;
  loaded = undefined;
  if (l === undefined) return;
  await l.context.dispose();
  await l.model.dispose();
}

async function load(params: ChildLoadParams): Promise<ModelInfo> {
  if (llama === undefined) throw new ChildError('LLAMACPP_STATE', 'llama.cpp is not initialised');
  await unload();
  const model = await llama.loadModel({ modelPath: params.modelPath, gpuLayers: llama.gpu === false ? 0 : 'max' });
  try {
    const contextSize = params.contextSize > 0 ? params.contextSize : Math.min(2048, model.trainContextSize);
    const kv = params.kvCacheType === 'f32' ? GgmlType.F32 : GgmlType.F16;
    const context = await model.createContext({
      contextSize,
      sequences: params.sequences,
      threads: { ideal: threads, min: threads },
      experimentalKvCacheKeyType: kv,
      experimentalKvCacheValueType: kv,
      flashAttention: params.flashAttention,
      ...(params.batchSize > 0 ? { batchSize: params.batchSize } : {}),
    });
    const sequences: LlamaContextSequence[] = [];
    for (let i = 0; i < params.sequences; i++) sequences.push(context.getSequence());
    const info: ModelInfo = {
      modelPath: params.modelPath,
      contextSize: context.contextSize,
      trainContextSize: model.trainContextSize,
      sequences: params.sequences,
      gpuLayers: model.gpuLayers,
      bos: model.tokens.bos,
      eos: model.tokens.eos,
      addBos: model.tokens.shouldPrependBosToken,
    };
    loaded = { model, context, sequences, info };
    return info;
  } catch (err) {
    await model.dispose();
    throw err;
  }
}

/** The tokens every input starts with: BOS when the model asks for it. */
function prefixTokens(l: Loaded): Token[] {
  return l.info.addBos && l.info.bos !== null ? [l.info.bos as Token] : [];
}

/**
 * Brings a sequence's KV cache to `tokens[0 .. keep)`, reusing the longest cached prefix, and
 * returns `keep`: the caller evaluates `tokens.slice(keep)`. `mustEvaluateFrom` is the first index
 * whose logits are needed, so it is never served from the cache.
 */
async function reusePrefix(seq: LlamaContextSequence, tokens: readonly Token[], mustEvaluateFrom: number): Promise<number> {
  const { firstDifferentIndex } = seq.compareContextTokens([...tokens]);
  const keep = Math.max(0, Math.min(firstDifferentIndex, mustEvaluateFrom));
  if (keep < seq.nextTokenIndex) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
  return seq.nextTokenIndex;
}

/** Runs `work` over items grouped by key, one group at a time per sequence, all sequences in parallel. */
async function overSequences<T, R>(l: Loaded, items: readonly T[], key: (item: T) => string, work: (seq: LlamaContextSequence, item: T) => Promise<R>): Promise<R[]> {
  const groups = new Map<string, number[]>();
  items.forEach((item, i) => {
    const k = key(item);
    const g = groups.get(k);
    if (g === undefined) groups.set(k, [i]);
    else g.push(i);
  });
  const queue = [...groups.values()];
  const results: R[] = new Array<R>(items.length);
  await Promise.all(
    l.sequences.map(async (seq) => {
      for (let g = queue.shift(); g !== undefined; g = queue.shift()) {
        for (const i of g) results[i] = await work(seq, items[i] as T);
      }
    }),
  );
  return results;
}

/** lm-eval moves the context's trailing whitespace onto the continuation before tokenizing. */
function splitTrailingWhitespace(context: string, continuation: string): [string, string] {
  const m = /\s+$/.exec(context);
  if (m === null) return [context, continuation];
  return [context.slice(0, m.index), m[0] + continuation];
}

async function scoreOne(l: Loaded, seq: LlamaContextSequence, req: LoglikelihoodRequest): Promise<LoglikelihoodResult> {
  const [context, continuation] = splitTrailingWhitespace(req.context, req.continuation);
  const contextTokens = l.model.tokenize(context, false);
  const whole = l.model.tokenize(context + continuation, false);
  const cont = whole.slice(contextTokens.length);
  if (cont.length === 0) return { logprob: 0, greedy: true, tokens: 0 };
  let prefix = prefixTokens(l);
  if (prefix.length === 0 && contextTokens.length === 0) {
    const start = l.info.eos ?? l.info.bos;
    if (start === null) throw new ChildError('LLAMACPP_NO_PREFIX', 'empty context and the model has neither BOS nor EOS to condition on');
    prefix = [start as Token];
  }
  let input = [...prefix, ...contextTokens, ...cont];
  // Keep the last contextSize tokens (lm-eval truncates on the left the same way).
  if (input.length > l.info.contextSize) input = input.slice(input.length - l.info.contextSize);
  if (cont.length >= input.length) throw new ChildError('LLAMACPP_TOO_LONG', `continuation of ${cont.length} tokens does not fit the context of ${l.info.contextSize}`);
  const first = input.length - cont.length - 1; // position whose logits predict cont[0]
  const keep = await reusePrefix(seq, input, first);
  const items: ControlledEvaluateInputItem[] = input.slice(keep).map((token, j) => {
    const i = keep + j;
    if (i < first || i >= input.length - 1) return token;
    const target = input[i + 1] as Token;
    return [token, { generateNext: { logits: { filter: { tokens: [target], includeTop: 1 } }, totalLogitWeight: true } }];
  });
  const out = await seq.controlledEvaluate(items);
  let logprob = 0;
  let greedy = true;
  for (let i = first; i < input.length - 1; i++) {
    const next = out[i - keep]?.next;
    const target = input[i + 1] as Token;
    const logits = next?.logits;
    const total = next?.totalLogitWeight;
    const top = logits?.entries().next().value;
    const targetLogit = logits?.get(target);
    if (logits === undefined || total === undefined || top === undefined || targetLogit === undefined) {
      throw new ChildError('LLAMACPP_NO_LOGITS', `llama.cpp returned no logits for position ${i}`);
    }
    // log softmax: logit - max - log Σ exp(logit - max)
    logprob += targetLogit - top[1] - Math.log(total);
    if (top[0] !== target && top[1] > targetLogit) greedy = false;
  }
  return { logprob, greedy, tokens: cont.length };
}

function firstStop(text: string, stop: readonly string[]): number | undefined {
  let cut: number | undefined;
  for (const s of stop) {
    if (s.length === 0) continue;
    const i = text.indexOf(s);
    if (i >= 0 && (cut === undefined || i < cut)) cut = i;
  }
  return cut;
}

async function generateOne(l: Loaded, seq: LlamaContextSequence, req: GenerateRequest): Promise<GenerateResult> {
  const input = [...prefixTokens(l), ...l.model.tokenize(req.prompt, false)];
  if (input.length === 0) throw new ChildError('LLAMACPP_EMPTY_PROMPT', 'empty prompt and the model adds no BOS');
  if (input.length >= l.info.contextSize) throw new ChildError('LLAMACPP_TOO_LONG', `prompt of ${input.length} tokens does not fit the context of ${l.info.contextSize}`);
  const maxTokens = Math.min(req.maxTokens, l.info.contextSize - input.length);
  if (maxTokens <= 0) return { text: '', tokens: 0, finish: 'length' };
  const keep = await reusePrefix(seq, input, input.length - 1);
  const generated: Token[] = [];
  const lastPromptTokens = input.slice(-8);
  let text = '';
  let finish: GenerateResult['finish'] = 'length';
  for await (const token of seq.evaluate(input.slice(keep), { temperature: 0 })) {
    if (l.model.isEogToken(token)) {
      finish = 'eog';
      break;
    }
    generated.push(token);
    text = l.model.detokenize(generated, false, lastPromptTokens);
    const cut = firstStop(text, req.stop);
    if (cut !== undefined) {
      text = text.slice(0, cut);
      finish = 'stop';
      break;
    }
    if (generated.length >= maxTokens) break;
  }
  return { text, tokens: generated.length, finish };
}

async function logits(l: Loaded, tokens: readonly number[]): Promise<Float32Array[]> {
  const seq = l.sequences[0];
  if (seq === undefined) throw new ChildError('LLAMACPP_STATE', 'no sequence');
  if (tokens.length === 0) return [];
  await seq.clearHistory();
  const out = await seq.controlledEvaluate(tokens.map((t) => [t as Token, { generateNext: { logits: true } }]));
  return tokens.map((_, i) => {
    const map = out[i]?.next.logits;
    if (map === undefined) throw new ChildError('LLAMACPP_NO_LOGITS', `llama.cpp returned no logits for position ${i}`);
    const dense = new Float32Array(map.size);
    for (const [token, value] of map) dense[token] = value;
    return dense;
  });
}

type Handlers = { [K in ChildOp]: (params: ChildOps[K]['params']) => Promise<ChildOps[K]['result']> };

const handlers: Handlers = {
  init,
  load,
  unload: async () => {
    await unload();
    return null;
  },
  tokenize: async ({ text }) => requireLoaded().model.tokenize(text, false),
  detokenize: async ({ tokens }) => requireLoaded().model.detokenize(tokens as Token[], false),
  loglikelihood: async ({ requests }) => {
    const l = requireLoaded();
    return overSequences(l, requests, (r) => r.context, (seq, r) => scoreOne(l, seq, r));
  },
  generate: async ({ requests }) => {
    const l = requireLoaded();
    return overSequences(l, requests, (r) => r.prompt, (seq, r) => generateOne(l, seq, r));
  },
  logits: async ({ requests }) => {
    const l = requireLoaded();
    const results: Float32Array[][] = [];
    for (const r of requests) results.push(await logits(l, r.tokens));
    return results;
  },
  close: async () => {
    await unload();
    await llama?.dispose();
    llama = undefined;
    setImmediate(() => process.exit(0));
    return null;
  },
};

async function handle(request: ChildRequest): Promise<unknown> {
  const handler = handlers[request.op] as (params: unknown) => Promise<unknown>;
  return handler(request.params);
}

process.on('message', (message: ChildRequest) => {
  handle(message).then(
    (result) => send({ kind: 'reply', id: message.id, ok: true, result }),
    (err: unknown) => {
      const code = err instanceof ChildError ? err.code : 'LLAMACPP_FAILED';
      const text = err instanceof Error ? err.message : String(err);
      send({ kind: 'reply', id: message.id, ok: false, error: { code, message: text } });
    },
  );
});
// The parent going away (crash, kill) closes the channel: leave with it.
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready' });
