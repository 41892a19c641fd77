/**
 * `npm run bench -- io [--size 1G] [--tensor 64M] [--passes 3]`: checkpoint I/O throughput.
 *
 * Writes a safetensors file of `--size` bytes (default 1 GiB) made of bf16 tensors of `--tensor`
 * bytes each (default 64 MiB, a realistic 7B-model matrix) into os.tmpdir(), then measures in the
 * same run:
 *   (a) a plain sequential read of the whole file into one big reused buffer (the baseline);
 *   (b) every tensor read through SafetensorsReader.readTensor into a reused buffer (async);
 *   (c) the same through readTensorSync;
 * and prints MB/s and the ratios (b)/(a), (c)/(a) (target ≥ 80 %). The three run interleaved,
 * `--passes` times (default 3, at least 2); pass 1 warms the page cache and is not counted, and the
 * best of the later (warm) passes is reported: this measures the read path, not the disk, and the
 * best-of damps noise from other processes on a shared machine. Also prints bf16 ↔ f32 and f16 ↔ f32 conversion throughput against a plain
 * Float32Array copy. The file is deleted at the end.
 */
import { closeSync, openSync, readSync, rmSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { bf16ToF32, f32ToBf16 } from '../src/tensors/bf16.js';
import { f16ToF32, f32ToF16 } from '../src/tensors/f16.js';
import { SafetensorsReader } from '../src/tensors/safetensors.js';
import { SafetensorsWriter } from '../src/tensors/safetensors-writer.js';
import type { PlannedTensor } from '../src/tensors/safetensors-writer.js';

const MiB = 1024 * 1024;

/** Parses `512M`, `1G`, `4096K` or a plain byte count. */
function parseBytes(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]i?B?)?$/i.exec(text.trim());
  if (m === null) throw new Error(`bench io: ${what} must be a size like 512M or 1G, got ${JSON.stringify(text)}`);
  const unit = (m[2] ?? '').toUpperCase().charAt(0);
  const scale = unit === 'K' ? 1024 : unit === 'M' ? MiB : unit === 'G' ? 1024 * MiB : 1;
  return Math.round(Number(m[1]) * scale);
}

function option(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === `--${name}`) return args[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

const mbps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const fmt = (x: number): string => x.toFixed(0).padStart(6);

async function timed(fn: () => Promise<number> | number): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const bytes = await fn();
  return { ms: performance.now() - t0, bytes };
}

