import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractFlexible, extractStrict, GSM8K_STOP, gsm8kFewshotPrefix, gsm8kGold, gsm8kPrompt, Gsm8kEvaluator } from '../../evaluators/gsm8k.js';
import { loadGsm8k } from '../../src/eval/datasets.js';
import { wilsonInterval } from '../../src/eval/stats.js';
import { describeWithShared } from '../shared-dir.js';
import { StubBackend } from './stub-backend.js';

const candidate = { id: 'm', dir: '/nonexistent', config: null, genome: {} };

describe('GSM8K answer extraction', () => {
  it.each([
    ['The answer is 42.\n#### 42', '42', '42'],
    ['#### 1,000', '1000', '1000'],
    ['She pays $18 a day.\n#### $18', null, '18'],
    ['It costs 5 dollars, then 7.', null, '7'],
    ['#### -3', '-3', '-3'],
    ['#### 72.', '72', '72'],
    ['no numbers here', null, null],
    ['10,000 apples weigh 2.5 kg', null, '2.5'],
    ['#### 5\n\nQuestion #### 6', '5', '6'],
    ['#### 3.50', '3.50', '3.50'],
  ])('%j → strict %j, flexible %j', (text, strict, flexible) => {
    expect(extractStrict(text)).toBe(strict);
    expect(extractFlexible(text)).toBe(flexible);
  });

  it('reads the gold number after the last "####", without commas', () => {
    expect(gsm8kGold('She has 1,000 + 234 = <<1000+234=1234>>1,234 apples.\n#### 1,234')).toBe('1234');
    expect(gsm8kGold('x\n#### -5')).toBe('-5');
  });
});

describe('GSM8K prompt (lm-eval gsm8k format)', () => {
  it('is k solved examples then the question, with the exact separators', () => {
    const prefix = gsm8kFewshotPrefix([
      { question: 'Q1?', answer: 'A1\n#### 1' },
      { question: 'Q2?', answer: 'A2\n#### 2' },
    ]);
    expect(prefix).toBe('Question: Q1?\nAnswer: A1\n#### 1\n\nQuestion: Q2?\nAnswer: A2\n#### 2\n\n');
    expect(gsm8kPrompt(prefix, 'Q3?')).toBe('Question: Q1?\nAnswer: A1\n#### 1\n\nQuestion: Q2?\nAnswer: A2\n#### 2\n\nQuestion: Q3?\nAnswer:');
    expect(GSM8K_STOP).toEqual(['Question:', '\n\n\n']);
  });
});

