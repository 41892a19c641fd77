import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConvertReport } from '../../src/cli/convert.js';
import { runEvo } from '../cli/run-evo.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { itWithShared } from '../shared-dir.js';
import { writeTinySpmTokenizer } from '../model/tiny-tokenizers.js';

let dir: string;
let hfDir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-convert-cli-'));
  hfDir = path.join(dir, 'hf');
  await mkdir(hfDir);
  const vocab = await writeTinySpmTokenizer(hfDir);
  await writeTinyLlama(hfDir, { hidden: 32, heads: 4, kvHeads: 2, intermediate: 64, layers: 1, vocab });
  await writeTinySpmTokenizer(hfDir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const run = (args: string[]): ReturnType<typeof runEvo> => runEvo(...args);

describe('evo convert', () => {
  it('converts an HF folder to a q8_0 GGUF and reports it as JSON', async () => {
    const out = path.join(dir, 'model.gguf');
    const r = await run(['convert', hfDir, '--out', out, '--outtype', 'q8_0', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as ConvertReport;
    expect(report.gguf).toMatchObject({ file: out, tensors: 12, outType: 'q8_0' });
    const info = await readGgufFileInfo(out, { logWarnings: false });
    expect(info.tensorInfo?.find((t) => t.name === 'blk.0.ffn_down.weight')?.ggmlType).toBe(8);
    expect((info.metadata as unknown as { general: { name: string } }).general.name).toBe('model');
  });

  it('exits 2 on usage errors (no --out, bad --outtype, --tokenizer with a folder)', async () => {
    expect((await run(['convert', hfDir])).code).toBe(2);
    const bad = await run(['convert', hfDir, '--out', path.join(dir, 'x.gguf'), '--outtype', 'q4_k']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--outtype must be one of auto, f32, f16, bf16, q8_0/);
    expect((await run(['convert', hfDir, '--out', path.join(dir, 'y.gguf'), '--tokenizer', 't.bin'])).code).toBe(2);
    expect(existsSync(path.join(dir, 'x.gguf')) || existsSync(path.join(dir, 'y.gguf'))).toBe(false);
  });

  it('exits 1 naming the problem when the source is not a model', async () => {
    const r = await run(['convert', path.join(dir, 'nope'), '--out', path.join(dir, 'z.gguf')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope/);
  });

  itWithShared('converts the llama2.c stories260K checkpoint to an HF folder and a GGUF', async (shared) => {
    const src = path.join(shared, 'models', 'stories260K');
    const out = path.join(dir, 'stories.gguf');
    const hfOut = path.join(dir, 'stories-hf');
    const r = await run(['convert', path.join(src, 'stories260K.bin'), '--tokenizer', path.join(src, 'tok512.bin'), '--hf-out', hfOut, '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote HF folder .*stories-hf\nwrote .*stories\.gguf: 47 tensors/);
    expect(existsSync(path.join(hfOut, 'tokenizer.model'))).toBe(true);
  });
});
