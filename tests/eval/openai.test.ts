import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MmluEvaluator } from '../../evaluators/mmlu.js';
import { OpenAiBackend } from '../../src/eval/openai.js';

/**
 * OpenAiBackend against a small OpenAI-compatible server started on 127.0.0.1 (we cannot run
 * vLLM or SGLang here: this is the one thing mocked). The server's "model" is character-level:
 * each character is a token (id = code point, BOS = 1), the log-probability of character c after
 * character p is −((p + 3c) mod 17 + 1)/10, and the model's favourite token is always "e".
 */

const lp = (prev: number, cur: number): number => -(((prev + 3 * cur) % 17) + 1) / 10;
const E = 'e'.codePointAt(0) ?? 0;

/** Independent expectation: the continuation's characters, each after its predecessor. */
function expected(context: string, continuation: string): { logprob: number; tokens: number; greedy: boolean } {
  const whole = [...(context + continuation)].map((c) => c.codePointAt(0) ?? 0);
  const start = [...context].length;
  let logprob = 0;
  let greedy = true;
  for (let i = start; i < whole.length; i++) {
    logprob += lp(whole[i - 1] ?? 1, whole[i] ?? 0);
    greedy &&= whole[i] === E;
  }
  return { logprob, tokens: whole.length - start, greedy };
}

interface Seen {
  completions: Record<string, unknown>[];
  reloads: unknown[];
  tokenize: number;
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

function handler(seen: Seen, options: { dropsStop: boolean }) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    if (req.method === 'GET' && req.url === '/v1/models') return send(200, { object: 'list', data: [{ id: 'served-model' }] });
    const b = await body(req);
    if (req.url === '/update_weights_from_disk') {
      seen.reloads.push(b);
      return send(200, String(b.model_path).includes('broken') ? { success: false, message: 'cannot load weights' } : { success: true, message: 'ok' });
    }
    if (req.url === '/tokenize') {
      seen.tokenize++;
      return send(200, { tokens: [1, ...[...String(b.prompt)].map((c) => c.codePointAt(0) ?? 0)], count: 0 });
    }
    if (req.url !== '/v1/completions') return send(404, { error: 'not found' });
    seen.completions.push(b);
    if (b.model !== 'served-model') return send(404, { error: `model ${String(b.model)} not found` });
    if (typeof b.prompt === 'string' && b.prompt.includes('FAIL')) return send(500, { error: 'internal error' });
    if (b.prompt_logprobs !== undefined) {
      const ids = b.prompt as number[];
      const entries = ids.map((id, i) =>
        i === 0 ? null : { ...(id === E ? {} : { [String(E)]: { logprob: -0.01, rank: 1 } }), [String(id)]: { logprob: lp(ids[i - 1] ?? 1, id), rank: id === E ? 1 : 2, decoded_token: String.fromCodePoint(id) } },
      );
      return send(200, { choices: [{ text: 'x', prompt_logprobs: entries }] });
    }
    if (b.echo === true) {
      const chars = [...String(b.prompt)];
      const codes = chars.map((c) => c.codePointAt(0) ?? 0);
      return send(200, {
        choices: [
          {
            text: `${String(b.prompt)}x`,
            logprobs: {
              tokens: [...chars, 'x'],
              token_logprobs: [null, ...codes.slice(1).map((c, i) => lp(codes[i] ?? 1, c)), -0.3],
              top_logprobs: [null, ...codes.slice(1).map((c, i) => (c === E ? { e: lp(codes[i] ?? 1, c) } : { e: -0.01 })), { x: -0.3 }],
              text_offset: [...chars.map((_, i) => i), chars.length],
            },
          },
        ],
      });
    }
    const full = 'Hello world\n\nQuestion: next';
    const stops = (b.stop as string[] | undefined) ?? [];
    let cut = full.length;
    for (const s of stops) if (full.includes(s)) cut = Math.min(cut, full.indexOf(s));
    const text = (options.dropsStop ? full.slice(0, cut) : full).slice(0, Number(b.max_tokens));
    return send(200, { choices: [{ text, finish_reason: cut < full.length ? 'stop' : 'length' }], usage: { completion_tokens: [...text].length } });
  };
}

