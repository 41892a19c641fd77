import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adaptUserResult, createEvaluator, loadUserEvaluator, neededFormats, objectiveRecordOf } from '../../src/eval/registry.js';
import { wilsonInterval } from '../../src/eval/stats.js';
import { StubBackend } from './stub-backend.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const candidate = { id: 'c1', dir: '/runs/c1', config: { merge_method: 'linear' }, genome: { 'weight.0': 0.5 } };
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-registry-'));
  await mkdir(path.join(dir, 'task'));
  await writeFile(path.join(dir, 'task', 'search.jsonl'), '{"prompt":"a","answer":"b"}\n');
  await writeFile(path.join(dir, 'task', 'test.jsonl'), '{"prompt":"a","answer":"b"}\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('built-in evaluators by name', () => {
  it('makes gsm8k, mmlu, generic and command with snake_case options; data_dir resolves against the space folder', async () => {
    const gsm8k = await createEvaluator({ kind: 'builtin', name: 'gsm8k' }, { shots: 3, data_dir: 'data' }, { baseDir: dir, env: {} });
    expect(gsm8k).toMatchObject({ name: 'gsm8k', needs: 'backend' });
    await expect(gsm8k.subsetOrder?.('search', 0)).rejects.toMatchObject({ code: 'DATASET_MISSING', message: expect.stringContaining(path.join(dir, 'data', 'gsm8k')) });
    // --data-dir wins over the space's data_dir.
    const flagged = await createEvaluator({ kind: 'builtin', name: 'mmlu' }, { data_dir: 'data' }, { baseDir: dir, dataDirFlag: '/flag/data', env: {} });
    await expect(flagged.subsetOrder?.('search', 0)).rejects.toMatchObject({ message: expect.stringContaining('/flag/data/mmlu') });
    expect((await createEvaluator({ kind: 'builtin', name: 'generic' }, { task: 'task' }, { baseDir: dir })).name).toBe('generic:task');
    expect((await createEvaluator({ kind: 'builtin', name: 'command' }, { command: 'run {gguf}', score_path: 'a.b' }, { baseDir: dir })).needs).toBe('gguf');
  });

  it('unknown names and options are errors that name them', async () => {
    await expect(createEvaluator({ kind: 'builtin', name: 'hellaswag' }, {})).rejects.toMatchObject({ code: 'UNKNOWN_EVALUATOR', message: expect.stringContaining('"hellaswag"') });
    await expect(createEvaluator({ kind: 'builtin', name: 'gsm8k' }, { shot: 5 })).rejects.toMatchObject({ code: 'BAD_EVALUATOR_OPTION', message: expect.stringMatching(/evaluator gsm8k: options\.shot: unknown option; gsm8k takes data_dir, shots/) });
    await expect(createEvaluator({ kind: 'builtin', name: 'mmlu' }, { shots: 9 })).rejects.toMatchObject({ code: 'BAD_EVALUATOR_OPTION', message: expect.stringContaining('options.shots') });
    await expect(createEvaluator({ kind: 'builtin', name: 'generic' }, {})).rejects.toMatchObject({ message: expect.stringContaining('options.task') });
  });
});

