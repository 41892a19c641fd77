/**
 * tokenizer_source with models whose vocabularies differ (semantics §1.5): every model's embedding
 * and lm_head are re-indexed into the output vocabulary by token string before the merge. Each
 * output row is checked against the source row, mean or zeros worked out by hand from the
 * fixtures' vocabularies.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dryRunReport, formatDryRunTask } from '../../src/cli/merge.js';
import { roundToBf16 } from '../../src/tensors/bf16.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { planYaml, readDir } from './merge-fixtures.js';
import { ensureMergeWorkerBuilt } from './merge-worker-build.js';
import { EMBED, HEAD, HIDDEN, mean, rowsOf, TokenizerFixtures, ZERO } from './tokenizer-fixtures.js';

let fx: TokenizerFixtures;
let root: string;
const row = (name: string, tensor: string, r: number): number[] => fx.row(name, tensor, r);
const merge = (yaml: string, jobs = 2, rowChunkBytes?: number, maxMemoryBytes?: number): ReturnType<TokenizerFixtures['merge']> => fx.merge(yaml, jobs, rowChunkBytes, maxMemoryBytes);

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  fx = new TokenizerFixtures('evomerge-tokperm-');
  root = fx.root;
  await fx.model('base', ['a', 'b', 'c'], { seed: 1 });
  await fx.model('ft1', ['b', 'a', 'd'], { seed: 2, tied: true });
  // 'g' is listed at id 7 but ft2 has 7 embedding rows: the token has no row anywhere.
  await fx.model('ft2', ['a', 'e', 'd', 'f'], { seed: 3, extraAdded: [{ content: 'g', id: 7 }] });
  await fx.model('same1', ['a', 'b', 'c'], { seed: 4 });
  // An added special token inside the rows (id 5 of 6).
  await fx.model('ft3', ['h', 'a'], { seed: 5, rows: 6, extraAdded: [{ content: '<tool>', id: 5 }] });
  // bf16 models: z is in x1, x2 and x3 but not the base bb, so bb's z row is their mean.
  await fx.model('bb', ['a'], { seed: 20, dtype: 'BF16' });
  await fx.model('x1', ['a', 'z'], { seed: 21, dtype: 'BF16' });
  await fx.model('x2', ['z'], { seed: 22, dtype: 'BF16' });
  await fx.model('x3', ['z'], { seed: 23, dtype: 'BF16' });
}, 180_000);

afterAll(() => {
  fx?.remove();
});

/** A linear merge that selects one model (weight 1, others 0): the output is that model's permuted tensor. */
function selecting(source: string, pick: string, models = ['base', 'ft1', 'ft2']): string {
  const list = models.map((m) => `{model: ${m}, parameters: {weight: ${m === pick ? 1 : 0}}}`).join(', ');
  return `merge_method: linear\nbase_model: base\ntokenizer_source: ${source}\nmodels: [${list}]\n`;
}

