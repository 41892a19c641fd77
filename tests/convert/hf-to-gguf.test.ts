import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufConversionError, convertHfToGguf, ggufHyperparameters, planGgufTensors, writeGguf } from '../../src/convert/hf-to-gguf.js';
import type { GgufSourceCheckpoint } from '../../src/convert/hf-to-gguf.js';
import { permuteRotaryRows, unpermuteRotaryRows } from '../../src/convert/rotary-layout.js';
import { prepareTokenizerMetadata } from '../../src/convert/tokenizer-gguf.js';
import { roundToBf16 } from '../../src/tensors/bf16.js';
import { openCheckpoint } from '../../src/tensors/checkpoint.js';
import { roundToF16 } from '../../src/tensors/f16.js';
import { readGgufHeader, readGgufTensorF32 } from '../../src/tensors/gguf-reader.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import type { TinyLlamaInfo, TinyLlamaOptions } from '../fixtures/tiny-llama.js';
import { writeTinyBpeTokenizer, writeTinySpmTokenizer } from '../model/tiny-tokenizers.js';

let dir: string;
let counter = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-hf2gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A tiny checkpoint with a llama.cpp-loadable tokenizer (SentencePiece for llama/mistral, BPE for qwen2). */
async function tiny(opts: TinyLlamaOptions): Promise<{ info: TinyLlamaInfo; vocab: number }> {
  const d = path.join(dir, `m${counter++}`);
  await mkdir(d, { recursive: true });
  const spm = opts.architecture !== 'qwen2';
  const vocab = spm ? await writeTinySpmTokenizer(d) : await writeTinyBpeTokenizer(d);
  const info = await writeTinyLlama(d, { hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, layers: 2, vocab, ...opts });
  if (spm) await writeTinySpmTokenizer(d);
  else await writeTinyBpeTokenizer(d);
  return { info, vocab };
}

async function convert(info: TinyLlamaInfo, outType: 'auto' | 'f32' | 'f16' | 'bf16' | 'q8_0' = 'auto', chunkElements?: number): Promise<string> {
  const out = path.join(dir, `out${counter++}.gguf`);
  await writeGguf(await openCheckpoint(info.dir), await prepareTokenizerMetadata(info.dir), out, chunkElements === undefined ? { outType, name: 'tiny' } : { outType, name: 'tiny', chunkElements });
  return out;
}

/** Hand-written HF → adjacent-pairs permutation: out row h·D + 2i + j = in row h·D + j·D/2 + i. */
function pairsLayout(values: Float32Array, heads: number, cols: number): Float32Array {
  const D = values.length / cols / heads;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < D / 2; i++)
      for (let j = 0; j < 2; j++)
        for (let c = 0; c < cols; c++) out[(h * D + 2 * i + j) * cols + c] = values[(h * D + j * (D / 2) + i) * cols + c] ?? NaN;
  return out;
}

function get(info: TinyLlamaInfo, name: string): Float32Array {
  const v = info.values.get(name);
  if (v === undefined) throw new Error(`fixture has no ${name}`);
  return v;
}

async function tensorValues(file: string): Promise<Map<string, Float32Array>> {
  const h = await readGgufHeader(file);
  const out = new Map<string, Float32Array>();
  for (const t of h.tensors) out.set(t.name, await readGgufTensorF32(file, t));
  return out;
}

describe('rotary row layouts', () => {
  it('permutes a 4-row head as rows 0, 2, 1, 3 (hand-checked)', () => {
    const x = Float32Array.from([0, 0, 1, 1, 2, 2, 3, 3]); // 4 rows of 2
    expect([...permuteRotaryRows(x, 4, 2)]).toEqual([0, 0, 2, 2, 1, 1, 3, 3]);
    expect([...unpermuteRotaryRows(Float32Array.from([0, 1, 2, 3, 4, 5]), 6, 1)]).toEqual([0, 2, 4, 1, 3, 5]);
  });
  it('unpermute ∘ permute = identity (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), (heads, halfDim, cols) => {
        const x = Float32Array.from({ length: heads * halfDim * 2 * cols }, (_, i) => i);
        expect([...unpermuteRotaryRows(permuteRotaryRows(x, halfDim * 2, cols), halfDim * 2, cols)]).toEqual([...x]);
        expect([...permuteRotaryRows(x, halfDim * 2, cols)]).toEqual([...pairsLayout(x, heads, cols)]);
      }),
    );
  });
});

