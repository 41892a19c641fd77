import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { GenericTaskEvaluator } from '../../evaluators/generic.js';
import { Gsm8kEvaluator } from '../../evaluators/gsm8k.js';
import { MmluEvaluator } from '../../evaluators/mmlu.js';
import { registerEval } from '../../src/cli/eval.js';
import type { EvalReport } from '../../src/cli/eval.js';
import { convertLlama2cToHf } from '../../src/convert/llama2c.js';
import { LlamaCppBackend } from '../../src/eval/backend.js';
import type { EvaluationResult, GenerateRequest, InferenceBackend, LoglikelihoodRequest } from '../../src/eval/types.js';
import { buildDist } from '../model/build-dist.js';
import { describeWithShared } from '../shared-dir.js';

/**
 * The whole evaluation path on a real model: stories260K (llama2.c → HF folder → GGUF →
 * llama.cpp) answers real GSM8K and MMLU items from shared/datasets. Its scores are ~0 or chance;
 * what is checked is the pipeline: items used, prompts well formed, prompts cut to the 512-token
 * context and counted, intervals valid; and, on a task whose answer this model knows (its own
 * greedy story), that a right answer is scored right.
 */

/** Passes every request to the real backend and keeps a copy (nothing is faked). */
class RecordingBackend implements InferenceBackend {
  readonly name: string;
  readonly needs: 'gguf' | 'hf-dir';
  readonly generated: GenerateRequest[] = [];
  readonly scored: LoglikelihoodRequest[] = [];
  private readonly inner: InferenceBackend;
  constructor(inner: InferenceBackend) {
    this.inner = inner;
    this.name = inner.name;
    this.needs = inner.needs;
  }
  useModel(...a: Parameters<InferenceBackend['useModel']>) {
    return this.inner.useModel(...a);
  }
  generate(requests: readonly GenerateRequest[], signal?: AbortSignal) {
    this.generated.push(...requests);
    return this.inner.generate(requests, signal);
  }
  loglikelihood(requests: readonly LoglikelihoodRequest[], signal?: AbortSignal) {
    this.scored.push(...requests);
    return this.inner.loglikelihood(requests, signal);
  }
  stats() {
    return this.inner.stats();
  }
  close() {
    return this.inner.close();
  }
}

function expectValidInterval(r: EvaluationResult): void {
  expect(r.ci).not.toBeNull();
  const [lo, hi] = r.ci ?? [NaN, NaN];
  expect(0).toBeLessThanOrEqual(lo);
  expect(lo).toBeLessThanOrEqual(r.score);
  expect(r.score).toBeLessThanOrEqual(hi);
  expect(hi).toBeLessThanOrEqual(1);
  expect(hi - lo).toBeGreaterThan(0);
  expect(r.items).toHaveLength(r.itemsUsed);
}