describe('tokenizer_source: base with differing vocabularies', () => {
  // Output vocabulary: <unk> <s> </s> a b c (base's ids).
  it("base keeps its own rows", async () => {
    const { dir } = await merge(selecting('base', 'base'));
    expect(rowsOf(dir, EMBED)).toEqual([0, 1, 2, 3, 4, 5].map((r) => row('base', EMBED, r)));
    expect(rowsOf(dir, HEAD)).toEqual([0, 1, 2, 3, 4, 5].map((r) => row('base', HEAD, r)));
  });

  it('ft1 (tied head) is re-indexed by token; c, which only the base has, takes the base row', async () => {
    const { dir, plan } = await merge(selecting('base', 'ft1'));
    // ft1: <unk>0 <s>1 </s>2 b3 a4 d5.
    const want = [row('ft1', EMBED, 0), row('ft1', EMBED, 1), row('ft1', EMBED, 2), row('ft1', EMBED, 4), row('ft1', EMBED, 3), row('base', EMBED, 5)];
    expect(rowsOf(dir, EMBED)).toEqual(want);
    // The tied head is ft1's embedding, permuted the same way; c comes from the base's lm_head.
    expect(rowsOf(dir, HEAD)).toEqual([...want.slice(0, 5), row('base', HEAD, 5)]);
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config['vocab_size']).toBe(6);
    const embed = plan.tasks.find((t) => t.output === EMBED);
    expect(embed?.inputs.map((i) => i.kind)).toEqual(['permuted', 'permuted', 'permuted']);
  });

  it('ft2: b, which the base and ft1 have, takes the base row (not the mean)', async () => {
    const { dir } = await merge(selecting('base', 'ft2'));
    // ft2: <unk>0 <s>1 </s>2 a3 e4 d5 f6.
    expect(rowsOf(dir, EMBED)).toEqual([row('ft2', EMBED, 0), row('ft2', EMBED, 1), row('ft2', EMBED, 2), row('ft2', EMBED, 3), row('base', EMBED, 4), row('base', EMBED, 5)]);
    expect(rowsOf(dir, HEAD)).toEqual([row('ft2', HEAD, 0), row('ft2', HEAD, 1), row('ft2', HEAD, 2), row('ft2', HEAD, 3), row('base', HEAD, 4), row('base', HEAD, 5)]);
  });

  it('merges the permuted tensors (linear mean of the three)', async () => {
    const { dir } = await merge('merge_method: linear\nbase_model: base\ntokenizer_source: base\nmodels: [{model: base, parameters: {weight: 1}}, {model: ft1, parameters: {weight: 1}}]\n');
    // mergekit's linear: Σ w_i x_i / Σ w_i with f32 per-op rounding; row 3 (a) = (base a + ft1 a) / 2.
    const a = mean(row('base', EMBED, 3), row('ft1', EMBED, 4));
    expect(rowsOf(dir, EMBED)[3]).toEqual(a);
  });
});

describe('tokenizer_source: <model>', () => {
  // Output vocabulary: ft2's, <unk> <s> </s> a e d f g (8 ids; g has no row in any model).
  it('borrows, averages and zeroes the rows a model lacks, and sets vocab_size', async () => {
    const { dir, warnings } = await merge(selecting('ft2', 'base'));
    // base lacks e, f (only ft2 has them), d (ft1 and ft2, not the base: their mean) and g (nobody).
    const want = [row('base', EMBED, 0), row('base', EMBED, 1), row('base', EMBED, 2), row('base', EMBED, 3), row('ft2', EMBED, 4), mean(row('ft1', EMBED, 5), row('ft2', EMBED, 5)), row('ft2', EMBED, 6), ZERO];
    expect(rowsOf(dir, EMBED)).toEqual(want);
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config['vocab_size']).toBe(8);
    expect(warnings.some((w) => /model\.embed_tokens\.weight: 1 of the 8 output tokens has no row in any model/.test(w))).toBe(true);
  });

  it('ft1 keeps its d and takes the shared defaults for the rest', async () => {
    const { dir } = await merge(selecting('ft2', 'ft1'));
    const want = [row('ft1', EMBED, 0), row('ft1', EMBED, 1), row('ft1', EMBED, 2), row('ft1', EMBED, 4), row('ft2', EMBED, 4), row('ft1', EMBED, 5), row('ft2', EMBED, 6), ZERO];
    expect(rowsOf(dir, EMBED)).toEqual(want);
    // ft1's head is tied: its embedding; the borrowed rows come from ft2's own lm_head.
    expect(rowsOf(dir, HEAD)).toEqual([...want.slice(0, 4), row('ft2', HEAD, 4), row('ft1', EMBED, 5), row('ft2', HEAD, 6), ZERO]);
  });

  it('shows the permutation in the --dry-run line', async () => {
    const plan = await planYaml(root, selecting('ft2', 'base'));
    const embed = dryRunReport(plan).tasks.find((t) => t.output === EMBED);
    if (!embed) throw new Error('no embed task');
    const line = formatDryRunTask(embed);
    expect(line).toContain('[8×8]');
    expect(line).toMatch(/base \(weight=1\) \[permuted: 4 own, 2 borrowed, 1 averaged, 1 zero\]/);
  });

  it('--jobs 1 and --jobs 4 with one-row chunks write identical bytes', async () => {
    const yaml = 'merge_method: linear\nbase_model: base\ntokenizer_source: ft2\nmodels: [{model: base, parameters: {weight: 0.3}}, {model: ft1, parameters: {weight: 0.5}}, {model: ft2, parameters: {weight: 0.2}}]\n';
    const one = await merge(yaml, 1);
    const four = await merge(yaml, 4, HIDDEN * 4);
    expect(readDir(four.dir)).toEqual(readDir(one.dir));
  });

  it('ties and dare_ties on permuted embeddings: two-pass row chunks write the same bytes as whole tensors', async () => {
    for (const method of ['ties', 'dare_ties']) {
      const yaml = `merge_method: ${method}\nbase_model: base\ntokenizer_source: ft2\nmodels: [{model: ft1, parameters: {weight: 0.7, density: 0.5}}, {model: ft2, parameters: {weight: 0.4, density: 0.6}}]\n`;
      const whole = await merge(yaml, 2, 1 << 30);
      const chunked = await merge(yaml, 4, HIDDEN * 4, 4096);
      expect(readDir(chunked.dir), method).toEqual(readDir(whole.dir));
      // The statistics passes read the chunks a second time: the chunked path really ran.
      expect(chunked.bytesRead, method).toBeGreaterThan(whole.bytesRead);
    }
  });
});

