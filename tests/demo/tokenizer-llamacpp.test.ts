import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertHfToGguf } from '../../src/convert/hf-to-gguf.js';
import { BpeEncoder, type BpeVocabulary, vocabularyFromTokenizerJson, writeTokenizerFiles } from '../../src/demo/byte-level-bpe.js';
import { mathTaskFiles, factTaskFiles } from '../../src/demo/demo-tasks.js';
import { type DemoData, demoData, learnDemoTokenizer } from '../../src/demo/family-data.js';
import { Rng } from '../../src/search/rng.js';
import { LlamaCppEngine } from '../../src/eval/llamacpp.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { buildDist } from '../model/build-dist.js';

/**
 * The demo family is trained on token ids from our TypeScript BPE encoder and scored by llama.cpp
 * on ids from its own tokenizer, reading the GGUF our converter writes. They must agree on every
 * text the family sees: training documents of all three stages and the task prompts and answers.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const committed = path.join(root, 'demo', 'family', 'base', 'tokenizer.json');

let dir = '';
let engine: LlamaCppEngine;
let data: DemoData;
let vocab: BpeVocabulary;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-demo-tok-'));
  await buildDist();
  data = demoData();
  vocab = existsSync(committed) ? vocabularyFromTokenizerJson(readFileSync(committed, 'utf8'), committed) : learnDemoTokenizer(data);
  await writeTinyLlama(dir, { hidden: 32, heads: 4, intermediate: 64, layers: 1, vocab: vocab.tokens.length, seed: 3, tied: true });
  await writeTokenizerFiles(dir, vocab);
  const gguf = path.join(dir, 'model.gguf');
  await convertHfToGguf(dir, gguf, { outType: 'f32' });
  engine = await LlamaCppEngine.start({ gpu: false, sequences: 1, contextSize: 256, threads: 1 });
  const info = await engine.loadModel(gguf);
  expect(info.addBos).toBe(true);
  expect(info.bos).toBe(vocab.bosId);
  expect(info.eos).toBe(vocab.eosId);
}, 180_000);

afterAll(async () => {
  await engine?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function sampleTexts(): string[] {
  const rng = new Rng('tokenizer-test');
  const texts: string[] = [];
  for (const docs of Object.values(data.documents)) {
    for (let i = 0; i < 150; i++) {
      const d = rng.pick(docs);
      texts.push(d.prompt, d.completion, d.prompt + d.completion);
    }
  }
  const taskLines = [mathTaskFiles(data.math), factTaskFiles(data.world, data.settings.seed)].flatMap((f) => `${f['search.jsonl']}${f['test.jsonl']}`.trim().split('\n'));
  for (let i = 0; i < 200; i++) {
    const r = JSON.parse(rng.pick(taskLines)) as { prompt?: string; target?: string; question?: string; choices?: string[] };
    if (r.prompt !== undefined) texts.push(r.prompt, `${r.prompt}${r.target ?? ''}`);
    if (r.question !== undefined) texts.push(r.question, `${r.question}${r.choices?.[1] ?? ''}`);
  }
  // Text the models never see, to exercise the byte fallback paths.
  texts.push('  two  spaces\n\n\nand newlines  ', "it's 12345 o'clock, ünïcode €", '');
  return texts;
}

describe('demo tokenizer ↔ llama.cpp', () => {
  it('llama.cpp tokenizes every sampled training and task text exactly as the TS encoder', async () => {
    const encoder = new BpeEncoder(vocab);
    const texts = sampleTexts();
    expect(texts.length).toBeGreaterThan(1500);
    let mismatches = 0;
    const first: string[] = [];
    for (const t of texts) {
      const ours = encoder.encode(t);
      const theirs = await engine.tokenize(t);
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
        mismatches++;
        if (first.length < 3) first.push(`${JSON.stringify(t)}: ours ${JSON.stringify(ours)} llama.cpp ${JSON.stringify(theirs)}`);
      }
    }
    expect(first).toEqual([]);
    expect(mismatches).toBe(0);
  }, 120_000);

  it('decodes back to the text', async () => {
    const encoder = new BpeEncoder(vocab);
    const t = 'Question: Ann has 5 pens.\nAnswer: 5 + 7 = 12. #### 12';
    expect(encoder.decode(encoder.encode(t))).toBe(t);
    expect(await engine.detokenize(encoder.encode(t))).toBe(t);
  });
});
