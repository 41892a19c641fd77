/**
 * The base tokenizer stripped of its ids ≥ vocab_size before the output vocabulary is built
 * (semantics §1.5, mergekit/tokenizer/build.py get_stripped_tokenizer), and the tokenizer_config.json
 * written beside a generated tokenizer.json (added_tokens_decoder as transformers' save_pretrained
 * writes it). Output rows are checked against source rows named by hand from the fixtures.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dryRunReport, formatDryRun } from '../../src/cli/merge.js';
import { materializePlan } from '../../src/merge/materialize.js';
import { planYaml } from './merge-fixtures.js';
import { ensureMergeWorkerBuilt } from './merge-worker-build.js';
import { EMBED, HEAD, mean, rowsOf, TokenizerFixtures, ZERO } from './tokenizer-fixtures.js';

let fx: TokenizerFixtures;
const row = (name: string, tensor: string, r: number): number[] => fx.row(name, tensor, r);
/** transformers writes big integers such as this one; a JSON round trip in JS would print 1e+30. */
const SB_CONFIG = '{\n  "bos_token": "<s>",\n  "eos_token": "</s>",\n  "model_max_length": 1000000000000000019884624838656,\n  "pad_token": "<pad>",\n  "tokenizer_class": "PreTrainedTokenizerFast",\n  "unk_token": "<unk>"\n}\n';

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  fx = new TokenizerFixtures('evomerge-tokstrip-');
  // sb: <unk>0 <s>1 </s>2 a3 b4 ab5 c6 d7 | cd8 e9 ea10 <pad>11, 8 rows (vocab_size 8): cd, e, ea and <pad> are stripped.
  await fx.model('sb', ['a', 'b', 'ab', 'c', 'd', 'cd', 'e', 'ea'], { seed: 1, rows: 8, extraAdded: [{ content: '<pad>', id: 11 }], merges: ['a b', 'e a'] });
  fs.writeFileSync(path.join(fx.root, 'sb', 'tokenizer_config.json'), SB_CONFIG);
  // fa: e3 a4 cd5; fb (tied): ab3 e4.
  await fx.model('fa', ['e', 'a', 'cd'], { seed: 2 });
  await fx.model('fb', ['ab', 'e'], { seed: 3, tied: true });
  // A merge whose result is stripped: "c d" makes cd (id 8 of 8 rows).
  await fx.model('sbm', ['a', 'b', 'ab', 'c', 'd', 'cd'], { seed: 4, rows: 8, merges: ['a b', 'c d'] });
  // WordLevel with an added token past its 4 rows.
  await fx.model('wl', ['a'], { seed: 5, extraAdded: [{ content: '<tool>', id: 4 }] });
  await fx.model('plain', ['a', 'b'], { seed: 6 });
}, 180_000);

afterAll(() => {
  fx?.remove();
});

function selecting(source: string, pick: string, models = ['sb', 'fa', 'fb']): string {
  const list = models.map((m) => `{model: ${m}, parameters: {weight: ${m === pick ? 1 : 0}}}`).join(', ');
  return `merge_method: linear\nbase_model: ${models[0] ?? 'sb'}\ntokenizer_source: ${source}\nmodels: [${list}]\n`;
}

interface TokenizerFile {
  model: { vocab: Record<string, number>; merges: unknown[]; type: string };
  added_tokens: { id: number; content: string; special: boolean; normalized: boolean }[];
  pre_tokenizer: unknown;
}
const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;
const special = (content: string): Record<string, unknown> => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true });
const plainToken = (content: string): Record<string, unknown> => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false, special: false });