describe('writeGguf (HF → GGUF)', () => {
  it('llama, GQA, untied: names, shapes, metadata, permuted q/k, exact f32 values', async () => {
    const { info, vocab } = await tiny({ architecture: 'llama', tied: false, seed: 3 });
    const file = await convert(info, 'f32');
    const gi = await readGgufFileInfo(file, { logWarnings: false });
    const names = gi.tensorInfo?.map((t) => t.name) ?? [];
    const layer = (i: number) => ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'].map((n) => `blk.${i}.${n}.weight`);
    expect(names).toEqual(['token_embd.weight', ...layer(0), ...layer(1), 'output_norm.weight', 'output.weight']);
    const dims = Object.fromEntries((gi.tensorInfo ?? []).map((t) => [t.name, t.dimensions.map(Number)]));
    expect(dims['token_embd.weight']).toEqual([32, vocab]);
    expect(dims['blk.0.attn_q.weight']).toEqual([32, 32]);
    expect(dims['blk.0.attn_k.weight']).toEqual([32, 16]);
    expect(dims['blk.1.ffn_down.weight']).toEqual([48, 32]);
    expect(dims['blk.1.ffn_norm.weight']).toEqual([32]);
    expect(new Set(gi.tensorInfo?.map((t) => t.ggmlType))).toEqual(new Set([0]));
    const md = gi.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md.general).toMatchObject({ architecture: 'llama', file_type: 0, quantization_version: 2 });
    expect(md.llama).toEqual({
      context_length: 128,
      embedding_length: 32,
      block_count: 2,
      feed_forward_length: 48,
      attention: { head_count: 4, head_count_kv: 2, layer_norm_rms_epsilon: expect.closeTo(1e-5, 12) },
      rope: { freq_base: 10000, dimension_count: 8 },
      vocab_size: vocab,
    });
    const values = await tensorValues(file);
    expect([...(values.get('blk.1.attn_q.weight') ?? [])]).toEqual([...pairsLayout(get(info, 'model.layers.1.self_attn.q_proj.weight'), 4, 32)]);
    expect([...(values.get('blk.1.attn_k.weight') ?? [])]).toEqual([...pairsLayout(get(info, 'model.layers.1.self_attn.k_proj.weight'), 2, 32)]);
    expect([...(values.get('blk.1.attn_v.weight') ?? [])]).toEqual([...get(info, 'model.layers.1.self_attn.v_proj.weight')]);
    expect([...(values.get('output.weight') ?? [])]).toEqual([...get(info, 'lm_head.weight')]);
    expect([...(values.get('token_embd.weight') ?? [])]).toEqual([...get(info, 'model.embed_tokens.weight')]);
  });

  it('qwen2, tied: q/k/v biases, no permutation, no output tensor', async () => {
    const { info } = await tiny({ architecture: 'qwen2', tied: true, seed: 4 });
    const file = await convert(info, 'f32');
    const gi = await readGgufFileInfo(file, { logWarnings: false });
    const names = gi.tensorInfo?.map((t) => t.name) ?? [];
    expect(names).not.toContain('output.weight');
    expect(names).toContain('blk.0.attn_q.bias');
    expect(names).toContain('blk.1.attn_v.bias');
    const md = gi.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md.general?.architecture).toBe('qwen2');
    expect(md.qwen2).toMatchObject({ embedding_length: 32, attention: { head_count: 4, head_count_kv: 2 } });
    const values = await tensorValues(file);
    expect([...(values.get('blk.0.attn_q.weight') ?? [])]).toEqual([...get(info, 'model.layers.0.self_attn.q_proj.weight')]);
    expect([...(values.get('blk.0.attn_k.bias') ?? [])]).toEqual([...get(info, 'model.layers.0.self_attn.k_proj.bias')]);
  });

  it('permutes q/k biases of a llama checkpoint that has them', async () => {
    const { info } = await tiny({ architecture: 'qwen2', tied: true, seed: 5 });
    const config = JSON.parse(await readFile(path.join(info.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(info.dir, 'config.json'), JSON.stringify({ ...config, architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: true }));
    const values = await tensorValues(await convert(info, 'f32'));
    expect([...(values.get('blk.0.attn_q.bias') ?? [])]).toEqual([...pairsLayout(get(info, 'model.layers.0.self_attn.q_proj.bias'), 4, 1)]);
    expect([...(values.get('blk.0.attn_k.bias') ?? [])]).toEqual([...pairsLayout(get(info, 'model.layers.0.self_attn.k_proj.bias'), 2, 1)]);
    expect([...(values.get('blk.0.attn_v.bias') ?? [])]).toEqual([...get(info, 'model.layers.0.self_attn.v_proj.bias')]);
  });

  it('out types: f16 / bf16 / q8_0 matrices, f32 norms, file_type, q8_0 falls back to f16 for rows of 48', async () => {
    const { info } = await tiny({ architecture: 'mistral', tied: false, seed: 6 });
    const types = async (file: string) => {
      const gi = await readGgufFileInfo(file, { logWarnings: false });
      const md = gi.metadata as unknown as Record<string, Record<string, unknown>>;
      return { fileType: md.general?.file_type, byName: Object.fromEntries((gi.tensorInfo ?? []).map((t) => [t.name, t.ggmlType])) };
    };
    const f16 = await convert(info, 'f16');
    expect(await types(f16)).toMatchObject({ fileType: 1, byName: { 'token_embd.weight': 1, 'blk.0.attn_norm.weight': 0, 'blk.0.ffn_down.weight': 1 } });
    expect([...((await tensorValues(f16)).get('output.weight') ?? [])]).toEqual([...get(info, 'lm_head.weight')].map(roundToF16));
    const bf16 = await convert(info, 'bf16');
    expect(await types(bf16)).toMatchObject({ fileType: 32, byName: { 'blk.0.attn_v.weight': 30, 'output_norm.weight': 0 } });
    expect([...((await tensorValues(bf16)).get('blk.0.attn_v.weight') ?? [])]).toEqual([...get(info, 'model.layers.0.self_attn.v_proj.weight')].map(roundToBf16));
    const q8 = await convert(info, 'q8_0');
    expect(await types(q8)).toMatchObject({ fileType: 7, byName: { 'blk.0.attn_q.weight': 8, 'blk.0.ffn_up.weight': 8, 'blk.0.ffn_down.weight': 1, 'blk.0.ffn_norm.weight': 0 } });
  });

  it("'auto' keeps the stored type: BF16 checkpoint → BF16 matrices, file_type 32", async () => {
    const { info } = await tiny({ architecture: 'llama', dtype: 'BF16', seed: 8 });
    const gi = await readGgufFileInfo(await convert(info), { logWarnings: false });
    const md = gi.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md.general?.file_type).toBe(32);
    expect(gi.tensorInfo?.find((t) => t.name === 'blk.0.attn_q.weight')?.ggmlType).toBe(30);
  });

  it('streams in small chunks with byte-identical output (whole heads per chunk for q/k)', async () => {
    const { info } = await tiny({ architecture: 'llama', seed: 9 });
    const a = await readFile(await convert(info, 'f32'));
    const b = await readFile(await convert(info, 'f32', 8)); // one row (or one head of 8 rows) at a time
    expect(a.equals(b)).toBe(true);
  });

  it('pads the token list to the embedding rows with unused [PAD] tokens', async () => {
    const d = path.join(dir, 'padded');
    await mkdir(d, { recursive: true });
    const vocab = await writeTinySpmTokenizer(d);
    await writeTinyLlama(d, { hidden: 16, heads: 2, layers: 1, vocab: vocab + 3 });
    await writeTinySpmTokenizer(d);
    const out = path.join(dir, 'padded.gguf');
    await convertHfToGguf(d, out, { outType: 'f32' });
    const gi = await readGgufFileInfo(out, { logWarnings: false });
    const tok = (gi.metadata as unknown as { tokenizer: { ggml: { tokens: string[]; token_type: number[] } } }).tokenizer.ggml;
    expect(tok.tokens.length).toBe(vocab + 3);
    expect(tok.tokens.slice(-3)).toEqual([`[PAD${vocab}]`, `[PAD${vocab + 1}]`, `[PAD${vocab + 2}]`]);
    expect(tok.token_type.slice(-3)).toEqual([5, 5, 5]);
  });

  describe('rejects bad checkpoints before writing anything', () => {
    async function expectCode(info: TinyLlamaInfo, code: string, tweak?: (c: GgufSourceCheckpoint) => GgufSourceCheckpoint): Promise<void> {
      const out = path.join(dir, `bad${counter++}`);
      await mkdir(out);
      const ckpt = await openCheckpoint(info.dir);
      const err = await writeGguf(tweak ? tweak(ckpt) : ckpt, await prepareTokenizerMetadata(info.dir), path.join(out, 'x.gguf')).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe(code);
      expect(await readdir(out)).toEqual([]);
    }
    it('UNSUPPORTED_ARCHITECTURE', async () => {
      const { info } = await tiny({ architecture: 'llama' });
      const c = JSON.parse(await readFile(path.join(info.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(path.join(info.dir, 'config.json'), JSON.stringify({ ...c, architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }));
      await expectCode(info, 'UNSUPPORTED_ARCHITECTURE');
    });
    it('MISSING_TENSOR', async () => {
      const { info } = await tiny({ architecture: 'llama', omit: ['model.layers.1.mlp.up_proj.weight'] });
      await expectCode(info, 'MISSING_TENSOR');
    });
    it('UNMAPPED_TENSOR', async () => {
      const { info } = await tiny({ architecture: 'llama' });
      await expectCode(info, 'UNMAPPED_TENSOR', (c) => {
        const tensors = new Map(c.tensors);
        const any = tensors.get('model.norm.weight');
        if (any) tensors.set('model.vision_tower.weight', any);
        return { ...c, tensors };
      });
    });
    it('SHAPE_MISMATCH', async () => {
      const { info } = await tiny({ architecture: 'llama' });
      const c = JSON.parse(await readFile(path.join(info.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(path.join(info.dir, 'config.json'), JSON.stringify({ ...c, intermediate_size: 64 }));
      await expectCode(info, 'SHAPE_MISMATCH');
    });
    it('TOKENIZER_TOO_LARGE', async () => {
      const { info, vocab } = await tiny({ architecture: 'llama' });
      await writeTinyLlama(info.dir, { hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, layers: 2, vocab: vocab - 1 });
      await writeTinySpmTokenizer(info.dir);
      await expectCode(info, 'TOKENIZER_TOO_LARGE');
    });
  });

  it('ggufHyperparameters reads head_dim, defaults and rope scaling', async () => {
    const { info } = await tiny({ architecture: 'llama' });
    const ckpt = await openCheckpoint(info.dir);
    const raw = { ...ckpt.config.raw, head_dim: 16, rope_scaling: { type: 'linear', factor: 2 } };
    const hp = ggufHyperparameters({ ...ckpt.config, raw });
    expect(hp).toMatchObject({ headDim: 16, ropeScaling: { type: 'linear', factor: 2 }, headCount: 4, headCountKv: 2 });
    expect(() => ggufHyperparameters({ ...ckpt.config, raw: { ...raw, rope_scaling: { rope_type: 'llama3', factor: 8 } } })).toThrow(GgufConversionError);
    // head_dim 16 × 4 heads ≠ hidden 32: the q projection no longer fits.
    expect(() => planGgufTensors(ckpt, hp, 'f32')).toThrow(/SHAPE_MISMATCH|shape/);
  });
});
