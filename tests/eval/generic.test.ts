import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { choiceScores, extractAnswer, GenericTaskEvaluator, loadTaskDefinition, normalizeAnswer } from '../../evaluators/generic.js';
import { wilsonInterval } from '../../src/eval/stats.js';
import { StubBackend } from './stub-backend.js';

const candidate = { id: 'm', dir: '/nonexistent', config: null, genome: {} };
let root: string;

async function task(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) await writeFile(path.join(dir, f), text);
  return dir;
}

const jsonl = (rows: readonly object[]): string => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'evo-generic-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('answer extraction and normalization', () => {
  it('takes the first group of the first or last match, or the whole output', () => {
    const re = /#### (-?\d+)/g;
    expect(extractAnswer(' 3 + 4 = 7 #### 7\n#### 8', re, 'first')).toBe('7');
    expect(extractAnswer(' 3 + 4 = 7 #### 7\n#### 8', re, 'last')).toBe('8');
    expect(extractAnswer('no answer', re, 'first')).toBeNull();
    expect(extractAnswer('Paris', /[A-Z][a-z]+/, 'first')).toBe('Paris');
    expect(extractAnswer(' whole ', null, 'first')).toBe(' whole ');
  });

  it('applies normalizers in order', () => {
    expect(normalizeAnswer('  $1,000.  ', ['trim', 'no_dollar', 'no_commas', 'no_trailing_period'])).toBe('1000');
    expect(normalizeAnswer('New   York', ['lowercase', 'collapse_spaces'])).toBe('new york');
  });

  it('length normalization divides by bytes or tokens', () => {
    const r = [
      { logprob: -4, greedy: false, tokens: 2 },
      { logprob: -6, greedy: false, tokens: 3 },
    ];
    expect(choiceScores(r, [' ab', ' abcde'], 'none')).toEqual([-4, -6]);
    expect(choiceScores(r, [' ab', ' abcde'], 'bytes')).toEqual([-4 / 3, -1]);
    expect(choiceScores(r, [' ab', ' abcde'], 'tokens')).toEqual([-2, -2]);
  });
});

describe('generate tasks', () => {
  it('JSONL with task.yaml: prompt, stop, max tokens, regex; scored against the answer', async () => {
    const dir = await task('math', {
      'task.yaml': 'type: generate\nstop: ["\\n\\n", "Question:"]\nmax_tokens: 12\nanswer_regex: "#### (-?\\\\d+)"\n',
      'search.jsonl': jsonl([
        { id: 's1', prompt: 'Question: 1+1?\nAnswer:', answer: '2' },
        { id: 's2', prompt: 'Question: 2+2?\nAnswer:', answer: 4 },
        { id: 's3', prompt: 'Question: 3+3?\nAnswer:', answer: '6' },
      ]),
      'test.jsonl': jsonl([{ id: 't1', prompt: 'Question: 5+5?\nAnswer:', answer: '10' }]),
    });
    const def = await loadTaskDefinition(dir);
    expect(def).toMatchObject({ name: 'math', type: 'generate', stop: ['\n\n', 'Question:'], maxTokens: 12, shots: 0 });
    const backend = new StubBackend((r) => (r.prompt.includes('2+2') ? ' 2 + 2 = 5 #### 5' : ` ok #### ${2 * Number(/(\d)\+/.exec(r.prompt)?.[1])}`));
    const ev = new GenericTaskEvaluator(def);
    expect(ev.name).toBe('generic:math');
    const res = await ev.evaluate(candidate, { limit: Infinity, seed: 0 }, { backend });
    expect(res.itemsUsed).toBe(3);
    expect(res.score).toBeCloseTo(2 / 3, 12);
    expect(res.ci).toEqual(wilsonInterval(2, 3));
    expect(Object.fromEntries(res.items.map((i) => [i.id, i.correct]))).toEqual({ s1: true, s2: false, s3: true });
    expect(backend.generated[0]).toMatchObject({ stop: ['\n\n', 'Question:'], maxTokens: 12 });
    const test = await ev.evaluate(candidate, { limit: Infinity, seed: 0, split: 'test' }, { backend });
    expect(test.items.map((i) => i.id)).toEqual(['t1']);
  });

  it('few-shot examples come from train with the target text, the same for every item', async () => {
    const dir = await task('shots', {
      'task.json': JSON.stringify({ shots: 2, target_delimiter: ' ', fewshot_separator: '\n---\n' }),
      'train.jsonl': jsonl([
        { prompt: 'P1', answer: '1', target: 'because 1' },
        { prompt: 'P2', answer: '2' },
      ]),
      'search.jsonl': jsonl([{ prompt: 'Q', answer: 'x' }]),
      'test.jsonl': jsonl([{ prompt: 'T', answer: 'y' }]),
    });
    const ev = await GenericTaskEvaluator.fromPath(dir);
    const prefix = await ev.fewshotPrefix();
    expect([prefix === 'P1 because 1\n---\nP2 2\n---\n', prefix === 'P2 2\n---\nP1 because 1\n---\n']).toContain(true);
    const backend = new StubBackend(() => 'x');
    const res = await ev.evaluate(candidate, { limit: 5, seed: 0 }, { backend });
    expect(backend.generated[0]?.prompt).toBe(`${prefix}Q`);
    expect(res.items).toEqual([{ id: 'search/0', correct: true, score: 1 }]);
  });
});

