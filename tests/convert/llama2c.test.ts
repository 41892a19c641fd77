import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Llama2cError, convertLlama2cToHf, readLlama2cParams } from '../../src/convert/llama2c.js';
import { parseSentencePieceModel } from '../../src/convert/sentencepiece-model.js';
import { openCheckpoint } from '../../src/tensors/checkpoint.js';
import { decodeToF32 } from '../../src/tensors/dtype.js';
import { itWithShared } from '../shared-dir.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-llama2c-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// dim 8, hidden 12, 1 layer, 2 heads (head 4), 1 kv head, vocab 6 (negative: own classifier), seq 3.
const P = { dim: 8, hidden: 12, layers: 1, heads: 2, kv: 1, vocab: 6, seq: 3 };

/** A legacy llama2.c file whose every f32 is its own index in the weight stream. */
function checkpointBytes(shared: boolean, dropBytes = 0): Buffer {
  const head = P.dim / P.heads;
  const kvDim = P.kv * head;
  const sizes = [
    P.vocab * P.dim, // embeddings
    P.dim, // attention norm
    P.dim * P.dim, // wq
    kvDim * P.dim, // wk
    kvDim * P.dim, // wv
    P.dim * P.dim, // wo
    P.dim, // ffn norm
    P.hidden * P.dim, // w1
    P.dim * P.hidden, // w2
    P.hidden * P.dim, // w3
    P.dim, // final norm
    2 * P.seq * (head / 2), // rope tables
    shared ? 0 : P.vocab * P.dim, // classifier
  ];
  const total = sizes.reduce((a, b) => a + b, 0);
  const b = Buffer.alloc(28 + total * 4);
  [P.dim, P.hidden, P.layers, P.heads, P.kv, shared ? P.vocab : -P.vocab, P.seq].forEach((v, i) => b.writeInt32LE(v, i * 4));
  for (let i = 0; i < total; i++) b.writeFloatLE(i, 28 + i * 4);
  return b.subarray(0, b.length - dropBytes);
}

function tokenizerBytes(tokens: readonly string[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)];
  parts[0]?.writeInt32LE(8);
  tokens.forEach((t, i) => {
    const text = Buffer.from(t, 'utf8');
    const h = Buffer.alloc(8);
    h.writeFloatLE(0 - i, 0);
    h.writeInt32LE(text.length, 4);
    parts.push(h, text);
  });
  return Buffer.concat(parts);
}

const TOKENS = ['<unk>', '\n<s>\n', '\n</s>\n', '<0x0A>', ' a', 'b c'];

