import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeGguf } from '../../src/convert/hf-to-gguf.js';
import { convertLlama2cToHf } from '../../src/convert/llama2c.js';
import { prepareTokenizerMetadata } from '../../src/convert/tokenizer-gguf.js';
import { LlamaCppEngine } from '../../src/eval/llamacpp.js';
import { openCheckpoint } from '../../src/tensors/checkpoint.js';
import { describeWithShared } from '../shared-dir.js';
import { buildDist } from './build-dist.js';
import { loadReferenceModel, referenceLogits } from './reference-forward.js';

/**
 * The real pretrained stories260K (llama2.c format, shared/models/stories260K) goes through our
 * whole path — llama2.c → HF folder → GGUF → llama.cpp — and reproduces the greedy sample
 * printed in llama2.c's doc/stories260K.md.
 */

// The start of the known greedy sample (llama2.c doc/stories260K.md, quoted in SOURCES.md).
const KNOWN_SAMPLE = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.';

describeWithShared('stories260K through llama2.c → HF → GGUF → llama.cpp', (shared) => {
  let dir: string;
  let engine: LlamaCppEngine;
  let hfDir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'evo-stories-'));
    await buildDist();
    const src = path.join(shared, 'models', 'stories260K');
    hfDir = path.join(dir, 'hf');
    await convertLlama2cToHf(path.join(src, 'stories260K.bin'), path.join(src, 'tok512.bin'), hfDir);
    const gguf = path.join(dir, 'stories260K.f32.gguf');
    await writeGguf(await openCheckpoint(hfDir), await prepareTokenizerMetadata(hfDir), gguf, { outType: 'f32' });
    engine = await LlamaCppEngine.start({ sequences: 2, kvCacheType: 'f32', flashAttention: false });
    await engine.loadModel(gguf);
  }, 120_000);

  afterAll(async () => {
    await engine?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('greedy decoding from BOS reproduces the known sample', async () => {
    const [out] = await engine.generate([{ prompt: '', stop: [], maxTokens: 60 }]);
    console.log(`[stories260K] greedy: ${JSON.stringify(out?.text)}`);
    expect(out?.text.startsWith(KNOWN_SAMPLE)).toBe(true);
  });

  it('stops at a stop string and cuts the text there', async () => {
    const [out] = await engine.generate([{ prompt: 'Once upon a time,', stop: ['Lily'], maxTokens: 60 }]);
    expect(out).toMatchObject({ text: ' there was a little girl named ', finish: 'stop' });
  });

  it('llama.cpp logits on the real model match the reference forward pass', async () => {
    const tokens = [1, ...(await engine.tokenize('Once upon a time, there was a little girl named Lily.'))];
    const [got] = await engine.evaluateLogits([tokens]);
    const want = referenceLogits(await loadReferenceModel(hfDir), tokens);
    let worst = 0;
    want.forEach((w, i) => w.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - (got?.[i]?.[j] ?? NaN))))));
    console.log(`[stories260K] max |logit diff| = ${worst.toExponential(2)} over ${tokens.length} positions × 512`);
    expect(worst).toBeLessThan(1e-3);
  });
});