describeWithShared('evaluation on stories260K with real GSM8K and MMLU items', (shared) => {
  const data = path.join(shared, 'datasets');
  const candidate = { id: 'stories260K', dir: '', config: null, genome: {} };
  let dir: string;
  let hfDir: string;
  let taskDir: string;
  let llama: LlamaCppBackend;
  let backend: RecordingBackend;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'evo-eval-stories-'));
    await buildDist();
    const src = path.join(shared, 'models', 'stories260K');
    hfDir = path.join(dir, 'hf');
    await convertLlama2cToHf(path.join(src, 'stories260K.bin'), path.join(src, 'tok512.bin'), hfDir);
    candidate.dir = hfDir;
    // A task this model can answer: its own greedy continuation (llama2.c doc/stories260K.md).
    taskDir = path.join(dir, 'story-task');
    await mkdir(taskDir);
    const items = [
      { id: 'name', prompt: 'Once upon a time, there was a little girl named', answer: 'Lily' },
      { id: 'place', prompt: 'Once upon a time, there was a little girl named Lily. She loved to play outside in the', answer: 'park' },
    ];
    await writeFile(path.join(taskDir, 'task.yaml'), 'type: generate\nstop: [".", ","]\nmax_tokens: 8\nnormalize: [trim]\n');
    await writeFile(path.join(taskDir, 'search.jsonl'), `${items.map((i) => JSON.stringify(i)).join('\n')}\n`);
    await writeFile(path.join(taskDir, 'test.jsonl'), `${JSON.stringify(items[0])}\n`);
    // One thread: this box's 2 cores are shared, and llama.cpp's spinning threads collapse under contention.
    llama = await LlamaCppBackend.open({ gpu: false, sequences: 4, threads: 1 });
    backend = new RecordingBackend(llama);
    await backend.useModel({ id: candidate.id, dir: hfDir });
  }, 180_000);

  afterAll(async () => {
    await backend?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('converts the HF folder to GGUF and loads it (context 512)', () => {
    expect(llama.lastLoadTimes.convertSeconds).toBeGreaterThan(0);
    expect(llama.engineInfo.gpu).toBe(false);
  });

  it('GSM8K, 5-shot from train: well-formed prompts, cut on the left to fit, every item scored', async () => {
    const ev = new Gsm8kEvaluator({ dataDir: data, maxTokens: 48 });
    const before = llama.stats();
    const res = await ev.evaluate(candidate, { limit: 4, seed: 1 }, { backend });
    const generated = backend.generated.slice(-4);
    expect(res.itemsUsed).toBe(4);
    expectValidInterval(res);
    const { shots } = await ev.fewshot();
    const order = await ev.subsetOrder('search', 1);
    expect(res.items.map((i) => i.id)).toEqual(order.slice(0, 4));
    for (const s of shots) expect(res.items.map((i) => i.id)).not.toContain(s.id);
    for (const g of generated) {
      expect(g.prompt.startsWith(`Question: ${shots[0]?.question}\nAnswer: ${shots[0]?.answer}\n\nQuestion: `)).toBe(true);
      expect(g.prompt.match(/^Question: /gm)).toHaveLength(6);
      expect(g.prompt.endsWith('\nAnswer:')).toBe(true);
      expect(g.stop).toEqual(['Question:', '\n\n\n']);
    }
    // Five solved problems run past the 512-token context: every prompt was cut, and counted.
    const after = llama.stats();
    expect(after.truncatedPrompts - before.truncatedPrompts).toBe(4);
    expect(after.generatedTokens).toBeGreaterThan(before.generatedTokens);
    const details = res.details as { strict: { n: number }; flexible: { score: number }; samples: { response: string }[] };
    expect(details.strict.n).toBe(4);
    expect(details.samples[0]?.response.includes('Question:')).toBe(false);
    console.log(`[stories260K] gsm8k strict ${res.score.toFixed(3)} [${res.ci?.[0].toFixed(3)}, ${res.ci?.[1].toFixed(3)}], flexible ${details.flexible.score.toFixed(3)}; sample ${JSON.stringify(details.samples[0]?.response.slice(0, 80))}`);
  }, 180_000);

  it('MMLU val, 0-shot and 5-shot: four log-likelihoods per item, stratified subset, valid intervals', async () => {
    for (const [shots, limit] of [[0, 6], [5, 2]] as const) {
      const ev = new MmluEvaluator({ dataDir: data, shots });
      const before = backend.scored.length;
      const res = await ev.evaluate(candidate, { limit, seed: 2 }, { backend });
      const scored = backend.scored.slice(before);
      expect(scored).toHaveLength(4 * limit);
      expect(res.itemsUsed).toBe(limit);
      expectValidInterval(res);
      expect(scored.map((r) => r.continuation)).toEqual(Array.from({ length: limit }, () => [' A', ' B', ' C', ' D']).flat());
      for (const r of scored) {
        expect(r.context.startsWith('The following are multiple choice questions (with answers) about ')).toBe(true);
        expect(r.context.endsWith('\nAnswer:')).toBe(true);
        expect(r.context.match(/\nAnswer: [ABCD]\n\n/g) ?? []).toHaveLength(shots);
      }
      // Stratified: the first items come from different subjects.
      expect(new Set(res.items.map((i) => i.id.split('/')[1])).size).toBe(limit);
      console.log(`[stories260K] mmlu ${shots}-shot micro ${res.score.toFixed(3)} [${res.ci?.[0].toFixed(3)}, ${res.ci?.[1].toFixed(3)}] on ${res.itemsUsed} items`);
    }
  }, 180_000);

  it('a generic task the model knows is scored right', async () => {
    const ev = await GenericTaskEvaluator.fromPath(taskDir);
    const res = await ev.evaluate(candidate, { limit: Infinity, seed: 0 }, { backend });
    expect(res.items).toEqual([
      { id: expect.any(String), correct: true, score: 1 },
      { id: expect.any(String), correct: true, score: 1 },
    ]);
    expect(res.score).toBe(1);
  });

  it('evo eval: an HF folder, three tasks, JSON report with n, intervals and speed', async () => {
    const program = new Command().exitOverride();
    registerEval(program);
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      await program.parseAsync(['eval', hfDir, '--tasks', `gsm8k,mmlu,${taskDir}`, '--limit', '2', '--data-dir', data, '--max-tokens', '24', '--shots', '1', '--cpu', '--threads', '1', '--sequences', '2', '--json', '--split', 'test'], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    const report = JSON.parse(out.join('')) as EvalReport;
    expect(report).toMatchObject({ backend: 'llamacpp', split: 'test', seed: 0, limit: 2 });
    expect(report.convertSeconds).toBeGreaterThan(0);
    expect(report.tasks.map((t) => [t.task, t.evaluator, t.n])).toEqual([
      ['gsm8k', 'gsm8k', 2],
      ['mmlu', 'mmlu', 2],
      [taskDir, 'generic:story-task', 1],
    ]);
    for (const t of report.tasks) {
      expect(t.ci?.[0]).toBeLessThanOrEqual(t.score);
      expect(t.ci?.[1]).toBeGreaterThanOrEqual(t.score);
      expect(t.tokensPerSecond).toBeGreaterThan(0);
    }
    expect(report.tasks[0]?.items.every((i) => i.id.startsWith('test/'))).toBe(true);
    expect(report.tasks[1]?.items.every((i) => i.id.startsWith('test/'))).toBe(true);
    expect(report.tasks[0]?.generatedTokens).toBeGreaterThan(0);
    expect(report.tasks[1]?.scoredTokens).toBeGreaterThanOrEqual(8);
  }, 180_000);
});
