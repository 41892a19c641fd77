import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SentencePieceModelError, parseSentencePieceModel, serializeSentencePieceModel } from '../../src/convert/sentencepiece-model.js';
import type { PieceType } from '../../src/convert/sentencepiece-model.js';
import { TokenizerConversionError, prepareTokenizerMetadata, tokenizerMetadataEntries } from '../../src/convert/tokenizer-gguf.js';
import { QWEN2_PRE_REGEX, tinyBpeVocabulary, tinySpmVocabulary, writeTinyBpeTokenizer, writeTinySpmTokenizer } from '../model/tiny-tokenizers.js';

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evo-tok-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function folder(files: Record<string, unknown>): Promise<string> {
  const d = path.join(dir, `t${n++}`);
  await mkdir(d);
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(d, name), typeof content === 'string' ? content : JSON.stringify(content));
  return d;
}

describe('SentencePiece model protobuf', () => {
  it('parses hand-encoded bytes, including a negative pad_id as a 10-byte varint', () => {
    // pieces { piece: "a" score: 0.5 type: NORMAL(1) }, pieces { piece: "<0x0A>" score: 0 type: BYTE(6) }
    const piece1 = [0x0a, 0x01, 0x61, 0x15, 0x00, 0x00, 0x00, 0x3f, 0x18, 0x01];
    const piece2 = [0x0a, 0x06, ...Buffer.from('<0x0A>'), 0x18, 0x06];
    // trainer_spec { model_type: BPE(2), unk_id(40): 3, pad_id(43): -1 }, plus an unknown field 99 (varint 7)
    const trainer = [0x18, 0x02, 0xc0, 0x02, 0x03, 0xd8, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x98, 0x06, 0x07];
    // normalizer_spec { add_dummy_prefix(3): false }
    const normalizer = [0x18, 0x00];
    const bytes = Uint8Array.from([0x0a, piece1.length, ...piece1, 0x0a, piece2.length, ...piece2, 0x12, trainer.length, ...trainer, 0x1a, normalizer.length, ...normalizer]);
    const m = parseSentencePieceModel(bytes, 'hand.model');
    expect(m.pieces).toEqual([
      { piece: 'a', score: 0.5, type: 'normal' },
      { piece: '<0x0A>', score: 0, type: 'byte' },
    ]);
    expect(m).toMatchObject({ modelType: 'bpe', unkId: 3, bosId: 1, eosId: 2, padId: -1, addDummyPrefix: false });
  });

  it('round-trips serialize → parse (property)', () => {
    const types: PieceType[] = ['normal', 'unknown', 'control', 'user_defined', 'unused', 'byte'];
    fc.assert(
      fc.property(
        fc.array(fc.record({ piece: fc.string({ minLength: 1, maxLength: 6 }), score: fc.float({ noNaN: true, noDefaultInfinity: true }), type: fc.constantFrom(...types) }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: -1, max: 5 }),
        fc.boolean(),
        (pieces, padId, addDummyPrefix) => {
          const model = { pieces, modelType: 'bpe' as const, unkId: 0, bosId: 1, eosId: 2, padId, byteFallback: true, addDummyPrefix, removeExtraWhitespaces: false };
          const back = parseSentencePieceModel(serializeSentencePieceModel(model), 'x');
          expect(back).toEqual({ ...model, pieces: pieces.map((p) => ({ ...p, score: Math.fround(p.score) })) });
        },
      ),
    );
  });

  it('rejects truncated and empty input with SentencePieceModelError', () => {
    const good = serializeSentencePieceModel({ pieces: [{ piece: 'ab', score: 1, type: 'normal' }], modelType: 'bpe', unkId: 0, bosId: 1, eosId: 2, padId: -1, byteFallback: false, addDummyPrefix: true, removeExtraWhitespaces: true });
    const err = (b: Uint8Array) => {
      try {
        parseSentencePieceModel(b, 'bad.model');
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect((err(good.subarray(0, good.length - 3)) as SentencePieceModelError).code).toBe('SPM_TRUNCATED');
    expect((err(new Uint8Array(0)) as SentencePieceModelError).code).toBe('SPM_EMPTY');
    expect((err(Uint8Array.from([0x0f])) as SentencePieceModelError).code).toBe('SPM_MALFORMED'); // wire type 7
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const e = err(b);
        expect(e === undefined || e instanceof SentencePieceModelError).toBe(true);
      }),
    );
  });
});