describe('multiple_choice tasks', () => {
  it('JSONL: continuations as written, answer index or letter, the type inferred', async () => {
    const dir = await task('facts', {
      'search.jsonl': jsonl([
        { id: 'f1', question: 'Q: sky?\nA. blue\nB. red\nAnswer:', choices: [' A', ' B'], answer: 0 },
        { id: 'f2', question: 'Q: grass?\nA. red\nB. green\nAnswer:', choices: [' A', ' B'], answer: 'B' },
        { id: 'f3', question: 'Q: snow?\nA. white\nB. black\nAnswer:', choices: [' A', ' B'], answer: 0 },
      ]),
      'test.jsonl': jsonl([{ id: 'x', question: 'Q', choices: [' A', ' B'], answer: 1 }]),
    });
    const def = await loadTaskDefinition(dir);
    expect(def.type).toBe('multiple_choice');
    // The stub always prefers " A": right on f1 and f3.
    const backend = new StubBackend(undefined, (r) => (r.continuation === ' A' ? -0.1 : -3));
    const res = await new GenericTaskEvaluator(def).evaluate(candidate, { limit: Infinity, seed: 0 }, { backend });
    expect(res.score).toBeCloseTo(2 / 3, 12);
    expect(res.items.find((i) => i.id === 'f2')?.correct).toBe(false);
    expect(backend.scored.filter((r) => r.context === 'Q: sky?\nA. blue\nB. red\nAnswer:').map((r) => r.continuation)).toEqual([' A', ' B']);
  });

  it('CSV with a header and choice columns; length normalization changes the pick', async () => {
    const dir = await task('csv-mc', {
      'task.yaml': 'length_normalize: bytes\ntarget_delimiter: " "\n',
      'search.csv': 'id,question,A,B,answer\nc1,"Capital of France, in one word?",Paris,the city of Lyon,A\n',
      'test.csv': 'id,question,A,B,answer\nc2,Q,x,y,B\n',
    });
    const def = await loadTaskDefinition(dir);
    expect(def).toMatchObject({ type: 'multiple_choice', lengthNormalization: 'bytes', targetDelimiter: ' ' });
    // Raw sums pick Paris (−6 > −10); per byte Paris −6/6 = −1 < Lyon −10/17 ≈ −0.59, so Lyon is picked.
    const backend = new StubBackend(undefined, (r) => (r.continuation === ' Paris' ? -6 : -10));
    const res = await new GenericTaskEvaluator(def).evaluate(candidate, { limit: Infinity, seed: 0 }, { backend });
    expect(res.items).toEqual([{ id: 'c1', correct: false, score: 0 }]);
    expect(backend.scored.map((r) => r.continuation)).toEqual([' Paris', ' the city of Lyon']);
    expect(backend.scored[0]?.context).toBe('Capital of France, in one word?');
  });

  it('a single .jsonl file is a task for either split', async () => {
    const dir = await task('single', { 'items.jsonl': jsonl([{ prompt: 'a', answer: 'b' }]) });
    const def = await loadTaskDefinition(path.join(dir, 'items.jsonl'));
    expect(def).toMatchObject({ name: 'items', type: 'generate' });
    expect(def.splits.search).toBe(def.splits.test);
  });
});

