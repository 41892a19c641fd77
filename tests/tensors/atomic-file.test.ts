import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AtomicWriteError, tempPathFor, writeFileAtomic, writeFileAtomicSync } from '../../src/tensors/atomic-file.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'evomerge-atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('atomic file writes', () => {
  it('temp names sit beside the file, hidden, and differ each time', () => {
    const file = path.join(dir, 'a.json');
    const t1 = tempPathFor(file);
    const t2 = tempPathFor(file);
    expect(path.dirname(t1)).toBe(dir);
    expect(path.basename(t1).startsWith('.a.json.')).toBe(true);
    expect(t1.endsWith('.tmp')).toBe(true);
    expect(t1).not.toBe(t2);
  });

  it('creates and replaces a file, leaving no temp file', async () => {
    const file = path.join(dir, 'b.txt');
    await writeFileAtomic(file, 'one');
    expect(readFileSync(file, 'utf8')).toBe('one');
    await writeFileAtomic(file, new Uint8Array([0x74, 0x77, 0x6f]));
    expect(readFileSync(file, 'utf8')).toBe('two');
    writeFileAtomicSync(file, 'three');
    expect(readFileSync(file, 'utf8')).toBe('three');
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('fails with WRITE_FAILED naming the file when the directory is missing, writing nothing', async () => {
    const file = path.join(dir, 'no-such-dir', 'c.txt');
    const err = await writeFileAtomic(file, 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AtomicWriteError);
    expect(err).toMatchObject({ code: 'WRITE_FAILED', file });
    expect(() => writeFileAtomicSync(file, 'x')).toThrow(AtomicWriteError);
    expect(existsSync(path.dirname(file))).toBe(false);
  });

  it('a failed rename (destination is a non-empty directory) keeps the destination and removes the temp', async () => {
    const target = path.join(dir, 'occupied');
    mkdirSync(target);
    writeFileSync(path.join(target, 'inside'), 'keep');
    await expect(writeFileAtomic(target, 'x')).rejects.toMatchObject({ code: 'WRITE_FAILED' });
    expect(readFileSync(path.join(target, 'inside'), 'utf8')).toBe('keep');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