describe('tokenizer_source: base with tokens past vocab_size', () => {
  it('writes the base tokenizer without them, their merges and added tokens; rows and vocab_size follow', async () => {
    const { dir, warnings } = await fx.merge(selecting('base', 'fa'));
    const tok = readJson<TokenizerFile>(path.join(dir, 'tokenizer.json'));
    expect(tok.model.vocab).toEqual({ '<unk>': 0, '<s>': 1, '</s>': 2, a: 3, b: 4, ab: 5, c: 6, d: 7 });
    // "e a" has a stripped part; "a b" stays. The rest of the file is the base's.
    expect(tok.model.merges).toEqual(['a b']);
    expect(tok.model.type).toBe('BPE');
    expect(tok.added_tokens.map((a) => a.content)).toEqual(['<unk>', '<s>', '</s>']);
    expect(tok.pre_tokenizer).toEqual({ type: 'Whitespace' });
    expect(readJson<Record<string, unknown>>(path.join(dir, 'config.json'))['vocab_size']).toBe(8);
    // fa in sb's stripped vocabulary: its own <unk> <s> </s>, a (its 4); b, ab, c, d: the base's (fb has ab too, the base wins).
    const want = [row('fa', EMBED, 0), row('fa', EMBED, 1), row('fa', EMBED, 2), row('fa', EMBED, 4), row('sb', EMBED, 4), row('sb', EMBED, 5), row('sb', EMBED, 6), row('sb', EMBED, 7)];
    expect(rowsOf(dir, EMBED)).toEqual(want);
    expect(warnings.some((w) => w.includes('has 4 token(s) at ids ≥ vocab_size 8 ("cd" 8, "e" 9, "ea" 10, "<pad>" 11), stripped from the output tokenizer'))).toBe(true);
  });

  it('keeps the base its own rows, and plans plain reads when nothing else moves', async () => {
    const { dir, plan } = await fx.merge(selecting('base', 'sb', ['sb']));
    expect(rowsOf(dir, EMBED)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((r) => row('sb', EMBED, r)));
    expect(rowsOf(dir, HEAD)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((r) => row('sb', HEAD, r)));
    // The 8 rows are the stripped vocabulary's: the identity, so no permutation is planned.
    expect(plan.tasks.every((t) => t.inputs.every((i) => i.kind === 'file'))).toBe(true);
    expect(formatDryRun(dryRunReport(plan)).split('\n').at(-1)).toMatch(/; tokenizer from .*sb \(tokenizer\.json, tokenizer_config\.json generated\)$/);
  });

  it("rewrites only tokenizer_config.json's added_tokens_decoder, and warns about a stripped special token", async () => {
    const { dir, warnings } = await fx.merge(selecting('base', 'sb'));
    const text = fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8');
    const decoder = { 0: special('<unk>'), 1: special('<s>'), 2: special('</s>') };
    const body = JSON.stringify(decoder, null, 2).replaceAll('\n', '\n  ');
    // Appended as the last member; the other bytes (the big integer too) are the base's.
    expect(text).toBe(SB_CONFIG.replace('"unk_token": "<unk>"\n}', `"unk_token": "<unk>",\n  "added_tokens_decoder": ${body}\n}`));
    expect(warnings.some((w) => /tokenizer_config\.json: pad_token "<pad>" was stripped/.test(w))).toBe(true);
  });
});

describe('tokenizer_source: union over a stripped base', () => {
  it('appends the tokens the stripped base lacks; their rows come from the models having them', async () => {
    const { dir } = await fx.merge(selecting('union', 'sb'));
    const tok = readJson<TokenizerFile>(path.join(dir, 'tokenizer.json'));
    expect(tok.model.vocab).toEqual({ '<unk>': 0, '<s>': 1, '</s>': 2, a: 3, b: 4, ab: 5, c: 6, d: 7 });
    // fa's regular tokens by id: e3 (stripped from sb, so appended), a4, cd5; fb adds nothing new.
    expect(tok.added_tokens.slice(3).map((a) => [a.id, a.content, a.special])).toEqual([
      [8, 'e', false],
      [9, 'cd', false],
    ]);
    expect(readJson<Record<string, unknown>>(path.join(dir, 'config.json'))['vocab_size']).toBe(10);
    // sb's rows, then e: fa and fb have it, the (stripped) base does not: their mean; cd: fa's only.
    const want = [0, 1, 2, 3, 4, 5, 6, 7].map((r) => row('sb', EMBED, r)).concat([mean(row('fa', EMBED, 3), row('fb', EMBED, 4)), row('fa', EMBED, 5)]);
    expect(rowsOf(dir, EMBED)).toEqual(want);
    // fb's head is its embedding; sb and fa have their own.
    expect(rowsOf(dir, HEAD)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((r) => row('sb', HEAD, r)).concat([mean(row('fa', HEAD, 3), row('fb', EMBED, 4)), row('fa', HEAD, 5)]));
    const config = readJson<{ added_tokens_decoder: Record<string, unknown> }>(path.join(dir, 'tokenizer_config.json'));
    expect(config.added_tokens_decoder).toEqual({ 0: special('<unk>'), 1: special('<s>'), 2: special('</s>'), 8: plainToken('e'), 9: plainToken('cd') });
    expect(Object.keys(config.added_tokens_decoder)).toEqual(['0', '1', '2', '8', '9']);
  });
});