describe('task.yaml as the demo family writes it', () => {
  it('description, fields, metric, splits, length_normalize: false all load', async () => {
    const dir = await task('demo-facts', {
      'task.yaml': [
        '# Generated; do not edit by hand.',
        'name: demo-facts',
        'type: multiple_choice',
        'description: MMLU-format four-choice questions.',
        'splits: {search: search.jsonl, test: test.jsonl}',
        'fields: {id: id, question: question, choices: choices, answer: answer}',
        'metric: accuracy',
        'length_normalize: false',
        'shots: 0',
        '',
      ].join('\n'),
      'search.jsonl': jsonl([{ id: 'f1', question: 'Q?\nAnswer:', choices: [' A', ' B', ' C', ' D'], answer: 2 }]),
      'test.jsonl': jsonl([{ id: 'f2', question: 'Q?\nAnswer:', choices: [' A', ' B', ' C', ' D'], answer: 0 }]),
    });
    const def = await loadTaskDefinition(dir);
    expect(def).toMatchObject({ name: 'demo-facts', type: 'multiple_choice', lengthNormalization: 'none', shots: 0 });
    const backend = new StubBackend(undefined, (r) => (r.continuation === ' C' ? -1 : -2));
    expect((await new GenericTaskEvaluator(def).evaluate(candidate, { limit: 10, seed: 0 }, { backend })).score).toBe(1);
  });

  it('fields map other key names; a metric that does not fit the type is an error', async () => {
    const dir = await task('renamed', {
      'task.yaml': 'fields: {id: key, prompt: input, answer: output}\nmetric: exact_match\n',
      'search.jsonl': jsonl([{ key: 'k1', input: 'say yes', output: 'yes' }]),
      'test.jsonl': jsonl([{ key: 'k2', input: 'say no', output: 'no' }]),
    });
    const res = await (await GenericTaskEvaluator.fromPath(dir)).evaluate(candidate, { limit: 10, seed: 0 }, { backend: new StubBackend(() => ' yes') });
    expect(res.items).toEqual([{ id: 'k1', correct: true, score: 1 }]);
    const wrong = await task('wrong-metric', { 'task.yaml': 'metric: accuracy\n', 'search.jsonl': jsonl([{ prompt: 'a', answer: 'b' }]), 'test.jsonl': jsonl([{ prompt: 'a', answer: 'b' }]) });
    await expect(loadTaskDefinition(wrong)).rejects.toMatchObject({ code: 'DATASET_MALFORMED', message: expect.stringContaining('metric: a generate task is scored by exact_match, not accuracy') });
  });
});

describe('task errors name the file, line and key', () => {
  it.each([
    ['unknown key', { 'task.yaml': 'max_token: 3\n', 'search.jsonl': '{"prompt":"a","answer":"b"}\n', 'test.jsonl': '{"prompt":"a","answer":"b"}\n' }, /task\.yaml: unknown key max_token/],
    ['wrong type', { 'task.yaml': 'stop: "\\n"\n', 'search.jsonl': '{"prompt":"a","answer":"b"}\n', 'test.jsonl': '{"prompt":"a","answer":"b"}\n' }, /task\.yaml: stop: /],
    ['bad regex', { 'task.yaml': 'answer_regex: "(("\n', 'search.jsonl': '{"prompt":"a","answer":"b"}\n', 'test.jsonl': '{"prompt":"a","answer":"b"}\n' }, /answer_regex/],
    ['shots without train', { 'task.yaml': 'shots: 2\n', 'search.jsonl': '{"prompt":"a","answer":"b"}\n', 'test.jsonl': '{"prompt":"a","answer":"b"}\n' }, /shots: 2 needs a fewshot split/],
  ])('%s', async (name, files, message) => {
    const dir = await task(`bad-${name.replace(/\W/g, '-')}`, files);
    await expect(loadTaskDefinition(dir)).rejects.toMatchObject({ code: 'DATASET_MALFORMED', message: expect.stringMatching(message) });
  });

  it('missing splits and bad records', async () => {
    const noTest = await task('no-test', { 'search.jsonl': '{"prompt":"a","answer":"b"}\n' });
    await expect(loadTaskDefinition(noTest)).rejects.toMatchObject({ code: 'DATASET_MISSING', message: expect.stringContaining('test.jsonl') });
    const dup = await task('dup', { 'search.jsonl': '{"id":"a","prompt":"a","answer":"b"}\n{"id":"a","prompt":"c","answer":"d"}\n', 'test.jsonl': '{"prompt":"a","answer":"b"}\n' });
    const ev = await GenericTaskEvaluator.fromPath(dup);
    await expect(ev.subsetOrder('search', 0)).rejects.toMatchObject({ code: 'DATASET_MALFORMED', message: expect.stringMatching(/search\.jsonl:2: duplicate id "a"/) });
    const badAnswer = await task('bad-answer', { 'search.jsonl': '{"question":"q","choices":[" A"," B"],"answer":2}\n', 'test.jsonl': '{"question":"q","choices":[" A"," B"],"answer":0}\n' });
    await expect((await GenericTaskEvaluator.fromPath(badAnswer)).subsetOrder('search', 0)).rejects.toMatchObject({ message: expect.stringMatching(/search\.jsonl:1: answer 2 is not one of the 2 choices/) });
    const notJson = await task('not-json', { 'search.jsonl': '{"prompt": \n', 'test.jsonl': '' });
    await expect(loadTaskDefinition(notJson)).rejects.toMatchObject({ code: 'DATASET_MALFORMED', message: expect.stringContaining('search.jsonl:1') });
  });
});
