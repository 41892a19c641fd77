import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bestChoice, formatSubject, MMLU_CONTINUATIONS, mmluPrompt, mmluQuestionBlock, MmluEvaluator } from '../../evaluators/mmlu.js';
import { parseCsv } from '../../src/eval/csv.js';
import { loadMmlu, mmluSubjects } from '../../src/eval/datasets.js';
import { MMLU_SUBJECTS } from '../../src/eval/dataset-manifest.js';
import { wilsonInterval } from '../../src/eval/stats.js';
import { describeWithShared } from '../shared-dir.js';
import { StubBackend } from './stub-backend.js';

const candidate = { id: 'm', dir: '/nonexistent', config: null, genome: {} };

describe('CSV (RFC 4180)', () => {
  it('handles quoted commas, newlines, doubled quotes, CRLF, blank lines and a missing final newline', () => {
    const text = 'a,"b, c","say ""hi""\nthere"\r\n\r\n1,,3\nlast,row,"x"';
    expect(parseCsv(text, 'f.csv')).toEqual([
      ['a', 'b, c', 'say "hi"\nthere'],
      ['1', '', '3'],
      ['last', 'row', 'x'],
    ]);
    expect(parseCsv('\ufeffx,y\n', 'f.csv')).toEqual([['x', 'y']]);
  });

  it('reads stray quotes as Python and pandas do, and reports an unclosed quote with file and line', () => {
    expect(parseCsv('a,b"c\n"a"b,x\n', 'f.csv')).toEqual([
      ['a', 'b"c'],
      ['ab', 'x'],
    ]);
    expect(() => parseCsv('a,b\n"open,field\n', 'bad.csv')).toThrow(expect.objectContaining({ code: 'BAD_CSV', message: expect.stringMatching(/^bad\.csv:2: /) }));
  });
});

const shot = { id: 'dev/x/0', subject: 'college_physics', question: 'What is 1+1?', choices: ['1', '2', '3', '4'] as const, answer: 'B' as const };
const item = { id: 'val/x/0', subject: 'college_physics', question: 'Which is a vector?', choices: ['mass', 'speed', 'velocity', 'time'] as const, answer: 'C' as const };

describe('MMLU prompt (the original paper format)', () => {
  it('header, shots with answers, then the question ending in "Answer:"', () => {
    expect(formatSubject('high_school_us_history')).toBe('high school us history');
    expect(mmluQuestionBlock(shot, true)).toBe('What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n');
    expect(mmluPrompt('college_physics', [shot], item)).toBe(
      'The following are multiple choice questions (with answers) about college physics.\n\n' +
        'What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n' +
        'Which is a vector?\nA. mass\nB. speed\nC. velocity\nD. time\nAnswer:',
    );
    expect(MMLU_CONTINUATIONS).toEqual([' A', ' B', ' C', ' D']);
  });

  it('the choice with the highest log-likelihood wins, the first on ties', () => {
    expect(bestChoice([{ logprob: -3 }, { logprob: -1 }, { logprob: -2 }, { logprob: -1 }])).toBe(1);
    expect(bestChoice([{ logprob: -1 }, { logprob: -1 }])).toBe(0);
  });
});

