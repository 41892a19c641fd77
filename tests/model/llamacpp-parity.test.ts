import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGguf } from '../../src/convert/hf-to-gguf.js';
import type { GgufOutType } from '../../src/convert/hf-to-gguf.js';
import { prepareTokenizerMetadata } from '../../src/convert/tokenizer-gguf.js';
import { LlamaCppEngine } from '../../src/eval/llamacpp.js';
import { openCheckpoint } from '../../src/tensors/checkpoint.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import type { TinyLlamaArchitecture } from '../fixtures/tiny-llama.js';
import { buildDist } from './build-dist.js';
import { loadReferenceModel, referenceLogits } from './reference-forward.js';
import { writeTinyBpeTokenizer, writeTinySpmTokenizer } from './tiny-tokenizers.js';

/**
 * Conversion is faithful: for random checkpoints (llama, mistral, qwen2; GQA; tied and untied
 * heads) the logits llama.cpp computes from our GGUF match our TypeScript reference forward pass
 * on the HF weights. One engine (one llama.cpp child) serves the whole file.
 */

let dir: string;
let engine: LlamaCppEngine;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-parity-'));
  await buildDist();
  engine = await LlamaCppEngine.start({ gpu: false, sequences: 2, kvCacheType: 'f32', flashAttention: false, contextSize: 64 });
}, 120_000);

afterAll(async () => {
  await engine?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Case {
  readonly name: string;
  readonly architecture: TinyLlamaArchitecture;
  readonly heads: number;
  readonly kvHeads: number;
  readonly hidden: number;
  readonly tied: boolean;
}

const CASES: readonly Case[] = [
  { name: 'llama GQA 4/2 untied', architecture: 'llama', heads: 4, kvHeads: 2, hidden: 32, tied: false },
  { name: 'llama MHA tied', architecture: 'llama', heads: 2, kvHeads: 2, hidden: 32, tied: true },
  { name: 'mistral GQA 4/1 untied', architecture: 'mistral', heads: 4, kvHeads: 1, hidden: 32, tied: false },
  { name: 'qwen2 GQA 4/2 tied (q/k/v biases)', architecture: 'qwen2', heads: 4, kvHeads: 2, hidden: 32, tied: true },
  { name: 'qwen2 GQA 4/2 untied (q/k/v biases)', architecture: 'qwen2', heads: 4, kvHeads: 2, hidden: 32, tied: false },
];

async function makeModel(c: Case, seed: number, outType: GgufOutType = 'f32'): Promise<{ hfDir: string; gguf: string; vocab: number }> {
  const hfDir = path.join(dir, `${c.name.replace(/\W+/g, '-')}-${seed}`);
  // The tokenizer fixes the vocabulary size; write it first to learn it, then the weights.
  const spm = c.architecture !== 'qwen2';
  const { mkdir } = await import('node:fs/promises');
  await mkdir(hfDir, { recursive: true });
  const vocab = spm ? await writeTinySpmTokenizer(hfDir) : await writeTinyBpeTokenizer(hfDir);
  await writeTinyLlama(hfDir, { architecture: c.architecture, heads: c.heads, kvHeads: c.kvHeads, hidden: c.hidden, intermediate: 48, layers: 2, vocab, tied: c.tied, seed });
  // writeTinyLlama writes its own word-level tokenizer: replace it with the llama.cpp-loadable one.
  if (spm) await writeTinySpmTokenizer(hfDir);
  else await writeTinyBpeTokenizer(hfDir);
  const tokenizer = await prepareTokenizerMetadata(hfDir);
  const gguf = path.join(dir, `${path.basename(hfDir)}.${outType}.gguf`);
  await writeGguf(await openCheckpoint(hfDir), tokenizer, gguf, { outType });
  return { hfDir, gguf, vocab };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

describe('HF → GGUF → llama.cpp matches the reference forward pass', () => {
  for (const c of CASES) {
    it(`${c.name}: logits agree to 1e-3`, async () => {
      const { hfDir, gguf, vocab } = await makeModel(c, 7);
      const tokens = [1, 5, vocab - 1, 17, 42, 99, 260, 7, 123, 200, 3, 77];
      await engine.loadModel(gguf);
      const [got] = await engine.evaluateLogits([tokens]);
      const want = referenceLogits(await loadReferenceModel(hfDir), tokens);
      let worst = 0;
      want.forEach((w, i) => (worst = Math.max(worst, maxAbsDiff(got?.[i] ?? [], w))));
      console.log(`[parity] ${c.name}: max |logit diff| = ${worst.toExponential(2)} over ${tokens.length} positions × ${vocab} tokens`);
      expect(worst).toBeLessThan(1e-3);
    });
  }
});