export async function run(args: readonly string[]): Promise<void> {
  const totalBytes = parseBytes(option(args, 'size') ?? '1G', '--size');
  const tensorBytes = parseBytes(option(args, 'tensor') ?? '64M', '--tensor');
  const passes = Math.max(2, Number.parseInt(option(args, 'passes') ?? '3', 10) || 3);
  const cols = 4096;
  const rows = Math.max(1, Math.floor(tensorBytes / 2 / cols));
  const count = Math.max(1, Math.round(totalBytes / (rows * cols * 2)));
  const planned: PlannedTensor[] = Array.from({ length: count }, (_, i) => ({
    name: `model.layers.${i}.mlp.up_proj.weight`,
    dtype: 'BF16',
    shape: [rows, cols],
  }));

  const dir = mkdtempSync(path.join(os.tmpdir(), 'evomerge-bench-io-'));
  const file = path.join(dir, 'model.safetensors');
  try {
    // Write the file with distinct non-zero contents (so no file system can keep it sparse).
    const chunk = new Uint8Array(rows * cols * 2);
    const words = new Uint32Array(chunk.buffer);
    const write = await timed(async () => {
      const writer = await SafetensorsWriter.create(file, planned, { format: 'pt' });
      for (let i = 0; i < planned.length; i++) {
        for (let j = 0; j < words.length; j++) words[j] = (Math.imul(j + 1, 2654435761) ^ i) >>> 0;
        await writer.writeTensor(planned[i]?.name ?? '', chunk);
      }
      await writer.commit();
      return writer.layout.totalBytes;
    });
    const fileBytes = write.bytes;
    process.stdout.write(
      `file: ${(fileBytes / MiB).toFixed(0)} MiB, ${count} × bf16 [${rows}, ${cols}] (${((rows * cols * 2) / MiB).toFixed(0)} MiB each), in ${dir}\n`,
    );
    process.stdout.write(`write (SafetensorsWriter, incl. fsync): ${fmt(mbps(fileBytes, write.ms))} MB/s\n`);

    const big = new Uint8Array(64 * MiB);
    const plainRead = (): number => {
      const fd = openSync(file, 'r');
      let pos = 0;
      try {
        for (;;) {
          const n = readSync(fd, big, 0, big.byteLength, pos);
          if (n === 0) break;
          pos += n;
        }
      } finally {
        closeSync(fd);
      }
      return pos;
    };
    const tensorBuf = new Uint8Array(rows * cols * 2);
    const readerAsync = async (): Promise<number> => {
      const r = await SafetensorsReader.open(file);
      let bytes = 0;
      try {
        for (const name of r.header.tensors.keys()) bytes += (await r.readTensor(name, tensorBuf)).byteLength;
      } finally {
        await r.close();
      }
      return bytes;
    };
    const readerSync = (): number => {
      const r = SafetensorsReader.openSync(file);
      let bytes = 0;
      try {
        for (const name of r.header.tensors.keys()) bytes += r.readTensorSync(name, tensorBuf).byteLength;
      } finally {
        r.closeSync();
      }
      return bytes;
    };

    const results = new Map<string, number>();
    for (let pass = 1; pass <= passes; pass++) {
      for (const [label, fn] of [
        ['(a) plain sequential read, 64 MiB buffer', plainRead],
        ['(b) SafetensorsReader.readTensor (async)', readerAsync],
        ['(c) SafetensorsReader.readTensorSync', readerSync],
      ] as const) {
        const t = await timed(fn);
        if (pass >= 2) results.set(label, Math.max(results.get(label) ?? 0, mbps(t.bytes, t.ms)));
        process.stdout.write(`pass ${pass} ${label}: ${fmt(mbps(t.bytes, t.ms))} MB/s${pass === 1 ? ' (cold-ish, not reported)' : ''}\n`);
      }
    }
    const base = results.get('(a) plain sequential read, 64 MiB buffer') ?? Number.NaN;
    const viaAsync = results.get('(b) SafetensorsReader.readTensor (async)') ?? Number.NaN;
    const viaSync = results.get('(c) SafetensorsReader.readTensorSync') ?? Number.NaN;
    process.stdout.write(`warm figures (best of passes 2..${passes}; the file is in the page cache):\n`);
    process.stdout.write(`  plain read        ${fmt(base)} MB/s\n`);
    process.stdout.write(`  readTensor        ${fmt(viaAsync)} MB/s   ratio ${(viaAsync / base * 100).toFixed(1)} % of plain (target ≥ 80 %)\n`);
    process.stdout.write(`  readTensorSync    ${fmt(viaSync)} MB/s   ratio ${(viaSync / base * 100).toFixed(1)} % of plain (target ≥ 80 %)\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Conversions over 16 Mi elements, best of 3, against a plain f32 copy of the same elements.
  const n = 16 * 1024 * 1024;
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i++) f32[i] = Math.sin(i) * 3;
  const half = new Uint16Array(n);
  const back = new Float32Array(n);
  const best = (fn: () => void): number => {
    let ms = Number.POSITIVE_INFINITY;
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      fn();
      ms = Math.min(ms, performance.now() - t0);
    }
    return ms;
  };
  const copyMs = best(() => back.set(f32));
  const rows2: [string, number][] = [
    ['f32 → bf16', best(() => f32ToBf16(f32, half))],
    ['bf16 → f32', best(() => bf16ToF32(half, back))],
    ['f32 → f16 ', best(() => f32ToF16(f32, half))],
    ['f16 → f32 ', best(() => f16ToF32(half, back))],
  ];
  process.stdout.write(`conversions (16 Mi elements, best of 3); baseline f32 copy: ${(n / 1e6 / (copyMs / 1000)).toFixed(0)} M elem/s\n`);
  for (const [label, ms] of rows2) {
    const rate = n / 1e6 / (ms / 1000);
    process.stdout.write(`  ${label}: ${rate.toFixed(0).padStart(5)} M elem/s  (${((copyMs / ms) * 100).toFixed(0)} % of copy speed)\n`);
  }
}
