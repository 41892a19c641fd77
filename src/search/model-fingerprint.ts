/**
 * Fingerprints of the model folders a run merges, so that resuming a run whose models were
 * replaced under the same paths (a retrained family, a re-downloaded checkpoint) is refused
 * instead of mixing candidates scored on the old models with ones built from the new. A
 * fingerprint hashes each weight and config file's name and size, its first and last MiB and
 * (format 2) 64 windows of 16 KiB spread evenly between them: at most 3 MiB read per file however
 * large. A retrained or re-quantised model changes everywhere, so it shows; files up to 3 MiB are
 * hashed whole; in a larger file an edit that falls between the windows can still escape it.
 * Format 1 (head and tail only) is what runs recorded before format 2; a stored format-1
 * fingerprint is compared with a format-1 one.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

const SAMPLE = 1 << 20;
const WINDOWS = 64;
const WINDOW = 16 << 10;
const FORMAT_2 = 'v2:';

export type FingerprintFormat = 1 | 2;

function fingerprinted(name: string): boolean {
  return name === 'config.json' || name.endsWith('.safetensors') || name.endsWith('.gguf') || name.endsWith('.bin');
}

/** The format a stored fingerprint was made with. */
export function fingerprintFormat(fingerprint: string): FingerprintFormat {
  return fingerprint.startsWith(FORMAT_2) ? 2 : 1;
}

async function hashRange(h: ReturnType<typeof createHash>, handle: FileHandle, start: number, length: number): Promise<void> {
  const buf = Buffer.alloc(length);
  await handle.read(buf, 0, length, start);
  h.update(buf);
}

/** The fingerprint of one model folder (or file); null when it is not on this disk. */
export async function modelFingerprint(ref: string, format: FingerprintFormat = 2): Promise<string | null> {
  const info = await stat(ref).catch(() => null);
  if (info === null) return null;
  const isDir = info.isDirectory();
  const files = isDir ? (await readdir(ref)).filter(fingerprinted).sort() : [path.basename(ref)];
  const dir = isDir ? ref : path.dirname(ref);
  const h = createHash('sha256');
  for (const name of files) {
    const handle = await open(path.join(dir, name), 'r');
    try {
      const { size } = await handle.stat();
      h.update(`${name}\0${size}\0`);
      await hashRange(h, handle, 0, Math.min(SAMPLE, size));
      if (size > SAMPLE) {
        const tail = Math.min(SAMPLE, size - SAMPLE);
        // Between the head and the tail: windows at evenly spaced offsets (format 2).
        const middle = size - SAMPLE - tail;
        if (format === 2 && middle > 0) {
          const length = Math.min(WINDOW, middle);
          for (let w = 0; w < WINDOWS; w++) await hashRange(h, handle, SAMPLE + Math.floor(((middle - length) * w) / (WINDOWS - 1)), length);
        }
        await hashRange(h, handle, size - tail, tail);
      }
    } finally {
      await handle.close();
    }
  }
  const hex = h.digest('hex');
  return format === 2 ? FORMAT_2 + hex : hex;
}

/**
 * Fingerprints of `refs` (base model first, then the sources), keyed by ref; refs not on disk are
 * left out. `formatOf` picks each ref's format (to compare with a stored one); default format 2.
 */
export async function modelFingerprints(refs: readonly string[], formatOf: (ref: string) => FingerprintFormat = () => 2): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const ref of refs) {
    const f = await modelFingerprint(ref, formatOf(ref));
    if (f !== null) out[ref] = f;
  }
  return out;
}

/** The refs whose fingerprints differ between `stored` and `now` (a ref in only one of them counts too). */
export function changedModels(stored: Readonly<Record<string, string>>, now: Readonly<Record<string, string>>): string[] {
  const refs = new Set([...Object.keys(stored), ...Object.keys(now)]);
  return [...refs].filter((r) => stored[r] !== now[r]).sort();
}
