/**
 * slot-write.ts: slots at arbitrary offsets, written in any order with their interiors through
 * O_DIRECT (where the file system allows it) and their partial end pages buffered, leave exactly the
 * bytes a plain write would; a writer whose staging buffers the system refuses falls back to
 * buffered writes without losing a byte.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadKernels, TS_KERNELS } from '../../src/merge/native/binding.js';
import { DIRECT_ALIGN, DirectWriter, openDirect, writeSlot } from '../../src/merge/slot-write.js';
import { randomBytes } from '../random-bytes.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evomerge-slot-write-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const loaded = loadKernels({ logger: () => undefined });

/** Cuts [header, total) into slots of mixed sizes: tiny, under the direct minimum, and several MiB. */
function slotsOf(header: number, sizes: readonly number[]): { offset: number; length: number }[] {
  const slots: { offset: number; length: number }[] = [];
  let at = header;
  for (const length of sizes) {
    slots.push({ offset: at, length });
    at += length;
  }
  return slots;
}

const SIZES = [3, 70_001, 5 * 1024 * 1024 + 17, 4096, 200_000, 1, 3 * 1024 * 1024 - 5, 65_536 + 4095, 9_999_999];

async function writeAll(file: string, writer: DirectWriter | null, order: readonly number[]): Promise<{ expected: Uint8Array; direct: boolean }> {
  const header = 8 + 173; // an unaligned data start, as after a safetensors header
  const slots = slotsOf(header, SIZES);
  const total = header + SIZES.reduce((a, b) => a + b, 0);
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, total);
  const fd = fs.openSync(file, 'r+');
  const directFd = openDirect(file);
  const expected = new Uint8Array(total);
  try {
    const head = randomBytes(header, 99);
    fs.writeSync(fd, head, 0, header, 0);
    expected.set(head, 0);
    const pending: Promise<void>[] = [];
    for (const i of order) {
      const s = slots[i];
      if (s === undefined) continue;
      const data = randomBytes(s.length, i + 1);
      expected.set(data, s.offset);
      const p = writeSlot({ fd, directFd, byteOffset: s.offset }, data, `t${i}`, writer);
      // The caller may reuse its buffer at once: scribble over it before the write settles.
      data.fill(0xee);
      if (p !== null) pending.push(p);
    }
    await Promise.all(pending);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
    if (directFd !== null) fs.closeSync(directFd);
  }
  return { expected, direct: directFd !== null };
}

describe('writeSlot', () => {
  const orders = [
    SIZES.map((_, i) => i),
    SIZES.map((_, i) => SIZES.length - 1 - i),
    [4, 0, 8, 2, 6, 1, 7, 3, 5],
  ];
  for (const [name, pages] of [
    ['addon pages', loaded.native ? loaded.kernels : null],
    ['plain ArrayBuffers', TS_KERNELS],
  ] as const) {
    it.skipIf(pages === null)(`${name}: every byte lands where a plain write would put it, in any order`, async () => {
      if (pages === null) return;
      for (const [k, order] of orders.entries()) {
        const writer = new DirectWriter(pages);
        const file = path.join(dir, `${name.replace(/ /g, '-')}-${k}.bin`);
        const { expected, direct } = await writeAll(file, writer, order);
        const got = new Uint8Array(fs.readFileSync(file));
        expect(got.length).toBe(expected.length);
        expect(Buffer.compare(got, expected)).toBe(0);
        // Page-aligned addon buffers on a file system that opened O_DIRECT keep direct writes on.
        if (name === 'addon pages' && direct && process.platform === 'linux') expect(writer.enabled).toBe(true);
      }
    });
  }

  it('without a direct writer, writes everything at once and returns null', () => {
    const file = path.join(dir, 'buffered.bin');
    fs.writeFileSync(file, Buffer.alloc(3 * DIRECT_ALIGN));
    const fd = fs.openSync(file, 'r+');
    try {
      const data = randomBytes(2 * DIRECT_ALIGN, 5);
      expect(writeSlot({ fd, directFd: null, byteOffset: 100 }, data, 't', null)).toBeNull();
      const got = fs.readFileSync(file);
      expect(Buffer.compare(got.subarray(100, 100 + data.length), data)).toBe(0);
      expect(got[99]).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
  });
});