describe('MmluEvaluator on a hand-made data folder', () => {
  let dir: string;
  const csvRow = (q: string, answer: string): string => `"${q}",one,"two, 2",three,four,${answer}`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'evo-mmlu-'));
    await mkdir(path.join(dir, 'mmlu'));
    for (const subject of ['anatomy', 'virology']) {
      await writeFile(path.join(dir, 'mmlu', `${subject}_dev.csv`), `${[0, 1, 2, 3, 4, 5].map((i) => csvRow(`${subject} dev ${i}`, 'ABCDAB'[i] ?? 'A')).join('\n')}\n`);
      const n = subject === 'anatomy' ? 8 : 4;
      await writeFile(path.join(dir, 'mmlu', `${subject}_val.csv`), `${Array.from({ length: n }, (_, i) => csvRow(`${subject} q${i}`, 'ABCD'[i % 4] ?? 'A')).join('\n')}\n`);
    }
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('scores by log-likelihood of " A".." D" with fixed logprobs, per subject, micro and macro', async () => {
    // The stub prefers " A" everywhere except for anatomy q1 (" B"): anatomy gets q0, q4 (A) and q1 (B) right = 3/8; virology q0 = 1/4.
    const backend = new StubBackend(undefined, (r) => {
      const q = /\n\n([a-z]+ q\d+)\nA\./.exec(r.context)?.[1];
      if (q === 'anatomy q1') return r.continuation === ' B' ? -0.5 : -2;
      return r.continuation === ' A' ? -0.7 : -1.9;
    });
    const ev = new MmluEvaluator({ dataDir: dir, shots: 2 });
    const res = await ev.evaluate(candidate, { limit: Infinity, seed: 3 }, { backend });
    expect(res.itemsUsed).toBe(12);
    expect(res.score).toBeCloseTo(4 / 12, 12);
    expect(res.ci).toEqual(wilsonInterval(4, 12));
    expect(res.details).toMatchObject({
      average: 'micro',
      split: 'val',
      subjects: { anatomy: { correct: 3, n: 8 }, virology: { correct: 1, n: 4 } },
      macro: { score: (3 / 8 + 1 / 4) / 2 },
    });
    // Four continuations per item, one shared context, with the two first dev rows as shots.
    expect(backend.scored).toHaveLength(48);
    const first = backend.scored[0];
    expect(backend.scored.slice(0, 4).map((r) => r.continuation)).toEqual([' A', ' B', ' C', ' D']);
    expect(first?.context.startsWith('The following are multiple choice questions (with answers) about ')).toBe(true);
    expect(first?.context.match(/Answer: [A-D]\n\n/g)).toHaveLength(2);
    expect(first?.context).toContain('\nB. two, 2\n');
    expect(first?.context.endsWith('\nD. four\nAnswer:')).toBe(true);
    const macro = await new MmluEvaluator({ dataDir: dir, shots: 0, average: 'macro' }).evaluate(candidate, { limit: Infinity, seed: 3 }, { backend });
    expect(macro.score).toBeCloseTo((3 / 8 + 1 / 4) / 2, 12);
    // Zero shots: the header is followed directly by the question.
    const zeroShot = backend.scored.slice(48).find((r) => r.context.includes('virology q2'));
    expect(zeroShot?.context).toBe('The following are multiple choice questions (with answers) about virology.\n\nvirology q2\nA. one\nB. two, 2\nC. three\nD. four\nAnswer:');
  });

  it('subsets are stratified by subject (8:4 → 2:1)', async () => {
    const ev = new MmluEvaluator({ dataDir: dir });
    const order = await ev.subsetOrder('search', 5);
    const first6 = order.slice(0, 6);
    expect(first6.filter((id) => id.includes('/anatomy/'))).toHaveLength(4);
    expect(first6.filter((id) => id.includes('/virology/'))).toHaveLength(2);
  });

  it('malformed rows name the file and row', async () => {
    await writeFile(path.join(dir, 'mmlu', 'broken_val.csv'), 'q,a,b,c,d,E\n');
    await expect(loadMmlu(dir, 'val', ['broken'])).rejects.toMatchObject({ code: 'DATASET_MALFORMED', message: expect.stringContaining('broken_val.csv row 1') });
    await rm(path.join(dir, 'mmlu', 'broken_val.csv'));
  });
});

describeWithShared('MMLU files in shared/datasets', (shared) => {
  it('57 subjects per split with the documented row counts, in the manifest', async () => {
    const data = path.join(shared, 'datasets');
    expect(await mmluSubjects(data, 'val')).toEqual(MMLU_SUBJECTS);
    expect(await loadMmlu(data, 'val')).toHaveLength(1531);
    expect(await loadMmlu(data, 'dev')).toHaveLength(285);
    const test = await loadMmlu(data, 'test');
    expect(test).toHaveLength(14042);
    expect(test.filter((r) => r.subject === 'machine_learning')).toHaveLength(112);
    // The row with a stray quote (read as pandas reads it).
    const cm = await loadMmlu(data, 'val', ['college_medicine']);
    expect(cm[5]?.question).toBe('Which of the following would be the most accurate definition of Nietzsche’s Will to Truth?"');
  });
});
