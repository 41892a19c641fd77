import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedModels, fingerprintFormat, modelFingerprint, modelFingerprints } from '../../src/search/model-fingerprint.js';

describe('model fingerprints', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'evo-fingerprint-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function model(name: string, weights: Buffer, config = '{"hidden_size": 8}'): Promise<string> {
    const d = path.join(dir, name);
    await mkdir(d, { recursive: true });
    await writeFile(path.join(d, 'model.safetensors'), weights);
    await writeFile(path.join(d, 'config.json'), config);
    await writeFile(path.join(d, 'README.md'), `notes about ${name}`);
    return d;
  }

  it('is the same for a copy, and changes with the weights, their size or the config; other files do not count', async () => {
    const big = Buffer.alloc(3 << 20, 7);
    const a = await model('a', big);
    const copy = path.join(dir, 'a-copy');
    await cp(a, copy, { recursive: true });
    await writeFile(path.join(copy, 'README.md'), 'edited');
    const fa = await modelFingerprint(a);
    expect(fa).toMatch(/^v2:[0-9a-f]{64}$/);
    expect(await modelFingerprint(copy)).toBe(fa);
    const head = Buffer.from(big);
    head[10] = 8;
    const tail = Buffer.from(big);
    tail[tail.length - 1] = 8;
    expect(await modelFingerprint(await model('head', head))).not.toBe(fa);
    expect(await modelFingerprint(await model('tail', tail))).not.toBe(fa);
    expect(await modelFingerprint(await model('longer', Buffer.concat([big, Buffer.alloc(1, 7)])))).not.toBe(fa);
    expect(await modelFingerprint(await model('config', big, '{"hidden_size": 16}'))).not.toBe(fa);
    // A small file is hashed whole.
    expect(await modelFingerprint(await model('s1', Buffer.from([1, 2, 3])))).not.toBe(await modelFingerprint(await model('s2', Buffer.from([1, 9, 3]))));
  });

  it('format 2 sees an edit in the middle of a file, which format 1 (head and tail only) misses', async () => {
    const big = Buffer.alloc(6 << 20, 3);
    const a = await model('mid-a', big);
    const edited = Buffer.from(big);
    // Inside the first window after the head: offset 1 MiB + 100.
    edited[(1 << 20) + 100] = 4;
    const b = await model('mid-b', edited);
    expect(await modelFingerprint(b)).not.toBe(await modelFingerprint(a));
    expect(await modelFingerprint(b, 1)).toBe(await modelFingerprint(a, 1));
    // A 3 MiB file is read whole by format 2: an edit anywhere shows.
    const small = Buffer.alloc(3 << 20, 5);
    const s0 = await model('whole-a', small);
    for (const at of [(1 << 20) + 7, (3 << 20) / 2, (2 << 20) - 1]) {
      const e = Buffer.from(small);
      e[at] = 6;
      expect(await modelFingerprint(await model(`whole-${at}`, e)), `edit at ${at}`).not.toBe(await modelFingerprint(s0));
    }
  });

  it('tells the formats apart, and computes each ref in the format asked for', async () => {
    const a = await model('formats', Buffer.alloc(4 << 20, 1));
    const v1 = await modelFingerprint(a, 1);
    expect(v1).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprintFormat(v1 ?? '')).toBe(1);
    expect(fingerprintFormat((await modelFingerprint(a)) ?? '')).toBe(2);
    expect(await modelFingerprints([a], () => 1)).toEqual({ [a]: v1 });
  });

  it('leaves out refs that are not on disk, and lists the refs that differ', async () => {
    const a = await model('b', Buffer.from([1]));
    const prints = await modelFingerprints([a, path.join(dir, 'missing'), 'org/hub-model']);
    expect(Object.keys(prints)).toEqual([a]);
    expect(await modelFingerprint(path.join(dir, 'missing'))).toBeNull();
    expect(changedModels({ x: '1', y: '2' }, { x: '1', y: '3', z: '4' })).toEqual(['y', 'z']);
    expect(changedModels({ x: '1' }, { x: '1' })).toEqual([]);
  });
});
