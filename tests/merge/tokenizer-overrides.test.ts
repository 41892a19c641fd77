/**
 * mergekit's `tokenizer:` block beyond `source` (semantics §1.5, mergekit/tokenizer/embed.py):
 * `tokens` overrides of a token's embedding row, with and without `force`, and
 * `pad_to_multiple_of`, whose rows are each model's mean permuted row. Output rows are checked
 * against source rows named by hand from the fixtures' vocabularies, and means computed here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dryRunReport, formatDryRunTask } from '../../src/cli/merge.js';
import { ConfigError } from '../../src/merge/config-issue.js';
import { parseMergeConfig, stringifyMergeConfig } from '../../src/merge/config.js';
import { roundToBf16 } from '../../src/tensors/bf16.js';
import { planYaml, readDir } from './merge-fixtures.js';
import { ensureMergeWorkerBuilt } from './merge-worker-build.js';
import { EMBED, HEAD, HIDDEN, rowsOf, TokenizerFixtures, ZERO } from './tokenizer-fixtures.js';

let fx: TokenizerFixtures;
const row = (name: string, tensor: string, r: number): number[] => fx.row(name, tensor, r);

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  fx = new TokenizerFixtures('evomerge-tokover-');
  // base: <unk>0 <s>1 </s>2 a3 b4 c5 (untied); ft1: b3 a4 d5 (tied); ft2: a3 e4 d5 f6.
  await fx.model('base', ['a', 'b', 'c'], { seed: 1 });
  await fx.model('ft1', ['b', 'a', 'd'], { seed: 2, tied: true });
  await fx.model('ft2', ['a', 'e', 'd', 'f'], { seed: 3 });
  await fx.model('same1', ['a', 'b', 'c'], { seed: 4 });
  await fx.model('bb', ['a'], { seed: 20, dtype: 'BF16' });
  await fx.model('x1', ['a', 'z'], { seed: 21, dtype: 'BF16' });
}, 180_000);

afterAll(() => {
  fx?.remove();
});

/** A linear merge selecting one model (weight 1, the others 0) with a `tokenizer:` block. */
function selecting(pick: string, tokenizer: string, models = ['base', 'ft1', 'ft2']): string {
  const list = models.map((m) => `{model: ${m}, parameters: {weight: ${m === pick ? 1 : 0}}}`).join(', ');
  return `merge_method: linear\nbase_model: ${models[0] ?? 'base'}\ntokenizer: ${tokenizer}\nmodels: [${list}]\n`;
}

/** torch.mean over rows on CPU: an f32 sum (here exact in f64, then rounded), an f32 division, then the dtype. */
function padMean(rows: readonly number[][], round: (x: number) => number = Math.fround): number[] {
  return Array.from({ length: HIDDEN }, (_x, j) => round(Math.fround(Math.fround(rows.reduce((acc, r) => acc + (r[j] ?? 0), 0)) / rows.length)));
}