describe('llama2.c → HF', () => {
  it('writes config, F32 weights in HF layout (q/k rows to rotate-half) and a SentencePiece tokenizer', async () => {
    const ck = path.join(dir, 'm.bin');
    const tok = path.join(dir, 'tok.bin');
    await writeFile(ck, checkpointBytes(false));
    await writeFile(tok, tokenizerBytes(TOKENS));
    const out = path.join(dir, 'hf');
    const params = await convertLlama2cToHf(ck, tok, out);
    expect(params).toEqual({ dim: 8, hiddenDim: 12, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 6, seqLen: 3, sharedClassifier: false });
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 12, num_key_value_heads: 1, vocab_size: 6, max_position_embeddings: 3, rms_norm_eps: 1e-5, tie_word_embeddings: false });

    const ckpt = await openCheckpoint(out);
    const read = async (name: string): Promise<number[]> => {
      const t = ckpt.tensors.get(name);
      if (!t) throw new Error(name);
      const buf = await readFile(t.file);
      return [...decodeToF32(t.dtype, buf.subarray(t.byteOffset, t.byteOffset + t.byteLength))];
    };
    const embed = 48; // 6 × 8 values before the first norm
    expect((await read('model.embed_tokens.weight')).slice(0, 3)).toEqual([0, 1, 2]);
    expect(await read('model.layers.0.input_layernorm.weight')).toEqual([48, 49, 50, 51, 52, 53, 54, 55]);
    // wq starts at 56. HF row h·4 + j·2 + i comes from file row h·4 + 2i + j: HF rows = file rows 0, 2, 1, 3, 4, 6, 5, 7.
    const q = await read('model.layers.0.self_attn.q_proj.weight');
    const fileRow = (r: number) => Array.from({ length: 8 }, (_, c) => embed + 8 + r * 8 + c);
    expect(q).toEqual([0, 2, 1, 3, 4, 6, 5, 7].flatMap(fileRow));
    const k = await read('model.layers.0.self_attn.k_proj.weight');
    expect(k.slice(8, 16)).toEqual(Array.from({ length: 8 }, (_, c) => 56 + 64 + 2 * 8 + c)); // HF row 1 = file row 2
    const up = await read('model.layers.0.mlp.up_proj.weight');
    const w3Start = 56 + 64 + 32 + 32 + 64 + 8 + 96 + 96;
    expect(up[0]).toBe(w3Start);
    expect((await read('lm_head.weight'))[0]).toBe(w3Start + 96 + 8 + 12);

    const spm = parseSentencePieceModel(await readFile(path.join(out, 'tokenizer.model')), 'tokenizer.model');
    expect(spm.pieces.map((p) => [p.piece, p.type])).toEqual([
      ['<unk>', 'unknown'],
      ['<s>', 'control'],
      ['</s>', 'control'],
      ['<0x0A>', 'byte'],
      ['▁a', 'normal'],
      ['b▁c', 'normal'],
    ]);
    expect(spm.pieces.map((p) => p.score)).toEqual([0, -1, -2, -3, -4, -5]);
    expect(spm).toMatchObject({ modelType: 'bpe', byteFallback: true, bosId: 1, eosId: 2 });
  });

  it('a positive vocab size means a shared classifier: tied, no lm_head', async () => {
    const ck = path.join(dir, 'shared.bin');
    await writeFile(ck, checkpointBytes(true));
    const tok = path.join(dir, 'tok6.bin');
    await writeFile(tok, tokenizerBytes(TOKENS));
    const out = path.join(dir, 'hf-shared');
    await convertLlama2cToHf(ck, tok, out);
    const ckpt = await openCheckpoint(out);
    expect(ckpt.tiedEmbeddings).toBe(true);
    expect(ckpt.tensors.has('lm_head.weight')).toBe(false);
  });

  it('rejects bad files with named codes before writing', async () => {
    const cases: [string, Buffer, string][] = [
      ['short.bin', checkpointBytes(false, 4), 'LLAMA2C_SIZE_MISMATCH'],
      ['tiny.bin', Buffer.alloc(10), 'LLAMA2C_TRUNCATED'],
      ['v1.bin', Buffer.concat([Buffer.from([0x32, 0x34, 0x6b, 0x61]), Buffer.alloc(300)]), 'LLAMA2C_UNSUPPORTED_VERSION'],
    ];
    for (const [name, bytes, code] of cases) {
      const f = path.join(dir, name);
      await writeFile(f, bytes);
      await expect(readLlama2cParams(f)).rejects.toMatchObject({ code });
    }
    const ck = path.join(dir, 'ok.bin');
    await writeFile(ck, checkpointBytes(false));
    const badTok = path.join(dir, 'tok5.bin');
    await writeFile(badTok, tokenizerBytes([...TOKENS, 'extra']));
    const out = path.join(dir, 'never');
    const err = await convertLlama2cToHf(ck, badTok, out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Llama2cError);
    expect((err as Llama2cError).code).toBe('LLAMA2C_SIZE_MISMATCH');
    await expect(readdir(out)).rejects.toThrow(); // nothing created
  });

  itWithShared('reads the real stories260K header', async (shared) => {
    const p = await readLlama2cParams(path.join(shared, 'models', 'stories260K', 'stories260K.bin'));
    expect(p).toEqual({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true });
  });
});
