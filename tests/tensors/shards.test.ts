import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsReader } from '../../src/tensors/safetensors.js';
import { writeSafetensors } from '../../src/tensors/safetensors-writer.js';
import type { PlannedTensor } from '../../src/tensors/safetensors-writer.js';
import {
  ShardError,
  ShardedWriter,
  formatSafetensorsIndex,
  planShards,
  readSafetensorsIndex,
  shardFileName,
  writeSafetensorsIndex,
} from '../../src/tensors/shards.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'evomerge-shards-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// F32 vectors of n elements weigh 4n bytes.
const vec = (name: string, n: number): PlannedTensor => ({ name, dtype: 'F32', shape: [n] });

describe('planShards', () => {
  it('fills shards greedily in plan order, with Hugging Face names and an index', () => {
    const tensors = [vec('a', 10), vec('b', 10), vec('c', 5), vec('d', 20), vec('e', 1)];
    const plan = planShards(tensors, 80);
    // a+b = 80 fits; c would make 100; c+d = 100 > 80; d+e = 84 > 80.
    expect(plan.shards.map((s) => [s.file, s.tensors.map((t) => t.name)])).toEqual([
      ['model-00001-of-00004.safetensors', ['a', 'b']],
      ['model-00002-of-00004.safetensors', ['c']],
      ['model-00003-of-00004.safetensors', ['d']],
      ['model-00004-of-00004.safetensors', ['e']],
    ]);
    expect(plan.index).toEqual({
      metadata: { total_size: 184 },
      weight_map: {
        a: 'model-00001-of-00004.safetensors',
        b: 'model-00001-of-00004.safetensors',
        c: 'model-00002-of-00004.safetensors',
        d: 'model-00003-of-00004.safetensors',
        e: 'model-00004-of-00004.safetensors',
      },
    });
  });

  it('gives a tensor larger than the limit a shard of its own', () => {
    const plan = planShards([vec('a', 1), vec('huge', 100), vec('b', 1)], 16);
    expect(plan.shards.map((s) => s.tensors.map((t) => t.name))).toEqual([['a'], ['huge'], ['b']]);
  });

  it('one shard → model.safetensors and no index; no tensors → one empty model.safetensors', () => {
    const one = planShards([vec('a', 10), vec('b', 10)], 1000);
    expect(one.shards.map((s) => s.file)).toEqual(['model.safetensors']);
    expect(one.index).toBeNull();
    expect(planShards([], 10).shards).toEqual([{ file: 'model.safetensors', tensors: [] }]);
  });

  it('rejects a bad limit and bad tensors before splitting', () => {
    expect(() => planShards([vec('a', 1)], 0)).toThrow(expect.objectContaining({ code: 'BAD_SHARD_SIZE' }));
    expect(() => planShards([vec('a', 1)], 1.5)).toThrow(ShardError);
    expect(() => planShards([vec('a', 1), vec('a', 2)], 4)).toThrow(expect.objectContaining({ code: 'DUPLICATE_TENSOR', tensor: 'a' }));
  });

  it('names shards with five digits', () => {
    expect(shardFileName(0, 3)).toBe('model-00001-of-00003.safetensors');
    expect(shardFileName(11, 123456, 'x')).toBe('x-00012-of-123456.safetensors');
  });
});