function configOf(dir: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

interface AddedEntry {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
}
function addedTokens(dir: string): AddedEntry[] {
  return (JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as { added_tokens: AddedEntry[] }).added_tokens;
}

const baseRows = (tensor: string): number[][] => [0, 1, 2, 3, 4, 5].map((r) => row('base', tensor, r));
// ft1 in the base's vocabulary: its own <unk> <s> </s>, a (its 4), b (its 3); c from the base.
const ft1Rows = (tensor: string): number[][] => [row('ft1', EMBED, 0), row('ft1', EMBED, 1), row('ft1', EMBED, 2), row('ft1', EMBED, 4), row('ft1', EMBED, 3), row('base', tensor, 5)];

describe('pad_to_multiple_of', () => {
  it('pads 6 rows to 8 with the mean of each model\'s own rows, in embed and lm_head; vocab_size 8; tokenizer unchanged', async () => {
    const { dir } = await fx.merge(selecting('base', '{source: base, pad_to_multiple_of: 8}'));
    const embed = baseRows(EMBED);
    expect(rowsOf(dir, EMBED)).toEqual([...embed, padMean(embed), padMean(embed)]);
    const head = baseRows(HEAD);
    expect(rowsOf(dir, HEAD)).toEqual([...head, padMean(head), padMean(head)]);
    expect(configOf(dir)['vocab_size']).toBe(8);
    // mergekit adds no tokens for padding: the tokenizer files are the base's, unchanged.
    expect(fs.readFileSync(path.join(dir, 'tokenizer.json'))).toEqual(fs.readFileSync(path.join(fx.root, 'base', 'tokenizer.json')));
  });

  it('takes the mean after the permutation: a tied model\'s rows with the borrowed ones', async () => {
    const { dir } = await fx.merge(selecting('ft1', '{source: base, pad_to_multiple_of: 8}'));
    const embed = ft1Rows(EMBED);
    expect(rowsOf(dir, EMBED)).toEqual([...embed, padMean(embed), padMean(embed)]);
    // Its head is its embedding, but c's row is the base's lm_head row: the head's mean differs.
    const head = ft1Rows(HEAD);
    expect(padMean(head)).not.toEqual(padMean(embed));
    expect(rowsOf(dir, HEAD)).toEqual([...head, padMean(head), padMean(head)]);
  });

  it('merges the padded rows like any other: linear of two models\' means', async () => {
    const { dir } = await fx.merge('merge_method: linear\nbase_model: base\ntokenizer: {source: base, pad_to_multiple_of: 7}\nmodels: [{model: base, parameters: {weight: 1}}, {model: ft1, parameters: {weight: 1}}]\n');
    const a = padMean(baseRows(EMBED));
    const b = padMean(ft1Rows(EMBED));
    const out = rowsOf(dir, EMBED);
    expect(out).toHaveLength(7);
    expect(out[6]).toEqual(a.map((v, j) => Math.fround(Math.fround(v + (b[j] ?? 0)) / 2)));
  });

  it('leaves a vocabulary that is already a multiple alone (plain file reads), and pads identical tokenizers otherwise', async () => {
    const yaml = (n: number): string => `merge_method: linear\nbase_model: base\ntokenizer: {source: base, pad_to_multiple_of: ${n}}\nmodels: [{model: base, parameters: {weight: 1}}, {model: same1, parameters: {weight: 0}}]\n`;
    const three = await fx.merge(yaml(3));
    for (const t of three.plan.tasks) expect(t.inputs.every((i) => i.kind === 'file')).toBe(true);
    expect(rowsOf(three.dir, EMBED)).toEqual(baseRows(EMBED));
    expect(configOf(three.dir)['vocab_size']).toBe(6);
    const four = await fx.merge(yaml(4));
    const embed = baseRows(EMBED);
    expect(rowsOf(four.dir, EMBED)).toEqual([...embed, padMean(embed), padMean(embed)]);
    expect(configOf(four.dir)['vocab_size']).toBe(8);
  });

  it('computes the bf16 mean from an f32 sum, rounding to bf16 once', async () => {
    const { dir } = await fx.merge('merge_method: linear\nbase_model: bb\ndtype: bfloat16\ntokenizer: {source: bb, pad_to_multiple_of: 8}\nmodels: [{model: bb, parameters: {weight: 1}}, {model: x1, parameters: {weight: 0}}]\n');
    const own = [0, 1, 2, 3].map((r) => row('bb', EMBED, r));
    const want = padMean(own, roundToBf16);
    // In-dtype accumulation (bf16 after every add) would give other bytes: the fixture tells them apart.
    const inDtype = Array.from({ length: HIDDEN }, (_x, j) => roundToBf16(own.reduce((acc, r) => roundToBf16(acc + (r[j] ?? 0)), 0) / own.length));
    expect(inDtype).not.toEqual(want);
    const out = rowsOf(dir, EMBED);
    expect(out).toEqual([...own, want, want, want, want]);
    expect(configOf(dir)['vocab_size']).toBe(8);
  });

  it('means a tokenizer block without source: union (mergekit\'s default), padded', async () => {
    // union of base, ft1, ft2: 6 + d, e, f = 9 tokens, padded to 12.
    const { dir } = await fx.merge(selecting('base', '{pad_to_multiple_of: 4}'));
    expect(configOf(dir)['vocab_size']).toBe(12);
    expect(addedTokens(dir).map((a) => a.content)).toEqual(['<unk>', '<s>', '</s>', 'd', 'e', 'f']);
    expect(rowsOf(dir, EMBED)).toHaveLength(12);
  });
});

describe('tokens overrides', () => {
  it('force false: a model lacking the token takes the override row, the others keep theirs', async () => {
    const tok = '{source: base, tokens: {b: {source: ft1}}}';
    // ft2 lacks b: ft1's b row (its 3) instead of the base's default.
    const two = await fx.merge(selecting('ft2', tok));
    expect(rowsOf(two.dir, EMBED)[4]).toEqual(row('ft1', EMBED, 3));
    // The override names ft1's own tensor for each output: ft1's head is tied, so its embedding row.
    expect(rowsOf(two.dir, HEAD)[4]).toEqual(row('ft1', EMBED, 3));
    const base = await fx.merge(selecting('base', tok));
    expect(rowsOf(base.dir, EMBED)).toEqual(baseRows(EMBED));
  });

  it('force true: every model takes the override row, the untied head its own lm_head row', async () => {
    const tok = '{source: base, tokens: {a: {source: ft2, force: true}}}';
    const base = await fx.merge(selecting('base', tok));
    expect(rowsOf(base.dir, EMBED)).toEqual([...baseRows(EMBED).slice(0, 3), row('ft2', EMBED, 3), ...baseRows(EMBED).slice(4)]);
    expect(rowsOf(base.dir, HEAD)[3]).toEqual(row('ft2', HEAD, 3));
    const ft1 = await fx.merge(selecting('ft1', tok));
    expect(rowsOf(ft1.dir, EMBED)[3]).toEqual(row('ft2', EMBED, 3));
    expect(rowsOf(ft1.dir, HEAD)[3]).toEqual(row('ft2', HEAD, 3));
  });

  it('model_token by token string and by token_id, and zero', async () => {
    const tok = '{source: base, tokens: {c: {source: {kind: model_token, model: ft1, token: d}}, b: {source: {kind: model_token, model: ft2, token_id: 6}, force: true}, a: {source: {kind: zero}}}}';
    const ft2 = await fx.merge(selecting('ft2', tok));
    // ft2: own specials and a; b forced to ft2's row 6 (f); c, which it lacks, is ft1's d (its 5).
    expect(rowsOf(ft2.dir, EMBED)).toEqual([row('ft2', EMBED, 0), row('ft2', EMBED, 1), row('ft2', EMBED, 2), row('ft2', EMBED, 3), row('ft2', EMBED, 6), row('ft1', EMBED, 5)]);
    const base = await fx.merge(selecting('base', tok));
    // The base has a and c (force false keeps them); b is forced.
    expect(rowsOf(base.dir, EMBED)).toEqual([...baseRows(EMBED).slice(0, 4), row('ft2', EMBED, 6), row('base', EMBED, 5)]);
    // zero applies to a model lacking a: none here, so check with a forced zero.
    const zero = await fx.merge(selecting('base', '{source: base, tokens: {a: {source: {kind: zero}, force: true}}}'));
    expect(rowsOf(zero.dir, EMBED)[3]).toEqual(ZERO);
    expect(rowsOf(zero.dir, HEAD)[3]).toEqual(ZERO);
  });

  it('adds a new token to the vocabulary and tokenizer.json; marks an existing vocabulary token as added', async () => {
    const tok = '{source: base, tokens: {"<|new|>": {source: {kind: model_token, model: ft1, token: a}}, b: {source: ft1}}, pad_to_multiple_of: 4}';
    const { dir } = await fx.merge(selecting('base', tok));
    // <|new|> is appended at id 6 (vocab_size 7, padded to 8); b (a vocabulary token) becomes an added token at its id 4.
    expect(addedTokens(dir).map((a) => [a.id, a.content, a.special, a.normalized])).toEqual([
      [0, '<unk>', true, false],
      [1, '<s>', true, false],
      [2, '</s>', true, false],
      [4, 'b', false, true],
      [6, '<|new|>', false, true],
    ]);
    expect(configOf(dir)['vocab_size']).toBe(8);
    const real = [...baseRows(EMBED), row('ft1', EMBED, 4)];
    expect(rowsOf(dir, EMBED)).toEqual([...real, padMean(real)]);
    const head = [...baseRows(HEAD), row('ft1', EMBED, 4)];
    expect(rowsOf(dir, HEAD)).toEqual([...head, padMean(head)]);
  });

  it('accepts {model: name} as a model source, as pydantic reads a ModelReference', async () => {
    const { dir } = await fx.merge(selecting('ft2', '{source: base, tokens: {b: {source: {model: ft1}}}}'));
    expect(rowsOf(dir, EMBED)[4]).toEqual(row('ft1', EMBED, 3));
  });

  it('shows overridden and padded rows in the --dry-run line', async () => {
    const plan = await planYaml(fx.root, selecting('ft2', '{source: base, tokens: {b: {source: ft1}, a: {source: {kind: zero}, force: true}}, pad_to_multiple_of: 8}'));
    const embed = dryRunReport(plan).tasks.find((t) => t.output === EMBED);
    if (!embed) throw new Error('no embed task');
    const line = formatDryRunTask(embed);
    expect(line).toContain('[8×8]');
    // ft2 in base's vocabulary: specials own; a forced; b overridden; c borrowed from the base.
    expect(line).toMatch(/ft2 \(weight=1\) \[permuted: 3 own, 1 borrowed, 0 averaged, 0 zero, 2 overridden, 2 padded\]/);
    expect(line).toMatch(/base \(weight=0\) \[permuted: 5 own, 0 borrowed, 0 averaged, 0 zero, 1 overridden, 2 padded\]/);
  });
});

describe('overrides and padding through row chunks', () => {
  const tok = '{source: ft2, tokens: {b: {source: ft1}, "<|x|>": {source: {kind: model_token, model: base, token_id: 4}}, a: {source: base, force: true}}, pad_to_multiple_of: 6}';

  it('--jobs 1 and --jobs 4 with one-row chunks write identical bytes', async () => {
    const yaml = `merge_method: linear\nbase_model: base\ntokenizer: ${tok}\nmodels: [{model: base, parameters: {weight: 0.3}}, {model: ft1, parameters: {weight: 0.5}}, {model: ft2, parameters: {weight: 0.2}}]\n`;
    const one = await fx.merge(yaml, 1, 1 << 30);
    const four = await fx.merge(yaml, 4, HIDDEN * 4);
    expect(rowsOf(one.dir, EMBED)).toHaveLength(12);
    expect(readDir(four.dir)).toEqual(readDir(one.dir));
  });

  it('ties and dare_ties: two-pass row chunks write the same bytes as whole tensors', async () => {
    for (const method of ['ties', 'dare_ties']) {
      const yaml = `merge_method: ${method}\nbase_model: base\ntokenizer: ${tok}\nmodels: [{model: ft1, parameters: {weight: 0.7, density: 0.5}}, {model: ft2, parameters: {weight: 0.4, density: 0.6}}]\n`;
      const whole = await fx.merge(yaml, 2, 1 << 30);
      const chunked = await fx.merge(yaml, 4, HIDDEN * 4, 4096);
      expect(readDir(chunked.dir), method).toEqual(readDir(whole.dir));
      expect(chunked.bytesRead, method).toBeGreaterThan(whole.bytesRead);
    }
  });
});

describe('tokenizer block errors', () => {
  function configIssues(yaml: string): { code: string; path: string; message: string }[] {
    try {
      parseMergeConfig(yaml, 'c.yml');
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.filter((i) => i.severity === 'error').map((i) => ({ code: i.code, path: i.path, message: i.message }));
      throw err;
    }
    return [];
  }
  const doc = (tokens: string): string => `merge_method: linear\nbase_model: a\ntokenizer: {source: base, tokens: ${tokens}}\nmodels: [{model: a, parameters: {weight: 1}}, {model: b, parameters: {weight: 1}}]\n`;

  it.each([
    ['INPUTS_STRUCTURE', 'tokenizer.tokens."<|im_start|>".source', '{"<|im_start|>": {source: zz}}', /'zz' is not one of this document's models \(a, b\)/],
    ['INPUTS_STRUCTURE', 'tokenizer.tokens."<|im_start|>".source.model', '{"<|im_start|>": {source: {kind: model_token, model: zz, token: x}}}', /'zz' is not one of/],
    ['WRONG_TYPE', 'tokenizer.tokens."<|im_start|>".source.kind', '{"<|im_start|>": {source: {kind: mean, model: a}}}', /expected 'model_token' or 'zero', got string 'mean'/],
    ['MISSING_KEY', 'tokenizer.tokens."<|im_start|>".source', '{"<|im_start|>": {force: true}}', /required: a model name/],
    ['MISSING_KEY', 'tokenizer.tokens."x".source.kind', '{x: {source: {model: a, token: y}}}', /required with token or token_id/],
    ['INPUTS_STRUCTURE', 'tokenizer.tokens."x".source', '{x: {source: {kind: model_token, model: a, token: y, token_id: 3}}}', /exactly one of token or token_id, got both/],
    ['MISSING_KEY', 'tokenizer.tokens."x".source', '{x: {source: {kind: model_token, model: a}}}', /exactly one of token or token_id, got neither/],
    ['MISSING_KEY', 'tokenizer.tokens."x".source.model', '{x: {source: {kind: model_token, token: y}}}', /required with kind: model_token/],
    ['WRONG_TYPE', 'tokenizer.tokens."x".source.token_id', '{x: {source: {kind: model_token, model: a, token_id: -1}}}', /non-negative integer/],
    ['WRONG_TYPE', 'tokenizer.tokens."x".force', '{x: {source: a, force: maybe}}', /expected true or false/],
    ['WRONG_TYPE', 'tokenizer.tokens', '[x]', /expected a mapping of token/],
    ['WRONG_TYPE', 'tokenizer.tokens', '{1: {source: a}}', /token keys must be strings \(quote them\), got number 1/],
  ])('%s at %s', (code, at, tokens, message) => {
    const issues = configIssues(doc(tokens));
    const hit = issues.find((i) => i.code === code && i.path === at);
    expect(hit, JSON.stringify(issues)).toBeDefined();
    expect(hit?.message).toMatch(message);
  });

  it('round-trips tokens and pad_to_multiple_of through stringify', () => {
    const text = doc('{"<|im_start|>": {source: {kind: model_token, model: b, token_id: 3}, force: true}, w: {source: a}, z: {source: {kind: zero}}, __proto__: {source: b}}').replace('}}\n', '}, pad_to_multiple_of: 64}\n');
    const parsed = parseMergeConfig(text, 'c.yml').config;
    expect(parseMergeConfig(stringifyMergeConfig(parsed), 'd.yml').config).toEqual(parsed);
    expect(parsed.documents[0]?.tokenizer).toEqual({
      source: 'base',
      tokens: [
        { token: '<|im_start|>', source: { kind: 'model_token', model: 'b', token_id: 3 }, force: true },
        { token: 'w', source: { kind: 'model', model: 'a' }, force: false },
        { token: 'z', source: { kind: 'zero' }, force: false },
        { token: '__proto__', source: { kind: 'model', model: 'b' }, force: false },
      ],
      pad_to_multiple_of: 64,
    });
  });

  it('names a token the source model lacks, by key path and file', async () => {
    const err = await fx.planError(selecting('base', '{source: base, tokens: {c: {source: ft2}}}'));
    expect(err.code).toBe('TOKEN_OVERRIDE');
    expect(err.message).toContain(`tokenizer.tokens."c".source: ft2's tokenizer (${path.join(fx.root, 'ft2', 'tokenizer.json')}) has no token "c"`);
    const byToken = await fx.planError(selecting('base', '{source: base, tokens: {c: {source: {kind: model_token, model: ft1, token: zz}}}}'));
    expect(byToken.message).toMatch(/tokenizer\.tokens\."c"\.source\.token: ft1's tokenizer .* has no token "zz"/);
  });

  it('accepts overrides of existing tokens in a named stage', async () => {
    const ok = await planYaml(fx.root, 'name: s1\nmerge_method: linear\nbase_model: base\ntokenizer: {source: base, tokens: {"<s>": {source: ft1, force: true}}}\nmodels: [{model: base, parameters: {weight: 1}}, {model: ft1, parameters: {weight: 0}}]\n---\nmerge_method: linear\nmodels: [{model: s1, parameters: {weight: 1}}]\n');
    expect(ok.tasks.length).toBeGreaterThan(0);
    expect(ok.tokenizerGenerated).toBeUndefined();
  });

  it('names a token_id past the model\'s rows', async () => {
    const err = await fx.planError(selecting('base', '{source: base, tokens: {c: {source: {kind: model_token, model: ft2, token_id: 7}}}}'));
    expect(err.code).toBe('TOKEN_OVERRIDE');
    expect(err.message).toMatch(/tokenizer\.tokens\."c"\.source\.token_id: token_id 7 is past the 7 rows of ft2's model\.embed_tokens\.weight/);
  });
});
