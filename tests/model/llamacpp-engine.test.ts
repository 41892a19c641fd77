import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertHfToGguf } from '../../src/convert/hf-to-gguf.js';
import type { GgufOutType } from '../../src/convert/hf-to-gguf.js';
import { LlamaCppEngine, LlamaCppError } from '../../src/eval/llamacpp.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { buildDist } from './build-dist.js';
import { loadReferenceModel, referenceLogits } from './reference-forward.js';
import type { ReferenceModel } from './reference-forward.js';
import { tinyBpeVocabulary, tinySpmVocabulary, writeTinyBpeTokenizer, writeTinySpmTokenizer } from './tiny-tokenizers.js';

/**
 * LlamaCppEngine behaviour on tiny converted models, checked against the reference forward
 * pass: lm-eval-style log-likelihoods, greedy generation with stop strings, tokenization of our
 * converted vocabularies by llama.cpp, and failure isolation in the child process.
 */

let dir: string;
let engine: LlamaCppEngine;
let llamaDir: string;
let llamaGguf: string;
let ref: ReferenceModel;
const BOS = 1;

async function model(name: string, architecture: 'llama' | 'qwen2', seed: number): Promise<string> {
  const d = path.join(dir, name);
  await mkdir(d, { recursive: true });
  const vocab = architecture === 'llama' ? await writeTinySpmTokenizer(d) : await writeTinyBpeTokenizer(d);
  await writeTinyLlama(d, { architecture, hidden: 32, heads: 4, kvHeads: 2, intermediate: 64, layers: 2, vocab, seed, tied: false });
  if (architecture === 'llama') await writeTinySpmTokenizer(d);
  else await writeTinyBpeTokenizer(d);
  return d;
}

async function gguf(hfDir: string, outType: GgufOutType): Promise<string> {
  const out = path.join(dir, `${path.basename(hfDir)}.${outType}.gguf`);
  await convertHfToGguf(hfDir, out, { outType });
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-engine-'));
  await buildDist();
  llamaDir = await model('llama', 'llama', 11);
  llamaGguf = await gguf(llamaDir, 'f32');
  ref = await loadReferenceModel(llamaDir);
  engine = await LlamaCppEngine.start({ gpu: false, threads: 2, sequences: 3, kvCacheType: 'f32', flashAttention: false, contextSize: 96 });
  await engine.loadModel(llamaGguf);
}, 120_000);

afterAll(async () => {
  await engine?.close();
  await rm(dir, { recursive: true, force: true });
});

function logSoftmax(logits: Float64Array, token: number): number {
  const max = Math.max(...logits);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return (logits[token] ?? NaN) - max - Math.log(sum);
}

function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if ((logits[i] ?? -Infinity) > (logits[best] ?? -Infinity)) best = i;
  return best;
}

/** The reference log-likelihood, lm-eval style, with tokenization taken from llama.cpp. */
async function expectedLoglikelihood(context: string, continuation: string): Promise<{ logprob: number; greedy: boolean; tokens: number }> {
  const ctx = await engine.tokenize(context);
  const cont = (await engine.tokenize(context + continuation)).slice(ctx.length);
  const input = [BOS, ...ctx, ...cont];
  const logits = referenceLogits(ref, input);
  let logprob = 0;
  let greedy = true;
  for (let j = 0; j < cont.length; j++) {
    const at = logits[ctx.length + j];
    if (!at) throw new Error('missing logits');
    logprob += logSoftmax(at, cont[j] ?? -1);
    greedy &&= argmax(at) === cont[j];
  }
  return { logprob, greedy, tokens: cont.length };
}