describe('prepareTokenizerMetadata', () => {
  it('SentencePiece tokenizer.model → llama vocabulary with scores, types and special ids', async () => {
    const d = await folder({});
    const size = await writeTinySpmTokenizer(d);
    const meta = await prepareTokenizerMetadata(d);
    const vocab = tinySpmVocabulary();
    expect(meta.model).toBe('llama');
    expect(meta.tokens.length).toBe(size);
    expect(meta.tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(meta.tokenTypes.slice(0, 4)).toEqual([2, 3, 3, 6]);
    expect(meta.scores).toEqual(vocab.pieces.map((p) => Math.fround(p.score)));
    expect(meta.tokens.indexOf('▁the')).toBeGreaterThan(258);
    expect(meta).toMatchObject({ bosTokenId: 1, eosTokenId: 2, unknownTokenId: 0, addBosToken: true, addEosToken: false, addSpacePrefix: true });
    expect(meta.paddingTokenId).toBeUndefined();
    expect(JSON.parse(JSON.stringify(meta))).toEqual(meta); // serializable for reuse across candidates
  });

  it('byte-level BPE tokenizer.json → gpt2 vocabulary, merges, qwen2 pre-tokenizer, control specials', async () => {
    const d = await folder({});
    const size = await writeTinyBpeTokenizer(d);
    const meta = await prepareTokenizerMetadata(d);
    const { tokens, merges } = tinyBpeVocabulary();
    expect(meta).toMatchObject({ model: 'gpt2', pre: 'qwen2', merges, addBosToken: false });
    expect(meta.tokens).toEqual([...tokens, '<|endoftext|>', '<|im_start|>', '<|im_end|>']);
    expect(meta.tokenTypes.slice(-4)).toEqual([1, 3, 3, 3]);
    expect(meta.eosTokenId).toBe(size - 3);
    expect(meta.paddingTokenId).toBe(size - 3);
    expect(meta.bosTokenId).toBeUndefined();
    expect(meta.scores).toBeUndefined();
  });

  const byteLevel = (pre: unknown) => ({
    added_tokens: [{ id: 3, content: '<|end|>', special: true }, { id: 4, content: 'USER', special: false }],
    pre_tokenizer: pre,
    model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: [['a', 'b']] },
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|end|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }] },
  });

  it('detects the GPT-2 and Llama-3 pre-tokenizers, reads [a, b] merges and a BOS template', async () => {
    const gpt2 = await prepareTokenizerMetadata(await folder({ 'tokenizer.json': byteLevel({ type: 'ByteLevel', add_prefix_space: false }) }));
    expect(gpt2).toMatchObject({ model: 'gpt2', pre: 'gpt-2', merges: ['a b'], tokenTypes: [1, 1, 1, 3, 4], addBosToken: true, bosTokenId: 3 });
    const llama3Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const seq = (regex: string) => ({ type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex } }, { type: 'ByteLevel', use_regex: false }] });
    expect((await prepareTokenizerMetadata(await folder({ 'tokenizer.json': byteLevel(seq(llama3Regex)) }))).pre).toBe('llama-bpe');
    expect((await prepareTokenizerMetadata(await folder({ 'tokenizer.json': byteLevel(seq(QWEN2_PRE_REGEX)) }))).pre).toBe('qwen2');
    const unknown = await folder({ 'tokenizer.json': byteLevel(seq('\\w+')) });
    await expect(prepareTokenizerMetadata(unknown)).rejects.toMatchObject({ code: 'TOKENIZER_UNKNOWN_PRE' });
    expect((await prepareTokenizerMetadata(unknown, { pre: 'default' })).pre).toBe('default');
  });

  it('a byte-fallback BPE tokenizer.json (HF form of SentencePiece) → llama vocabulary scored by merge rank', async () => {
    const d = await folder({
      'tokenizer.json': {
        added_tokens: [{ id: 0, content: '<unk>', special: true }, { id: 1, content: '<s>', special: true }, { id: 2, content: '</s>', special: true }],
        normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace' }] },
        model: { type: 'BPE', byte_fallback: true, unk_token: '<unk>', vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, '<0x0A>': 3, '▁': 4, t: 5, h: 6, '▁t': 7, '▁th': 8 }, merges: ['▁ t', '▁t h'] },
      },
      'tokenizer_config.json': { bos_token: '<s>', eos_token: { content: '</s>' }, unk_token: '<unk>', add_bos_token: true, chat_template: 'T' },
    });
    const meta = await prepareTokenizerMetadata(d);
    expect(meta).toMatchObject({ model: 'llama', bosTokenId: 1, eosTokenId: 2, unknownTokenId: 0, addBosToken: true, addSpacePrefix: true, chatTemplate: 'T' });
    expect(meta.tokenTypes).toEqual([3, 3, 3, 6, 1, 1, 1, 1, 1]);
    expect(meta.scores?.slice(4)).toEqual([0, 0, 0, 0, -1]);
  });

  it('fails with a named code on missing or unsupported tokenizers', async () => {
    await expect(prepareTokenizerMetadata(await folder({}))).rejects.toMatchObject({ code: 'TOKENIZER_MISSING' });
    await expect(prepareTokenizerMetadata(await folder({ 'tokenizer.json': { model: { type: 'Unigram', vocab: [] } } }))).rejects.toMatchObject({ code: 'TOKENIZER_UNSUPPORTED' });
    await expect(prepareTokenizerMetadata(await folder({ 'tokenizer.json': '{not json' }))).rejects.toBeInstanceOf(TokenizerConversionError);
  });
});

describe('tokenizerMetadataEntries', () => {
  it('writes llama.cpp keys, pads to the embedding rows and checks special ids', () => {
    const meta = { model: 'llama' as const, tokens: ['<unk>', '<s>', 'a'], scores: [0, 0, -1], tokenTypes: [2, 3, 1], bosTokenId: 1, addBosToken: true };
    const entries = Object.fromEntries(tokenizerMetadataEntries(meta, 5).map((e) => [e.key, e.value.value]));
    expect(entries).toEqual({
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.pre': 'default',
      'tokenizer.ggml.tokens': ['<unk>', '<s>', 'a', '[PAD3]', '[PAD4]'],
      'tokenizer.ggml.scores': [0, 0, -1, 0, 0],
      'tokenizer.ggml.token_type': [2, 3, 1, 5, 5],
      'tokenizer.ggml.bos_token_id': 1,
      'tokenizer.ggml.add_bos_token': true,
    });
    expect(() => tokenizerMetadataEntries({ ...meta, eosTokenId: 9 }, 5)).toThrow(/outside the vocabulary/);
    expect(() => tokenizerMetadataEntries(meta, 2)).toThrow(TokenizerConversionError);
  });
});