describe('index files', () => {
  it('writes the transformers layout (sorted keys, 2-space indent, newline) and reads it back', async () => {
    const file = path.join(root, 'model.safetensors.index.json');
    const index = { metadata: { total_size: 12, mergekit_version: '0.1.4' }, weight_map: { 'b.w': 'model-00002-of-00002.safetensors', 'a.w': 'model-00001-of-00002.safetensors' } };
    await writeSafetensorsIndex(file, index);
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(
      '{\n  "metadata": {\n    "mergekit_version": "0.1.4",\n    "total_size": 12\n  },\n  "weight_map": {\n' +
        '    "a.w": "model-00001-of-00002.safetensors",\n    "b.w": "model-00002-of-00002.safetensors"\n  }\n}\n',
    );
    expect(text).toBe(formatSafetensorsIndex(index));
    expect(await readSafetensorsIndex(file)).toEqual(index);
    expect(readdirSync(root).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  const bad: [string, string, string | undefined][] = [
    ['not json', 'INDEX_NOT_JSON', undefined],
    ['[1]', 'INDEX_NOT_OBJECT', undefined],
    ['{"metadata":[],"weight_map":{}}', 'INDEX_BAD_METADATA', 'metadata'],
    ['{"metadata":{"total_size":-1},"weight_map":{}}', 'INDEX_BAD_METADATA', 'metadata.total_size'],
    ['{"metadata":{"total_size":"12"},"weight_map":{}}', 'INDEX_BAD_METADATA', 'metadata.total_size'],
    ['{"metadata":{"total_size":1}}', 'INDEX_BAD_WEIGHT_MAP', 'weight_map'],
    ['{"metadata":{"total_size":1},"weight_map":{"x":3}}', 'INDEX_BAD_WEIGHT_MAP', 'weight_map["x"]'],
    ['{"metadata":{"total_size":1},"weight_map":{"x":"../evil.safetensors"}}', 'INDEX_BAD_SHARD_NAME', 'weight_map["x"]'],
    ['{"metadata":{"total_size":1},"weight_map":{"x":""}}', 'INDEX_BAD_SHARD_NAME', 'weight_map["x"]'],
  ];
  for (const [text, code, key] of bad) {
    it(`${code}: ${text}`, async () => {
      const file = path.join(root, `bad-${code}-${bad.findIndex((b) => b[0] === text)}.json`);
      writeFileSync(file, text);
      const err = await readSafetensorsIndex(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ShardError);
      expect(err).toMatchObject({ code, key, file });
    });
  }

  it('INDEX_UNREADABLE for a missing file', async () => {
    await expect(readSafetensorsIndex(path.join(root, 'missing.json'))).rejects.toMatchObject({ code: 'INDEX_UNREADABLE' });
  });

  it('computes total_size from the shards when an index lacks it (older mergekit)', async () => {
    const dir = path.join(root, 'old');
    mkdirSync(dir);
    await writeSafetensors(path.join(dir, 's1.safetensors'), [{ name: 'a', dtype: 'F32', shape: [3], data: new Uint8Array(12) }]);
    await writeSafetensors(path.join(dir, 's2.safetensors'), [{ name: 'b', dtype: 'BF16', shape: [5], data: new Uint8Array(10) }]);
    const file = path.join(dir, 'model.safetensors.index.json');
    writeFileSync(file, JSON.stringify({ metadata: { mergekit_version: '0.0.4' }, weight_map: { a: 's1.safetensors', b: 's2.safetensors' } }));
    const index = await readSafetensorsIndex(file);
    expect(index.metadata).toEqual({ mergekit_version: '0.0.4', total_size: 22 });
  });
});

describe('ShardedWriter', () => {
  const tensors = [vec('a', 4), vec('b', 4), vec('c', 8)];
  const data = (name: string, n: number): Uint8Array => new Uint8Array(n * 4).fill(name.charCodeAt(0));

  it('writes shards and the index; every tensor reads back through the index', async () => {
    const dir = path.join(root, 'sharded');
    mkdirSync(dir);
    const writer = await ShardedWriter.create(dir, tensors, { maxShardBytes: 32, metadata: { format: 'pt' } });
    expect(writer.plan.shards.length).toBe(2);
    await writer.writeTensor('a', data('a', 4));
    await writer.writeTensor('c', data('c', 8));
    await writer.writeTensorAt('b', 8, data('b', 2));
    await writer.writeTensorAt('b', 0, data('b', 2));
    const loc = writer.location('c');
    expect(loc.file).toBe(path.join(dir, 'model-00002-of-00002.safetensors'));
    expect(existsSync(path.join(dir, 'model.safetensors.index.json'))).toBe(false);
    await writer.commit();
    expect(readdirSync(dir).sort()).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    const index = await readSafetensorsIndex(path.join(dir, 'model.safetensors.index.json'));
    expect(index.metadata.total_size).toBe(64);
    for (const t of tensors) {
      const shard = index.weight_map[t.name];
      expect(shard).toBeDefined();
      const reader = SafetensorsReader.openSync(path.join(dir, shard ?? ''));
      expect(reader.header.metadata).toEqual({ format: 'pt' });
      expect([...reader.readTensorSync(t.name)]).toEqual([...data(t.name, t.shape[0] ?? 0)]);
      reader.closeSync();
    }
  });

  it('a single shard is model.safetensors without an index', async () => {
    const dir = path.join(root, 'single');
    mkdirSync(dir);
    const writer = await ShardedWriter.create(dir, tensors);
    for (const t of tensors) await writer.writeTensor(t.name, data(t.name, t.shape[0] ?? 0));
    await writer.commit();
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });

  it('abort removes every temporary file and writes nothing', async () => {
    const dir = path.join(root, 'aborted');
    mkdirSync(dir);
    const writer = await ShardedWriter.create(dir, tensors, { maxShardBytes: 16 });
    expect(readdirSync(dir).length).toBe(3);
    await writer.writeTensor('a', data('a', 4));
    await writer.abort();
    expect(readdirSync(dir)).toEqual([]);
  });
});