describe('tokenizer_source with identical tokenizers', () => {
  it('plans plain file reads and writes the same bytes as without tokenizer_source', async () => {
    const yaml = 'merge_method: linear\nbase_model: base\nmodels: [{model: base, parameters: {weight: 0.5}}, {model: same1, parameters: {weight: 0.5}}]\n';
    const plain = await merge(yaml);
    const withSource = await merge(`${yaml}tokenizer_source: base\n`);
    for (const t of withSource.plan.tasks) expect(t.inputs.every((i) => i.kind === 'file')).toBe(true);
    const a = readDir(plain.dir);
    const b = readDir(withSource.dir);
    a.delete('mergekit_config.yml');
    b.delete('mergekit_config.yml');
    expect(b).toEqual(a);
  });
});

describe('tokenizer_source errors', () => {
  it('names a missing tokenizer.json', async () => {
    const dir = path.join(root, 'notok');
    await writeTinyLlama(dir, { layers: 1, hidden: HIDDEN, intermediate: 16, heads: 2, vocab: 6, seed: 9 });
    fs.rmSync(path.join(dir, 'tokenizer.json'));
    const err = await fx.planError('merge_method: linear\nbase_model: base\ntokenizer_source: base\nmodels: [{model: base, parameters: {weight: 1}}, {model: notok, parameters: {weight: 1}}]\n');
    expect(err.code).toBe('TOKENIZER_INVALID');
    expect(err.message).toContain(path.join(dir, 'tokenizer.json'));
    expect(err.message).toMatch(/no tokenizer\.json/);
  });

  it('names an unparsable tokenizer.json and what was expected', async () => {
    const dir = path.join(root, 'badtok');
    await writeTinyLlama(dir, { layers: 1, hidden: HIDDEN, intermediate: 16, heads: 2, vocab: 6, seed: 10 });
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {"vocab": ');
    const err = await fx.planError('merge_method: linear\nbase_model: base\ntokenizer_source: base\nmodels: [{model: base, parameters: {weight: 1}}, {model: badtok, parameters: {weight: 1}}]\n');
    expect(err.code).toBe('TOKENIZER_INVALID');
    expect(err.message).toContain(path.join(dir, 'tokenizer.json'));
    expect(err.message).toMatch(/not valid JSON.*model\.vocab/);
  });

  it('names a tokenizer.json without model.vocab', async () => {
    const dir = path.join(root, 'novocab');
    await writeTinyLlama(dir, { layers: 1, hidden: HIDDEN, intermediate: 16, heads: 2, vocab: 6, seed: 11 });
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": {"type": "BPE"}}');
    const err = await fx.planError('merge_method: linear\nbase_model: base\ntokenizer_source: base\nmodels: [{model: base, parameters: {weight: 1}}, {model: novocab, parameters: {weight: 1}}]\n');
    expect(err.message).toMatch(/novocab.tokenizer\.json: has no model\.vocab/);
  });
});

describe('tokenizer_source: union', () => {
  interface AddedEntry {
    id: number;
    content: string;
    special: boolean;
    normalized: boolean;
  }
  function outTokenizer(dir: string): { vocab: Record<string, number>; added: AddedEntry[] } {
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens: AddedEntry[] };
    return { vocab: json.model.vocab, added: json.added_tokens };
  }

  it("appends the other models' missing tokens after the base's, models in order, by id", async () => {
    const { dir, plan } = await merge(selecting('union', 'base'));
    // base <unk> <s> </s> a b c; then ft1's d, ft2's e and f. ft2's g (id 7 of its 7 rows) is no real token.
    const tok = outTokenizer(dir);
    const baseJson = JSON.parse(fs.readFileSync(path.join(root, 'base', 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
    expect(tok.vocab).toEqual(baseJson.model.vocab);
    expect(tok.added.slice(3).map((a) => [a.id, a.content, a.special, a.normalized])).toEqual([
      [6, 'd', false, true],
      [7, 'e', false, true],
      [8, 'f', false, true],
    ]);
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config['vocab_size']).toBe(9);
    expect(plan.tokenizerFiles).toContain('tokenizer.json');
    // base: its own six rows; d: ft1 and ft2 have it, the base does not: their mean; e, f: ft2's.
    expect(rowsOf(dir, EMBED)).toEqual([0, 1, 2, 3, 4, 5].map((r) => row('base', EMBED, r)).concat([mean(row('ft1', EMBED, 5), row('ft2', EMBED, 5)), row('ft2', EMBED, 4), row('ft2', EMBED, 6)]));
    // tokenizer_config.json is the base's with added_tokens_decoder listing every added token (as
    // transformers' save_pretrained writes it); the other tokenizer files are copied unchanged.
    const flags = (content: string, special: boolean): Record<string, unknown> => ({ content, lstrip: false, normalized: !special, rstrip: false, single_word: false, special });
    const baseConfig = JSON.parse(fs.readFileSync(path.join(root, 'base', 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'))).toEqual({
      ...baseConfig,
      added_tokens_decoder: { 0: flags('<unk>', true), 1: flags('<s>', true), 2: flags('</s>', true), 6: flags('d', false), 7: flags('e', false), 8: flags('f', false) },
    });
    expect(fs.readFileSync(path.join(dir, 'special_tokens_map.json'))).toEqual(fs.readFileSync(path.join(root, 'base', 'special_tokens_map.json')));
  });

  it('re-indexes a tied model into the union vocabulary', async () => {
    const { dir } = await merge(selecting('union', 'ft1'));
    const want = [row('ft1', EMBED, 0), row('ft1', EMBED, 1), row('ft1', EMBED, 2), row('ft1', EMBED, 4), row('ft1', EMBED, 3), row('base', EMBED, 5), row('ft1', EMBED, 5), row('ft2', EMBED, 4), row('ft2', EMBED, 6)];
    expect(rowsOf(dir, EMBED)).toEqual(want);
    expect(rowsOf(dir, HEAD)).toEqual([...want.slice(0, 5), row('base', HEAD, 5), row('ft1', EMBED, 5), row('ft2', HEAD, 4), row('ft2', HEAD, 6)]);
  });

  it("keeps an added token's own flags and appends it after the regular tokens", async () => {
    const { dir } = await merge(selecting('union', 'base', ['base', 'ft3']));
    const tok = outTokenizer(dir);
    expect(tok.added.slice(3).map((a) => [a.id, a.content, a.special, a.normalized])).toEqual([
      [6, 'h', false, true],
      [7, '<tool>', true, false],
    ]);
    expect(rowsOf(dir, EMBED).slice(6)).toEqual([row('ft3', EMBED, 3), row('ft3', EMBED, 5)]);
  });

  it('writes the same bytes for --jobs 1 and --jobs 4', async () => {
    const yaml = 'merge_method: linear\nbase_model: base\ntokenizer_source: union\nmodels: [{model: base, parameters: {weight: 0.3}}, {model: ft1, parameters: {weight: 0.5}}, {model: ft2, parameters: {weight: 0.2}}]\n';
    const one = await merge(yaml, 1);
    const four = await merge(yaml, 4, HIDDEN * 4);
    expect(readDir(four.dir)).toEqual(readDir(one.dir));
  });
});

describe('tokenizer_source: the mean in bf16 and stage inputs', () => {
  it('averages in the compute dtype, rounding after every add and after the division', async () => {
    const { dir } = await merge('merge_method: linear\nbase_model: bb\ntokenizer_source: x1\ndtype: bfloat16\nmodels: [{model: bb, parameters: {weight: 1}}, {model: x1, parameters: {weight: 0}}, {model: x2, parameters: {weight: 0}}, {model: x3, parameters: {weight: 0}}]\n');
    const [r1, r2, r3] = [row('x1', EMBED, 4), row('x2', EMBED, 3), row('x3', EMBED, 3)];
    const perOp = r1.map((v, j) => roundToBf16(roundToBf16(roundToBf16(v + (r2[j] ?? 0)) + (r3[j] ?? 0)) / 3));
    const once = r1.map((v, j) => roundToBf16((v + (r2[j] ?? 0) + (r3[j] ?? 0)) / 3));
    // The fixture tells the two apart, so this checks the rounding order.
    expect(perOp).not.toEqual(once);
    const out = rowsOf(dir, EMBED);
    expect(out).toHaveLength(5);
    expect(out[4]).toEqual(perOp);
    expect(out.slice(0, 4)).toEqual([0, 1, 2, 3].map((r) => row('bb', EMBED, r)));
  });

  it('plans stage inputs as before when the permutation is the identity, and permutes them otherwise', async () => {
    const stage = 'name: s1\nmerge_method: linear\nbase_model: base\nmodels: [{model: base, parameters: {weight: 0.5}}, {model: same1, parameters: {weight: 0.5}}]\n---\n';
    const ok = await planYaml(root, `${stage}merge_method: linear\nbase_model: base\ntokenizer_source: base\nmodels: [{model: s1, parameters: {weight: 0.5}}, {model: base, parameters: {weight: 0.5}}]\n`);
    expect(ok.tasks.find((t) => t.output === EMBED)?.inputs.map((i) => i.kind)).toEqual(['stage', 'file']);
    const permutedPlan = await planYaml(root, `${stage}merge_method: linear\ntokenizer_source: ft1\nmodels: [{model: s1, parameters: {weight: 0.5}}, {model: ft1, parameters: {weight: 0.5}}]\n`);
    const inputs = permutedPlan.tasks.find((t) => t.output === EMBED)?.inputs ?? [];
    expect(inputs.map((i) => (i.kind === 'permuted' ? [i.tensor, i.sources.map((s) => s.kind)] : i.kind))).toEqual([[EMBED, ['stage', 'file']], [EMBED, ['stage', 'file']]]);
  });
});