describe('LlamaCppEngine', () => {
  it('starts with explicit threads on the CPU and reports the loaded model', () => {
    expect(engine.info).toEqual({ gpu: false, threads: 2 });
    expect(engine.loadedModel).toMatchObject({ contextSize: 96, sequences: 3, bos: BOS, eos: 2, addBos: true, gpuLayers: 0 });
  });

  it('llama.cpp tokenizes with our converted vocabularies (SentencePiece and byte-level BPE)', async () => {
    const spm = tinySpmVocabulary().pieces.map((p) => p.piece);
    expect(await engine.tokenize('the cat saw a dog')).toEqual(['▁the', '▁cat', '▁saw', '▁a', '▁dog'].map((t) => spm.indexOf(t)));
    expect(await engine.detokenize(await engine.tokenize('Once upon a time'))).toBe('Once upon a time');
    const qwen = await gguf(await model('qwen', 'qwen2', 3), 'f32');
    const other = await LlamaCppEngine.start({ gpu: false, sequences: 1, contextSize: 32 });
    try {
      // Without threads, the engine takes the cores the load leaves idle (llamacpp-threads.ts).
      expect(other.info.threads).toBeGreaterThanOrEqual(1);
      expect(other.info.threads).toBeLessThanOrEqual(os.availableParallelism());
      await other.loadModel(qwen);
      const bpe = tinyBpeVocabulary().tokens;
      // qwen2 pre-tokenizer: "the", " cat", "\n"; byte-level: t+he (no "the" merge), Ġcat, Ċ.
      expect(await other.tokenize('the cat\n')).toEqual(['t', 'he', 'Ġcat', 'Ċ'].map((t) => bpe.indexOf(t)));
      expect(other.loadedModel).toMatchObject({ addBos: false, eos: bpe.length });
    } finally {
      await other.close();
    }
  });

  it('log-likelihoods match the reference (lm-eval continuation tokens, BOS, one decode each)', async () => {
    const requests = [
      { context: 'Once upon a time', continuation: ' the cat saw a dog' },
      { context: 'Once upon a time', continuation: ' there was a little ball' },
      { context: 'the dog', continuation: ' and the cat' },
      { context: 'She played', continuation: ' outside' },
      { context: 'Once upon a time', continuation: ' the' },
    ];
    const got = await engine.loglikelihood(requests);
    for (const [i, r] of requests.entries()) {
      const want = await expectedLoglikelihood(r.context, r.continuation);
      expect(got[i]?.tokens).toBe(want.tokens);
      expect(got[i]?.greedy).toBe(want.greedy);
      expect(Math.abs((got[i]?.logprob ?? NaN) - want.logprob)).toBeLessThan(1e-3);
    }
    // Same answers whatever the order and the reuse of cached prefixes across sequences.
    const again = await engine.loglikelihood([...requests].reverse());
    expect(again.reverse().map((r) => r.logprob.toFixed(4))).toEqual(got.map((r) => r.logprob.toFixed(4)));
    // A greedy continuation is recognised: take the reference argmax after the context.
    const ctx = await engine.tokenize('the dog');
    const best = argmax(referenceLogits(ref, [BOS, ...ctx]).at(-1) ?? []);
    const text = (await engine.detokenize([...ctx, best])).slice('the dog'.length);
    const [g] = await engine.loglikelihood([{ context: 'the dog', continuation: text }]);
    expect(g).toMatchObject({ greedy: true, tokens: 1 });
  });

  it("moves the context's trailing whitespace onto the continuation, as lm-eval does", async () => {
    const [a, b] = await engine.loglikelihood([
      { context: 'Once upon a time ', continuation: 'the cat' },
      { context: 'Once upon a time', continuation: ' the cat' },
    ]);
    expect(a?.tokens).toBe(b?.tokens);
    expect(a?.logprob).toBeCloseTo(b?.logprob ?? NaN, 5);
  });

  it('greedy generation follows the reference argmax chain and honours stop strings', async () => {
    const prompt = 'Once upon a time';
    const input = [BOS, ...(await engine.tokenize(prompt))];
    const chain: number[] = [];
    for (let i = 0; i < 12; i++) {
      const next = argmax(referenceLogits(ref, [...input, ...chain]).at(-1) ?? []);
      if (next === 2) break;
      chain.push(next);
    }
    const [full] = await engine.generate([{ prompt, stop: [], maxTokens: 12 }]);
    expect(full?.tokens).toBe(chain.length);
    expect(prompt + (full?.text ?? '')).toBe(await engine.detokenize([...input.slice(1), ...chain]));
    expect(full?.finish).toBe(chain.length === 12 ? 'length' : 'eog');
    // Stop at a piece from the middle of that text: the text is cut just before it.
    const text = full?.text ?? '';
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
    const [cut, other] = await engine.generate([
      { prompt, stop: ['@@never@@', stop], maxTokens: 12 },
      { prompt: 'the dog', stop: [], maxTokens: 3 },
    ]);
    expect(cut).toMatchObject({ text: text.slice(0, text.indexOf(stop)), finish: 'stop' });
    expect(other?.tokens).toBeLessThanOrEqual(3);
  });

  it('q8_0 and f16 GGUFs load and stay close to the reference (quantization error only)', async () => {
    const tokens = [BOS, ...(await engine.tokenize('the cat saw a little dog'))];
    const want = referenceLogits(ref, tokens);
    const other = await LlamaCppEngine.start({ gpu: false, sequences: 1, contextSize: 32, kvCacheType: 'f32', flashAttention: false });
    try {
      for (const [outType, tol] of [['f16', 0.02], ['q8_0', 0.1]] as const) {
        await other.loadModel(await gguf(llamaDir, outType));
        const [got] = await other.evaluateLogits([tokens]);
        let worst = 0;
        want.forEach((w, i) => w.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - (got?.[i]?.[j] ?? NaN))))));
        console.log(`[engine] ${outType}: max |logit diff| vs f64 reference = ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(tol);
      }
    } finally {
      await other.close();
    }
  });

  it('a malformed GGUF fails to load with LlamaCppError and the engine stays usable', async () => {
    const bad = path.join(dir, 'truncated.gguf');
    const bytes = await readFile(llamaGguf);
    await writeFile(bad, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const err = await engine.loadModel(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlamaCppError);
    expect(engine.closed).toBe(false);
    await engine.loadModel(llamaGguf);
    expect((await engine.loglikelihood([{ context: 'the', continuation: ' cat' }]))[0]?.tokens).toBe(1);
  });

  it('a crashed child rejects calls with LLAMACPP_CRASHED instead of hanging', async () => {
    const victim = await LlamaCppEngine.start({ gpu: false, sequences: 1, contextSize: 32 });
    await victim.loadModel(llamaGguf);
    process.kill(victim.pid ?? 0, 'SIGKILL');
    const err = await victim.loglikelihood([{ context: 'the', continuation: ' cat' }]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LLAMACPP_CRASHED' });
    expect(victim.closed).toBe(true);
    await victim.close(); // a no-op once the child is gone
  });

  it('validates options', async () => {
    await expect(LlamaCppEngine.start({ threads: 0 })).rejects.toMatchObject({ code: 'LLAMACPP_BAD_OPTION' });
    await expect(engine.generate([{ prompt: 'x', stop: [], maxTokens: 0 }])).rejects.toMatchObject({ code: 'LLAMACPP_BAD_OPTION' });
  });
});
