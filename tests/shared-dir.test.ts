import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'evomerge-shared-dir-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

async function sharedDirWith(env: string): Promise<string | undefined> {
  vi.stubEnv('EVOMERGE_SHARED_DIR', env);
  vi.resetModules();
  return (await import('./shared-dir.js')).SHARED_DIR;
}

describe('SHARED_DIR', () => {
  it('is EVOMERGE_SHARED_DIR when that folder holds mergekit-golden/', async () => {
    const dir = path.join(tmp, 'shared');
    mkdirSync(path.join(dir, 'mergekit-golden'), { recursive: true });
    expect(await sharedDirWith(dir)).toBe(dir);
  });

  it('is undefined when EVOMERGE_SHARED_DIR names a missing folder, whatever lies beside the repo', async () => {
    expect(await sharedDirWith(path.join(tmp, 'missing'))).toBeUndefined();
  });

  it('is undefined when the folder lacks mergekit-golden/', async () => {
    mkdirSync(path.join(tmp, 'empty'), { recursive: true });
    expect(await sharedDirWith(path.join(tmp, 'empty'))).toBeUndefined();
  });
});
