import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GSM8K_FILES, MMLU_FILES, MMLU_SUBJECTS } from '../../src/eval/dataset-manifest.js';
import { downloadDatasetFiles, resolveDataDir } from '../../src/eval/datasets.js';
import { describeWithShared } from '../shared-dir.js';

describe('data directory resolution', () => {
  it('--data-dir, then the space, then $EVOMERGE_DATA_DIR, then the cache folder', () => {
    const env = { EVOMERGE_DATA_DIR: '/env/data', XDG_CACHE_HOME: '/cache' };
    expect(resolveDataDir({ flag: '/flag', space: '/space', env })).toEqual({ dir: '/flag', source: 'flag' });
    expect(resolveDataDir({ space: '/space', env })).toEqual({ dir: '/space', source: 'space' });
    expect(resolveDataDir({ env })).toEqual({ dir: '/env/data', source: 'env' });
    expect(resolveDataDir({ env: { XDG_CACHE_HOME: '/cache' } })).toEqual({ dir: '/cache/evomerge/datasets', source: 'default' });
    expect(resolveDataDir({ env: {} }).dir).toBe(path.join(os.homedir(), '.cache', 'evomerge', 'datasets'));
  });
});

describe('manifest', () => {
  it('pins 2 GSM8K files and 3 CSVs for each of 57 MMLU subjects to raw GitHub URLs at fixed commits', () => {
    expect(GSM8K_FILES.map((f) => f.path)).toEqual(['gsm8k/train.jsonl', 'gsm8k/test.jsonl']);
    expect(MMLU_SUBJECTS).toHaveLength(57);
    expect(MMLU_FILES).toHaveLength(171);
    for (const f of [...GSM8K_FILES, ...MMLU_FILES]) {
      expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(f.url).toMatch(/^https:\/\/raw\.githubusercontent\.com\/[^/]+\/[^/]+\/[0-9a-f]{40}\//);
      expect(f.bytes).toBeGreaterThan(0);
    }
    expect(MMLU_FILES.find((f) => f.path === 'mmlu/anatomy_val.csv')?.url.endsWith('/data/mmlu/val/anatomy_val.csv')).toBe(true);
  });
});

describeWithShared('manifest against shared/datasets', (shared) => {
  it('every pinned SHA-256 and size matches the files documented in SOURCES.md', () => {
    for (const f of [...GSM8K_FILES, ...MMLU_FILES]) {
      const bytes = readFileSync(path.join(shared, 'datasets', f.path));
      expect({ path: f.path, sha: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length }).toEqual({ path: f.path, sha: f.sha256, bytes: f.bytes });
    }
  });
});

describe('downloads (from a local server standing in for GitHub)', () => {
  let server: Server;
  let base: string;
  let dir: string;
  const served = new Map<string, Buffer>([
    ['/good.jsonl', Buffer.from('{"question":"q","answer":"#### 1"}\n')],
    ['/tampered.jsonl', Buffer.from('{"question":"q","answer":"#### 2"}\n')],
  ]);
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  let requests = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'evo-download-'));
    server = createServer((req, res) => {
      requests++;
      const body = served.get(req.url ?? '');
      if (body === undefined) {
        res.writeHead(404).end('no');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a file whose bytes match, and skips it the next time', async () => {
    const good = served.get('/good.jsonl') ?? Buffer.alloc(0);
    const files = [{ path: 'gsm8k/train.jsonl', url: `${base}/good.jsonl`, sha256: sha(good), bytes: good.length }];
    const first = await downloadDatasetFiles(files, dir);
    expect(first).toEqual({ downloaded: ['gsm8k/train.jsonl'], present: [] });
    expect(await readFile(path.join(dir, 'gsm8k', 'train.jsonl'))).toEqual(good);
    const before = requests;
    expect(await downloadDatasetFiles(files, dir)).toEqual({ downloaded: [], present: ['gsm8k/train.jsonl'] });
    expect(requests).toBe(before);
  });

  it('rejects bytes that differ from the pinned checksum and writes nothing', async () => {
    const good = served.get('/good.jsonl') ?? Buffer.alloc(0);
    const files = [{ path: 'gsm8k/test.jsonl', url: `${base}/tampered.jsonl`, sha256: sha(good), bytes: good.length }];
    await expect(downloadDatasetFiles(files, dir)).rejects.toMatchObject({ code: 'DATASET_CHECKSUM', message: expect.stringContaining(`${base}/tampered.jsonl gave`) });
    expect((await readdir(path.join(dir, 'gsm8k'))).filter((f) => f.includes('test'))).toEqual([]);
  });

  it('reports HTTP failures with the URL', async () => {
    const files = [{ path: 'mmlu/x_val.csv', url: `${base}/missing.csv`, sha256: '0'.repeat(64), bytes: 1 }];
    await expect(downloadDatasetFiles(files, dir)).rejects.toMatchObject({ code: 'DATASET_DOWNLOAD', message: expect.stringContaining('HTTP 404') });
  });
});
