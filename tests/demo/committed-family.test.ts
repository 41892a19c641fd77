import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader } from '../../src/tensors/safetensors.js';

/**
 * What issue 6 promises about the committed family (demo/family): three Hugging Face model
 * directories, ≤ 10 MB in all, trained by the recorded command in ≤ 20 minutes, sharing one
 * tokenizer and one shape (the merges need that), every weight in the recorded storage dtype.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const familyDir = path.join(root, 'demo', 'family');
const models = ['base', 'math', 'facts'] as const;
const present = models.every((m) => existsSync(path.join(familyDir, m, 'model.safetensors')));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe.skipIf(!present)(`committed demo family${present ? '' : ' (skipped: demo/family is not in this checkout)'}`, () => {
  const record = present ? (JSON.parse(readFileSync(path.join(familyDir, 'family.json'), 'utf8')) as { seed: number; command: string; dtype?: string; trainSeconds: number; trained: string[] }) : undefined;

  it('is at most 10 MB in all', () => {
    const bytes = filesUnder(familyDir).reduce((sum, f) => sum + statSync(f).size, 0);
    expect(bytes).toBeLessThanOrEqual(10_000_000);
  });

  it('was trained whole by the recorded command in at most 20 minutes', () => {
    expect(record?.trained).toEqual([...models]);
    expect(record?.command).toMatch(/^node dist\/src\/demo\/train-family\.js/);
    expect(record?.trainSeconds).toBeGreaterThan(0);
    expect(record?.trainSeconds).toBeLessThanOrEqual(1200);
  });

  it('has one tokenizer, one shape and the recorded dtype in every model', async () => {
    const tokenizer = readFileSync(path.join(familyDir, 'base', 'tokenizer.json'), 'utf8');
    const config = JSON.parse(readFileSync(path.join(familyDir, 'base', 'config.json'), 'utf8')) as Record<string, unknown>;
    const want = { f32: 'F32', f16: 'F16', bf16: 'BF16' }[record?.dtype ?? 'f32'];
    for (const m of models) {
      const dir = path.join(familyDir, m);
      expect(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'), `${m} tokenizer`).toBe(tokenizer);
      expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')), `${m} config`).toEqual(config);
      const header = await readSafetensorsHeader(path.join(dir, 'model.safetensors'));
      const dtypes = new Set([...header.tensors.values()].map((t) => t.dtype));
      expect([...dtypes], `${m} dtypes`).toEqual([want]);
    }
  });
});