let server: Server;
let base: string;
const seen: Seen = { completions: [], reloads: [], tokenize: 0 };
let sloppy: Server;
let sloppyBase: string;

async function listen(s: Server): Promise<string> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  server = createServer((req, res) => void handler(seen, { dropsStop: true })(req, res));
  base = await listen(server);
  sloppy = createServer((req, res) => void handler({ completions: [], reloads: [], tokenize: 0 }, { dropsStop: false })(req, res));
  sloppyBase = await listen(sloppy);
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => sloppy.close(() => resolve()));
});

const requests = [
  { context: 'Question: sky?\nAnswer:', continuation: ' A' },
  { context: 'Question: sky?\nAnswer: ', continuation: 'B' },
  { context: 'the', continuation: 'e' },
  { context: 'naïve café 🎉 ', continuation: 'résumé' },
];

describe('OpenAiBackend', () => {
  it('generate: greedy completions with stop strings, the model taken from /v1/models', async () => {
    const backend = new OpenAiBackend({ baseUrl: `${base}/v1/` });
    const [out] = await backend.generate([{ prompt: 'Say hi', stop: ['Question:'], maxTokens: 50 }]);
    expect(out).toEqual({ text: 'Hello world\n\n', tokens: 13, finish: 'stop' });
    expect(seen.completions.at(-1)).toEqual({ model: 'served-model', prompt: 'Say hi', max_tokens: 50, temperature: 0, stop: ['Question:'] });
    expect(backend.stats()).toMatchObject({ generateRequests: 1, generatedTokens: 13 });
  });

  it('generate: a server that returns text past a stop string is cut client-side', async () => {
    const backend = new OpenAiBackend({ baseUrl: sloppyBase, model: 'served-model' });
    const [out] = await backend.generate([{ prompt: 'Say hi', stop: ['\n\n\n', 'Question:'], maxTokens: 50 }]);
    expect(out?.text).toBe('Hello world\n\n');
    expect(out?.finish).toBe('stop');
  });

  it.each(['echo', 'prompt_logprobs'] as const)('loglikelihood via %s: continuation tokens summed, trailing whitespace moved, greedy flag', async (mode) => {
    const backend = new OpenAiBackend({ baseUrl: base, logprobs: mode, concurrency: 3 });
    const got = await backend.loglikelihood(requests);
    requests.forEach((r, i) => {
      const want = expected(r.context.trimEnd(), r.context.slice(r.context.trimEnd().length) + r.continuation);
      expect(got[i]?.tokens).toBe(want.tokens);
      expect(got[i]?.logprob).toBeCloseTo(want.logprob, 10);
      expect(got[i]?.greedy).toBe(want.greedy);
    });
    // " A" and "B" after "Answer: ": both score two characters (" " moves onto the continuation).
    expect(got[0]?.tokens).toBe(2);
    expect(got[1]?.tokens).toBe(2);
    expect(got[2]).toMatchObject({ tokens: 1, greedy: true });
    expect(backend.stats()).toMatchObject({ loglikelihoodRequests: 4, scoredTokens: got.reduce((a, r) => a + r.tokens, 0) });
  });

  it('prompt_logprobs sends token ids from /tokenize and tokenizes a shared context once', async () => {
    const before = seen.tokenize;
    const backend = new OpenAiBackend({ baseUrl: base, logprobs: 'prompt_logprobs' });
    await backend.loglikelihood([
      { context: 'Q', continuation: ' A' },
      { context: 'Q', continuation: ' B' },
    ]);
    expect(seen.tokenize - before).toBe(3); // "Q", "Q A", "Q B"
    const prompts = seen.completions.slice(-2).map((c) => c.prompt);
    expect(prompts).toContainEqual([1, 81, 32, 65]);
    expect(prompts).toContainEqual([1, 81, 32, 66]);
  });

  it('scores MMLU end to end through the server (multiple choice by log-likelihood)', async () => {
    const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'evo-openai-mmlu-'));
    try {
      await mkdir(path.join(dir, 'mmlu'));
      await writeFile(path.join(dir, 'mmlu', 'virology_val.csv'), 'Q1,a,b,c,d,A\nQ2,a,b,c,d,B\nQ3,a,b,c,d,C\nQ4,a,b,c,d,D\n');
      await writeFile(path.join(dir, 'mmlu', 'virology_dev.csv'), 'S,a,b,c,d,A\n');
      const backend = new OpenAiBackend({ baseUrl: base });
      const res = await new MmluEvaluator({ dataDir: dir, shots: 1 }).evaluate({ id: 'x', dir, config: null, genome: {} }, { limit: Infinity, seed: 0 }, { backend });
      // After "Answer:" the toy model scores " X" as lp(58, 32) + lp(32, X), highest for " A": it always answers A.
      const scores = ['A', 'B', 'C', 'D'].map((l) => expected('Answer:', ` ${l}`).logprob);
      expect(scores.indexOf(Math.max(...scores))).toBe(0);
      expect(Object.fromEntries(res.items.map((i) => [i.id, i.correct]))).toEqual({ 'val/virology/0': true, 'val/virology/1': false, 'val/virology/2': false, 'val/virology/3': false });
      expect(res.itemsUsed).toBe(4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reload: POSTs the candidate folder before serving it; refuses to switch without reload', async () => {
    const backend = new OpenAiBackend({ baseUrl: base, reload: { url: `${base}/update_weights_from_disk` } });
    await backend.useModel({ id: 'c1', dir: '/runs/c1' });
    await backend.useModel({ id: 'c2', dir: '/runs/c2' });
    expect(seen.reloads.slice(-2)).toEqual([{ model_path: '/runs/c1' }, { model_path: '/runs/c2' }]);
    await expect(backend.useModel({ id: 'c3', dir: '/runs/broken' })).rejects.toMatchObject({ code: 'OPENAI_RELOAD', message: expect.stringContaining('cannot load weights') });
    const fixed = new OpenAiBackend({ baseUrl: base });
    await fixed.useModel({ id: 'a', dir: '/a' });
    await fixed.useModel({ id: 'a', dir: '/a' });
    await expect(fixed.useModel({ id: 'b', dir: '/b' })).rejects.toMatchObject({ code: 'OPENAI_NO_RELOAD' });
    const byCommand = new OpenAiBackend({ baseUrl: base, reload: { command: 'test -n {model_dir}' } });
    await byCommand.useModel({ id: 'c', dir: '/c' });
    expect(new OpenAiBackend({ baseUrl: base, reload: { command: 'restart-server --model {gguf}' } }).needs).toBe('gguf');
  });

  it('errors name the URL and status; logprobs none refuses multiple choice', async () => {
    const backend = new OpenAiBackend({ baseUrl: base, model: 'served-model' });
    await expect(backend.generate([{ prompt: 'FAIL', stop: [], maxTokens: 3 }])).rejects.toMatchObject({ code: 'OPENAI_HTTP', message: expect.stringContaining(`POST ${base}/v1/completions answered HTTP 500`) });
    await expect(new OpenAiBackend({ baseUrl: base, model: 'other' }).generate([{ prompt: 'x', stop: [], maxTokens: 1 }])).rejects.toMatchObject({ code: 'OPENAI_HTTP' });
    await expect(new OpenAiBackend({ baseUrl: base, logprobs: 'none' }).loglikelihood(requests)).rejects.toMatchObject({ code: 'OPENAI_NO_LOGPROBS' });
    await expect(new OpenAiBackend({ baseUrl: 'http://127.0.0.1:9', model: 'm', timeoutMs: 2000 }).generate([{ prompt: 'x', stop: [], maxTokens: 1 }])).rejects.toMatchObject({ code: 'OPENAI_UNREACHABLE' });
    expect(() => new OpenAiBackend({ baseUrl: 'not a url' })).toThrow(expect.objectContaining({ code: 'BAD_BACKEND_OPTION' }));
  });
});