describe('tokenizer_source: <the base by name>', () => {
  it('is read as it is, as mergekit loads a named tokenizer_source afresh: nothing stripped, files copied', async () => {
    const { dir, warnings } = await fx.merge(selecting('sb', 'sb'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) expect(fs.readFileSync(path.join(dir, f))).toEqual(fs.readFileSync(path.join(fx.root, 'sb', f)));
    expect(readJson<Record<string, unknown>>(path.join(dir, 'config.json'))['vocab_size']).toBe(12);
    // The base's own vocabulary is still the stripped one: cd, e, ea and <pad> come from elsewhere or are zeros.
    const want = [0, 1, 2, 3, 4, 5, 6, 7].map((r) => row('sb', EMBED, r)).concat([row('fa', EMBED, 5), mean(row('fa', EMBED, 3), row('fb', EMBED, 4)), [...ZERO], [...ZERO]]);
    expect(rowsOf(dir, EMBED)).toEqual(want);
    expect(warnings.some((w) => /2 of the 12 output tokens have no row/.test(w))).toBe(true);
  });
});

describe('tokenizer_config.json and added_tokens.json', () => {
  it('lists an added token in added_tokens_decoder', async () => {
    const { dir } = await fx.merge("merge_method: linear\nbase_model: plain\ntokenizer: {source: base, tokens: {'<new>': {source: {kind: zero}}}}\nmodels: [{model: plain, parameters: {weight: 1}}]\n");
    const config = readJson<Record<string, unknown>>(path.join(dir, 'tokenizer_config.json'));
    const original = readJson<Record<string, unknown>>(path.join(fx.root, 'plain', 'tokenizer_config.json'));
    expect(config).toEqual({ ...original, added_tokens_decoder: { 0: special('<unk>'), 1: special('<s>'), 2: special('</s>'), 5: plainToken('<new>') } });
  });

  it('is copied unchanged when the vocabulary does not change', async () => {
    const { dir } = await fx.merge("merge_method: linear\nbase_model: plain\ntokenizer: {source: base, tokens: {'<s>': {source: plain, force: true}}}\nmodels: [{model: plain, parameters: {weight: 1}}]\n");
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) expect(fs.readFileSync(path.join(dir, f))).toEqual(fs.readFileSync(path.join(fx.root, 'plain', f)));
  });

  it("rewrites a donor's added_tokens.json with the added tokens past model.vocab", async () => {
    const dir = path.join(fx.root, 'withadded');
    fs.cpSync(path.join(fx.root, 'plain'), dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'added_tokens.json'), '{"<old>": 9}');
    // plain's model.vocab is <unk> <s> </s> a b (5); the union appends fa's e (5) and cd (6).
    const { dir: out } = await fx.merge(selecting('union', 'withadded', ['withadded', 'fa']));
    expect(fs.readFileSync(path.join(out, 'added_tokens.json'), 'utf8')).toBe('{\n  "cd": 6,\n  "e": 5\n}\n');
  });
});

describe('stripping errors', () => {
  it('refuses a tokenizer other than BPE, as mergekit does', async () => {
    const err = await fx.planError(selecting('base', 'wl', ['wl', 'fa']));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain(path.join(fx.root, 'wl', 'tokenizer.json'));
    expect(err.message).toContain('1 token(s) at ids ≥ vocab_size 4 ("<tool>" 4)');
    expect(err.message).toContain('model.type is "WordLevel"');
  });

  it('refuses a kept merge that makes a stripped token', async () => {
    const err = await fx.planError(selecting('union', 'sbm', ['sbm', 'fa']));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toMatch(/sbm\/tokenizer\.json: model\.merges\[1\] "c d" makes "cd", one of the 1 token\(s\) at ids ≥ vocab_size 8/);
  });

  it('names a malformed merge', async () => {
    const dir = path.join(fx.root, 'badmerge');
    fs.cpSync(path.join(fx.root, 'sb'), dir, { recursive: true });
    const file = path.join(dir, 'tokenizer.json');
    const tok = readJson<TokenizerFile>(file);
    tok.model.merges = ['a b', 'a b c'];
    fs.writeFileSync(file, JSON.stringify(tok));
    const err = await fx.planError(selecting('base', 'badmerge', ['badmerge', 'fa']));
    expect(err.code).toBe('TOKENIZER_INVALID');
    expect(err.message).toContain(`${file}: model.merges[1]: expected "a b" (one space) or ["a", "b"], got "a b c"`);
  });

  it('names an unparsable tokenizer_config.json before anything is written', async () => {
    const dir = path.join(fx.root, 'badconfig');
    fs.cpSync(path.join(fx.root, 'plain'), dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '{"bos_token": ');
    const err = await fx.planError(selecting('union', 'badconfig', ['badconfig', 'fa']));
    expect(err.code).toBe('TOKENIZER_INVALID');
    expect(err.message).toContain(`${path.join(dir, 'tokenizer_config.json')}: not valid JSON`);
  });

});

