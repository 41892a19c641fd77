/**
 * Every safetensors file in the mergekit goldens was written by Python's safetensors library: we
 * must read each one and, given the same tensors and metadata, write the very same bytes.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { describeWithShared } from '../shared-dir.js';
import { decodeToF32 } from '../../src/tensors/dtype.js';
import { f32ToBf16Bits } from '../../src/tensors/bf16.js';
import { SafetensorsReader } from '../../src/tensors/safetensors.js';
import { planSafetensorsLayout, serializeSafetensors, writeSafetensors } from '../../src/tensors/safetensors-writer.js';
import type { TensorWithData } from '../../src/tensors/safetensors-writer.js';

/** Index of the first differing byte, the shorter length if one is a prefix, or -1 when equal. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? -1 : n;
}

function goldenFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.safetensors')) out.push(p);
    }
  };
  walk(root);
  return out.sort();
}

interface LlamaConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  vocab_size: number;
}

/** The shapes a Llama checkpoint must have, from its config.json (independent of the file). */
function expectedLlamaShapes(c: LlamaConfig, layers: number): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const h = c.hidden_size;
  const i = c.intermediate_size;
  m.set('model.embed_tokens.weight', [c.vocab_size, h]);
  m.set('lm_head.weight', [c.vocab_size, h]);
  m.set('model.norm.weight', [h]);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    for (const n of ['q', 'k', 'v', 'o']) m.set(`${p}self_attn.${n}_proj.weight`, [h, h]);
    m.set(`${p}mlp.gate_proj.weight`, [i, h]);
    m.set(`${p}mlp.up_proj.weight`, [i, h]);
    m.set(`${p}mlp.down_proj.weight`, [h, i]);
    m.set(`${p}input_layernorm.weight`, [h]);
    m.set(`${p}post_attention_layernorm.weight`, [h]);
  }
  return m;
}

describeWithShared('mergekit golden safetensors files', (shared) => {
  const root = path.join(shared, 'mergekit-golden');
  const files = goldenFiles(root);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'evomerge-golden-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('finds all 25 files', () => expect(files.length).toBe(25));

  for (const file of files) {
    const rel = path.relative(root, file);
    it(`reads ${rel} and rewrites it byte for byte`, async () => {
      const original = new Uint8Array(readFileSync(file));
      const reader = await SafetensorsReader.open(file);
      try {
        const h = reader.header;
        expect(h.fileSize).toBe(original.byteLength);
        expect(h.dataOffset % 8).toBe(0);
        const tensors: TensorWithData[] = [];
        for (const info of h.tensors.values()) {
          const data = await reader.readTensor(info.name);
          expect(firstDifference(data, original.subarray(info.byteOffset, info.byteOffset + info.byteLength))).toBe(-1);
          if (info.dtype === 'F32' || info.dtype === 'BF16') {
            const values = decodeToF32(info.dtype, data);
            expect(values.every((v) => Number.isFinite(v))).toBe(true);
          }
          tensors.push({ name: info.name, dtype: info.dtype, shape: info.shape, data });
        }
        const metadata = Object.keys(h.metadata).length === 0 ? undefined : h.metadata;
        const layout = planSafetensorsLayout(tensors, metadata);
        expect(firstDifference(layout.headerBytes, original.subarray(0, h.dataOffset))).toBe(-1);
        expect(layout.order).toEqual([...h.tensors.keys()]);
        expect(firstDifference(serializeSafetensors(tensors, metadata), original)).toBe(-1);
        // Same bytes through the file writer, fed in a shuffled order.
        const out = path.join(tmp, rel.replaceAll(path.sep, '_'));
        await writeSafetensors(out, [...tensors].reverse(), metadata);
        expect(firstDifference(new Uint8Array(readFileSync(out)), original)).toBe(-1);
      } finally {
        await reader.close();
      }
    });
  }

  it('input checkpoints have the shapes their config.json implies (39 tensors, 11,920 parameters)', async () => {
    for (const precision of ['f32', 'bf16']) {
      for (const model of ['base', 'ft1', 'ft2', 'ft3']) {
        const dir = path.join(root, 'inputs', precision, model);
        const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as LlamaConfig;
        const expected = expectedLlamaShapes(config, config.num_hidden_layers);
        const reader = await SafetensorsReader.open(path.join(dir, 'model.safetensors'));
        const h = reader.header;
        await reader.close();
        expect(h.tensors.size).toBe(39);
        let params = 0;
        for (const [name, info] of h.tensors) {
          expect(info.shape, name).toEqual(expected.get(name));
          expect(info.dtype).toBe(precision === 'f32' ? 'F32' : 'BF16');
          params += info.shape.reduce((a, b) => a * b, 1);
        }
        expect(params).toBe(11_920);
      }
    }
  });

  it('passthrough_frankenmerge has 6 layers (57 tensors)', async () => {
    const reader = await SafetensorsReader.open(path.join(root, 'cases/passthrough_frankenmerge/expected.safetensors'));
    const h = reader.header;
    await reader.close();
    const expected = expectedLlamaShapes({ hidden_size: 16, intermediate_size: 32, num_hidden_layers: 6, vocab_size: 48 }, 6);
    expect(h.tensors.size).toBe(57);
    for (const [name, info] of h.tensors) expect(info.shape, name).toEqual(expected.get(name));
  });

  it('bf16 inputs are the f32 inputs rounded to nearest even', async () => {
    for (const model of ['base', 'ft1', 'ft2', 'ft3']) {
      const f32 = await SafetensorsReader.open(path.join(root, 'inputs/f32', model, 'model.safetensors'));
      const bf16 = await SafetensorsReader.open(path.join(root, 'inputs/bf16', model, 'model.safetensors'));
      for (const name of f32.header.tensors.keys()) {
        const x = decodeToF32('F32', await f32.readTensor(name));
        const raw = await bf16.readTensor(name);
        const bits = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
        let differing = 0;
        for (let i = 0; i < x.length; i++) if (f32ToBf16Bits(x[i] ?? 0) !== bits[i]) differing++;
        expect(differing, `${model} ${name}`).toBe(0);
      }
      await f32.close();
      await bf16.close();
    }
  });
});