describe('Gsm8kEvaluator on a hand-made data folder', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'evo-gsm8k-'));
    await mkdir(path.join(dir, 'gsm8k'));
    const line = (i: number): string => JSON.stringify({ question: `What is ${i} + ${i}?`, answer: `${i} + ${i} = <<${i}+${i}=${2 * i}>>${2 * i}\n#### ${2 * i}` });
    await writeFile(path.join(dir, 'gsm8k', 'train.jsonl'), `${Array.from({ length: 12 }, (_, i) => line(i + 1)).join('\n')}\n`);
    await writeFile(path.join(dir, 'gsm8k', 'test.jsonl'), `${Array.from({ length: 6 }, (_, i) => line(i + 101)).join('\n')}\n`);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('scores strict and flexible exact match, with the same shots for every item', async () => {
    // Right with "#### N" for odd numbers; right number without "####" for multiples of 4; wrong otherwise.
    const backend = new StubBackend((r) => {
      const m = /What is (\d+) \+ \d+\?\nAnswer:$/.exec(r.prompt);
      const i = Number(m?.[1]);
      if (i % 2 === 1) return ` ${i} + ${i} = ${2 * i}\n#### ${2 * i}`;
      if (i % 4 === 0) return ` The total is ${(2 * i).toLocaleString('en-US')}.`;
      return ' #### 0';
    });
    const ev = new Gsm8kEvaluator({ dataDir: dir, shots: 3 });
    const res = await ev.evaluate(candidate, { limit: Infinity, seed: 1, split: 'test' }, { backend });
    // Test items 101..106: strict right for 101, 103, 105; flexible also for 104.
    expect(res.itemsUsed).toBe(6);
    expect(res.score).toBeCloseTo(3 / 6, 12);
    expect(res.ci).toEqual(wilsonInterval(3, 6));
    expect(res.details).toMatchObject({ metric: 'strict', split: 'test', shots: 3, strict: { score: 0.5, n: 6 }, flexible: { score: 4 / 6, n: 6 } });
    const prefixes = new Set(backend.generated.map((g) => g.prompt.slice(0, g.prompt.lastIndexOf('Question: '))));
    expect(prefixes.size).toBe(1);
    const [prefix] = prefixes;
    expect(prefix?.match(/^Question: /gm)).toHaveLength(3);
    expect(prefix?.endsWith('\n\n')).toBe(true);
    for (const g of backend.generated) expect(g).toMatchObject({ stop: ['Question:', '\n\n\n'], maxTokens: 256 });
    expect(res.items.map((i) => i.correct)).toEqual(res.items.map((i) => Number(i.id.split('/')[1]) % 2 === 0));
    const flexible = await new Gsm8kEvaluator({ dataDir: dir, shots: 3, metric: 'flexible' }).evaluate(candidate, { limit: Infinity, seed: 1, split: 'test' }, { backend });
    expect(flexible.score).toBeCloseTo(4 / 6, 12);
  });

  it('the search split is train without the shots; subsets are seeded and honour itemIds', async () => {
    const ev = new Gsm8kEvaluator({ dataDir: dir, shots: 5 });
    const { shots } = await ev.fewshot();
    const order = await ev.subsetOrder('search', 9);
    expect(order).toHaveLength(12 - 5);
    for (const s of shots) expect(order).not.toContain(s.id);
    expect(await ev.subsetOrder('search', 9)).toEqual(order);
    const backend = new StubBackend(() => '#### 2');
    const res = await ev.evaluate(candidate, { limit: 4, seed: 9 }, { backend });
    expect(res.items.map((i) => i.id)).toEqual(order.slice(0, 4));
    const fixed = await ev.evaluate(candidate, { limit: 4, seed: 9, itemIds: [order[6] ?? ''] }, { backend });
    expect(fixed.items.map((i) => i.id)).toEqual([order[6]]);
    await expect(ev.evaluate(candidate, { limit: 1, seed: 0, itemIds: [shots[0]?.id ?? ''] }, { backend })).rejects.toMatchObject({ code: 'UNKNOWN_ITEM' });
    await expect(ev.evaluate(candidate, { limit: 1, seed: 0 }, {})).rejects.toMatchObject({ code: 'NO_BACKEND' });
  });

  it('a missing data folder names the file it wanted', async () => {
    const ev = new Gsm8kEvaluator({ dataDir: path.join(dir, 'nowhere') });
    await expect(ev.subsetOrder('test', 0)).rejects.toMatchObject({ code: 'DATASET_MISSING', message: expect.stringContaining(path.join(dir, 'nowhere', 'gsm8k', 'test.jsonl')) });
    expect(() => new Gsm8kEvaluator({ dataDir: dir, shots: -1 })).toThrow(expect.objectContaining({ code: 'BAD_EVALUATOR_OPTION' }));
  });
});

describeWithShared('GSM8K files in shared/datasets', (shared) => {
  it('load with the documented sizes and gold answers', async () => {
    const data = path.join(shared, 'datasets');
    const train = await loadGsm8k(data, 'train');
    const test = await loadGsm8k(data, 'test');
    expect(train).toHaveLength(7473);
    expect(test).toHaveLength(1319);
    expect(train[0]?.id).toBe('train/0');
    expect(gsm8kGold(train[0]?.answer ?? '')).toBe('72');
    for (const r of test) expect(gsm8kGold(r.answer)).toMatch(/^-?\d+(\.\d+)?$/);
  });
});
