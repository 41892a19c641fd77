import { describe, expect, it } from 'vitest';
import { CommandEvaluator, parseJsonPath, runShellCommand, valueAtPath } from '../../src/eval/command.js';
import { fillTemplate, shellQuote } from '../../src/eval/placeholders.js';
import { Z_95 } from '../../src/eval/stats.js';

const node = shellQuote(process.execPath);
const candidate = { id: 'cand-7', dir: "/models/it's here", gguf: '/models/m.gguf', config: null, genome: {} };

describe('path expressions', () => {
  it.each([
    ['results.gsm8k.exact_match,strict-match', ['results', 'gsm8k', 'exact_match,strict-match']],
    ['a[0].b', ['a', 0, 'b']],
    ['scores["x.y"].mean', ['scores', 'x.y', 'mean']],
    ['a\\.b.c', ['a.b', 'c']],
    ['top', ['top']],
  ])('%s', (expr, keys) => {
    expect(parseJsonPath(expr)).toEqual(keys);
  });

  it('errors name the path, the failing key and what was there', () => {
    const doc = { results: { gsm8k: { 'exact_match,strict-match': 0.5, alias: 'gsm8k' } } };
    expect(valueAtPath(doc, 'results.gsm8k.exact_match,strict-match', 'out.json')).toBe(0.5);
    expect(() => valueAtPath(doc, 'results.mmlu.acc', 'out.json')).toThrow(
      expect.objectContaining({ code: 'SCORE_PATH', message: 'out.json: path "results.mmlu.acc": no key "mmlu" under results (found: gsm8k)' }),
    );
    expect(() => valueAtPath({ a: [1] }, 'a[3]', 'out.json')).toThrow(expect.objectContaining({ code: 'SCORE_PATH' }));
    expect(() => parseJsonPath('a..b')).toThrow(expect.objectContaining({ code: 'BAD_COMMAND_OPTION' }));
    expect(() => parseJsonPath('a[x]')).toThrow(expect.objectContaining({ code: 'BAD_COMMAND_OPTION' }));
  });
});

describe('placeholders', () => {
  it('are shell-quoted, and unknown ones are errors', () => {
    expect(fillTemplate('run {model_dir} > {output}', { model_dir: "/a b/it's", output: '/o' }, 'cmd', shellQuote)).toBe(`run '/a b/it'\\''s' > '/o'`);
    expect(() => fillTemplate('run {modle_dir}', { model_dir: '/a' }, 'cmd')).toThrow(expect.objectContaining({ code: 'UNKNOWN_PLACEHOLDER', message: expect.stringContaining('{modle_dir}') }));
    expect(() => new CommandEvaluator({ command: 'x {model}', scorePath: 's' })).toThrow(expect.objectContaining({ code: 'BAD_COMMAND_OPTION' }));
  });
});

describe('CommandEvaluator', () => {
  it('writes {output} as a file: score, stderr interval, items; placeholders reach the command intact', async () => {
    // The score is 0.25 only when every argument arrived as one intact word.
    const script = `const fs=require('fs');const ok=JSON.stringify(process.argv.slice(2))===JSON.stringify(["/models/it's here","40","3","search","cand-7"]);fs.writeFileSync(process.argv[1],JSON.stringify({results:{gsm8k:{'exact_match,strict-match':ok?0.25:-1,'exact_match_stderr,strict-match':0.05}},n:40}))`;
    const ev = new CommandEvaluator({
      command: `${node} -e ${shellQuote(script)} {output} {model_dir} {limit} {seed} {split} {id}`,
      scorePath: 'results.gsm8k.exact_match,strict-match',
      stderrPath: 'results.gsm8k.exact_match_stderr,strict-match',
      itemsPath: 'n',
    });
    expect(ev.needs).toBe('hf-dir');
    const res = await ev.evaluate(candidate, { limit: 40, seed: 3, split: 'search' }, {});
    expect(res.score).toBe(0.25);
    expect(res.stderr).toBe(0.05);
    expect(res.ci?.[0]).toBeCloseTo(0.25 - Z_95 * 0.05, 12);
    expect(res.ci?.[1]).toBeCloseTo(0.25 + Z_95 * 0.05, 12);
    expect(res.itemsUsed).toBe(40);
  });

  it('reads the newest JSON in an {output} folder (lm-eval layout) and stdout without {output}', async () => {
    const script = `const fs=require('fs'),p=require('path');const d=p.join(process.argv[1],'model__x');fs.mkdirSync(d,{recursive:true});fs.writeFileSync(p.join(d,'samples_gsm8k.jsonl'),'{}');fs.writeFileSync(p.join(d,'results_2025.json'),JSON.stringify({results:{t:{acc:0.75}}}))`;
    const folder = await new CommandEvaluator({ command: `${node} -e ${shellQuote(script)} {output}`, scorePath: 'results.t.acc', items: 12 }).evaluate(candidate, { limit: Infinity, seed: 0 }, {});
    expect(folder).toMatchObject({ score: 0.75, ci: null, itemsUsed: 12 });
    const stdout = await new CommandEvaluator({ command: `${node} -e ${shellQuote('console.log("loading..."); console.log(JSON.stringify({score: 0.5}))')} {limit}`, scorePath: 'score' }).evaluate(
      candidate,
      { limit: 30, seed: 0 },
      {},
    );
    expect(stdout).toMatchObject({ score: 0.5, itemsUsed: 30 });
  });

  it('{gguf} makes the evaluator ask for a GGUF', () => {
    expect(new CommandEvaluator({ command: 'llama-perplexity -m {gguf}', scorePath: 'ppl' }).needs).toBe('gguf');
  });

  it('failures name the command: exit code with stderr, missing output, wrong path, timeout', async () => {
    const fails = new CommandEvaluator({ command: `${node} -e ${shellQuote('console.error("CUDA out of memory"); process.exit(3)')}`, scorePath: 's' });
    await expect(fails.evaluate(candidate, { limit: 1, seed: 0 }, {})).rejects.toMatchObject({ code: 'COMMAND_FAILED', message: expect.stringMatching(/exited with code 3: CUDA out of memory/) });
    const silent = new CommandEvaluator({ command: 'true {output}', scorePath: 's' });
    await expect(silent.evaluate(candidate, { limit: 1, seed: 0 }, {})).rejects.toMatchObject({ code: 'COMMAND_OUTPUT', message: expect.stringContaining('wrote no JSON') });
    const wrongPath = new CommandEvaluator({ command: 'echo \'{"results": {"a": 1}}\'', scorePath: 'results.b' });
    await expect(wrongPath.evaluate(candidate, { limit: 1, seed: 0 }, {})).rejects.toMatchObject({ code: 'SCORE_PATH', message: expect.stringMatching(/stdout: path "results\.b": no key "b" under results \(found: a\)/) });
    const notNumber = new CommandEvaluator({ command: 'echo \'{"s": "high"}\'', scorePath: 's' });
    await expect(notNumber.evaluate(candidate, { limit: 1, seed: 0 }, {})).rejects.toMatchObject({ code: 'SCORE_PATH', message: expect.stringContaining('not a finite number') });
    await expect(runShellCommand('sleep 5', { timeoutMs: 200 })).rejects.toMatchObject({ code: 'COMMAND_TIMEOUT', message: expect.stringContaining('"sleep 5"') });
  });
});