describe('generated tokenizers in a named stage', () => {
  const final = 'merge_method: linear\nmodels: [{model: s1, parameters: {weight: 1}}]\n';
  const sameTokenizer = (a: string, b: string): void => {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) expect(fs.readFileSync(path.join(a, f), 'utf8'), f).toBe(fs.readFileSync(path.join(b, f), 'utf8'));
  };

  it('hands a union on to the final document, as mergekit\'s multimerge saves each stage\'s tokenizer', async () => {
    const single = await fx.merge(selecting('union', 'sb'));
    const staged = await fx.merge(`name: s1\n${selecting('union', 'sb')}---\n${final}`);
    sameTokenizer(staged.dir, single.dir);
    expect(readJson<Record<string, unknown>>(path.join(staged.dir, 'config.json'))['vocab_size']).toBe(10);
    expect(rowsOf(staged.dir, EMBED)).toEqual(rowsOf(single.dir, EMBED));
    expect(rowsOf(staged.dir, EMBED)[8]).toEqual(mean(row('fa', EMBED, 3), row('fb', EMBED, 4)));
  });

  it("writes a stage's generated tokenizer into its --intermediate-dir folder", async () => {
    const plan = await planYaml(fx.root, `name: s1\n${selecting('union', 'sb')}---\n${final}`);
    const inter = path.join(fx.root, 'inter');
    const out = path.join(fx.root, 'inter-out');
    await materializePlan(plan, { outDir: out, intermediateDir: inter, progress: 'none', jobs: 2 });
    sameTokenizer(path.join(inter, 's1'), out);
    expect(readJson<{ added_tokens: { content: string }[] }>(path.join(inter, 's1', 'tokenizer.json')).added_tokens.map((a) => a.content)).toEqual(['<unk>', '<s>', '</s>', 'e', 'cd']);
    expect(readJson<Record<string, unknown>>(path.join(inter, 's1', 'config.json'))['vocab_size']).toBe(10);
  });

  it('hands a stripped base on', async () => {
    const single = await fx.merge(selecting('base', 'fa'));
    const staged = await fx.merge(`name: s1\n${selecting('base', 'fa')}---\n${final}`);
    sameTokenizer(staged.dir, single.dir);
    expect(rowsOf(staged.dir, EMBED)).toEqual(rowsOf(single.dir, EMBED));
  });

  it("reads a stage's added tokens as its vocabulary in a later tokenizer_source", async () => {
    const stage = "name: s1\nmerge_method: linear\nbase_model: plain\ntokenizer: {source: base, tokens: {'<new>': {source: {kind: zero}}}}\nmodels: [{model: plain, parameters: {weight: 1}}]\n---\n";
    const { dir, plan } = await fx.merge(`${stage}merge_method: linear\nbase_model: s1\ntokenizer_source: base\nmodels: [{model: s1, parameters: {weight: 1}}]\n`);
    // The stage's vocabulary is its output's: the identity, so the stage's tensors are used as they are.
    expect(plan.tasks.find((t) => t.output === EMBED)?.inputs.map((i) => i.kind)).toEqual(['stage']);
    expect(rowsOf(dir, EMBED)).toEqual([0, 1, 2, 3, 4].map((r) => row('plain', EMBED, r)).concat([[...ZERO]]));
    const config = readJson<{ added_tokens_decoder: Record<string, unknown> }>(path.join(dir, 'tokenizer_config.json'));
    expect(config.added_tokens_decoder['5']).toEqual(plainToken('<new>'));
    expect(readJson<TokenizerFile>(path.join(dir, 'tokenizer.json')).added_tokens.map((a) => [a.id, a.content])).toEqual([[0, '<unk>'], [1, '<s>'], [2, '</s>'], [5, '<new>']]);
  });

  it("permutes a stage's computed embedding into another vocabulary as the stage written and loaded back would be", async () => {
    const later = (s: string): string => `merge_method: linear\nbase_model: ${s}\ntokenizer_source: union\nmodels: [{model: ${s}, parameters: {weight: 1}}, {model: plain, parameters: {weight: 0}}]\n`;
    const staged = await fx.merge(`name: s1\n${selecting('union', 'sb')}---\n${later('s1')}`);
    expect(staged.plan.tasks.find((t) => t.output === EMBED)?.inputs.map((i) => (i.kind === 'permuted' ? i.sources.map((s) => s.kind) : i.kind))).toEqual([['stage', 'file'], ['stage', 'file']]);
    const stage = await fx.merge(selecting('union', 'sb'));
    const stepwise = await fx.merge(later(path.basename(stage.dir)));
    sameTokenizer(staged.dir, stepwise.dir);
    expect(fs.readFileSync(path.join(staged.dir, 'model.safetensors'))).toEqual(fs.readFileSync(path.join(stepwise.dir, 'model.safetensors')));
  });
});
