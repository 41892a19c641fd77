/**
 * Fingerprints of the model folders a run merges, so that resuming a run whose models were
 * replaced under the same paths (a retrained family, a re-downloaded checkpoint) is refused
 * instead of mixing candidates scored on the old models with ones built from the new. A
 * fingerprint hashes each weight and config file's name, size, and first and last MiB: cheap for
 * a 100 GB model, and a retrained model changes in every tensor, so in both ends of every file.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';

const SAMPLE = 1 << 20;

function fingerprinted(name: string): boolean {
  return name === 'config.json' || name.endsWith('.safetensors') || name.endsWith('.gguf') || name.endsWith('.bin');
}

/** The fingerprint of one model folder (or file); null when it is not on this disk. */
export async function modelFingerprint(ref: string): Promise<string | null> {
  if (!existsSync(ref)) return null;
  const isDir = statSync(ref).isDirectory();
  const files = isDir ? (await readdir(ref)).filter(fingerprinted).sort() : [path.basename(ref)];
  const dir = isDir ? ref : path.dirname(ref);
  const h = createHash('sha256');
  for (const name of files) {
    const handle = await open(path.join(dir, name), 'r');
    try {
      const { size } = await handle.stat();
      h.update(`${name}\0${size}\0`);
      const head = Buffer.alloc(Math.min(SAMPLE, size));
      await handle.read(head, 0, head.length, 0);
      h.update(head);
      if (size > SAMPLE) {
        const tail = Buffer.alloc(Math.min(SAMPLE, size - SAMPLE));
        await handle.read(tail, 0, tail.length, size - tail.length);
        h.update(tail);
      }
    } finally {
      await handle.close();
    }
  }
  return h.digest('hex');
}

/** Fingerprints of `refs` (base model first, then the sources), keyed by ref; refs not on disk are left out. */
export async function modelFingerprints(refs: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const ref of refs) {
    const f = await modelFingerprint(ref);
    if (f !== null) out[ref] = f;
  }
  return out;
}

/** The refs whose fingerprints differ between `stored` and `now` (a ref in only one of them counts too). */
export function changedModels(stored: Readonly<Record<string, string>>, now: Readonly<Record<string, string>>): string[] {
  const refs = new Set([...Object.keys(stored), ...Object.keys(now)]);
  return [...refs].filter((r) => stored[r] !== now[r]).sort();
}