describe('user evaluator modules', () => {
  it('a module exporting evaluate(candidate, options, context) is adapted; the context carries the budget', async () => {
    const file = path.join(dir, 'my-eval.mjs');
    await writeFile(
      file,
      `export async function evaluate(candidate, options, context) {
         return { score: options.bonus + candidate.genome['weight.0'], n: context.limit, ci: [0.1, 0.9], note: context.split + ':' + context.seed };
       }`,
    );
    const ev = await createEvaluator({ kind: 'module', module: 'my-eval.mjs' }, { bonus: 0.25 }, { baseDir: dir });
    expect(ev).toMatchObject({ name: 'module:my-eval.mjs', needs: 'hf-dir' });
    const res = await ev.evaluate(candidate, { limit: 20, seed: 4, split: 'search' }, {});
    expect(res).toMatchObject({ score: 0.75, itemsUsed: 20, ci: [0.1, 0.9], stderr: null, details: { note: 'search:4' } });
  });

  it('the shipped example evaluator runs on a backend and reports items with a Wilson interval', async () => {
    const ev = await loadUserEvaluator(path.join(repo, 'evaluators', 'example-user-evaluator.mjs'), { max_tokens: 4 });
    expect(ev.needs).toBe('backend');
    // The stub answers "5" to everything: right on add-1 and sub-1 only.
    const backend = new StubBackend(() => ' 5');
    const res = await ev.evaluate(candidate, { limit: Infinity, seed: 1 }, { backend });
    expect(res.itemsUsed).toBe(6);
    expect(res.score).toBeCloseTo(2 / 6, 12);
    expect(res.ci?.[0]).toBeCloseTo(wilsonInterval(2, 6)[0], 12);
    expect(res.items.filter((i) => i.correct).map((i) => i.id).sort()).toEqual(['add-1', 'sub-1']);
    expect(backend.generated[0]).toMatchObject({ stop: ['\n'], maxTokens: 4 });
    await expect(ev.evaluate(candidate, { limit: 2, seed: 1 }, {})).rejects.toThrow(/needs an inference backend/);
  });

  it('bad modules and bad results are named errors', async () => {
    await expect(loadUserEvaluator(path.join(dir, 'none.mjs'), {})).rejects.toMatchObject({ code: 'USER_EVALUATOR_MISSING' });
    const noFn = path.join(dir, 'no-fn.mjs');
    await writeFile(noFn, 'export const x = 1;\n');
    await expect(loadUserEvaluator(noFn, {})).rejects.toMatchObject({ code: 'USER_EVALUATOR_INVALID', message: expect.stringContaining('exports no evaluate function') });
    expect(() => adaptUserResult('m.mjs', 'high', 0)).toThrow(expect.objectContaining({ code: 'USER_EVALUATOR_RESULT' }));
    expect(() => adaptUserResult('m.mjs', { score: NaN, error: 'OOM' }, 0)).toThrow(/not a finite number \(OOM\)/);
    expect(() => adaptUserResult('m.mjs', { score: 0.5, ci: [0.9, 0.1] }, 0)).toThrow(/expected \[low, high\]/);
  });

  it('results: a number, or items that give n and a Wilson interval', () => {
    expect(adaptUserResult('m.mjs', 0.5, 1)).toMatchObject({ score: 0.5, ci: null, itemsUsed: 0, seconds: 1 });
    const r = adaptUserResult('m.mjs', { score: 2 / 3, items: [{ id: 'a', correct: true }, { id: 'b', correct: true }, { id: 1, correct: false }], extra: { k: 1 } }, 0);
    expect(r.itemsUsed).toBe(3);
    expect(r.ci).toEqual(wilsonInterval(2, 3));
    expect(r.items).toEqual([
      { id: 'a', correct: true, score: 1 },
      { id: 'b', correct: true, score: 1 },
      { id: '1', correct: false, score: 0 },
    ]);
    expect(r.details).toEqual({ extra: { k: 1 } });
  });
});

describe('for the search runner', () => {
  it('objective records carry n, the interval and per-item results tagged with the objective', () => {
    const rec = objectiveRecordOf('math', { score: 0.5, ci: [0.2, 0.8], stderr: 0.1, itemsUsed: 2, seconds: 3, items: [{ id: 'x', correct: true, score: 1 }], details: { k: 1 } });
    expect(rec).toEqual({
      score: { value: 0.5, n: 2, stderr: 0.1, ciLow: 0.2, ciHigh: 0.8 },
      itemsUsed: 2,
      items: [{ objective: 'math', itemId: 'x', correct: true, score: 1 }],
      details: { k: 1, seconds: 3 },
      failure: null,
    });
  });

  it('needed formats: GGUF when the backend or a command wants it, the HF folder always', () => {
    const task = { name: 't', needs: 'backend' as const, evaluate: async () => Promise.reject(new Error('unused')) };
    const hf = { ...task, needs: 'hf-dir' as const };
    expect([...neededFormats([task], 'gguf')].sort()).toEqual(['gguf', 'hf-dir']);
    expect([...neededFormats([task, hf], 'hf-dir')]).toEqual(['hf-dir']);
    expect([...neededFormats([{ ...task, needs: 'gguf' as const }], undefined)].sort()).toEqual(['gguf', 'hf-dir']);
  });
});
