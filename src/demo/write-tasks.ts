import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../tensors/atomic-file.js';
import { factTaskFiles, mathTaskFiles } from './demo-tasks.js';
import type { DemoData } from './family-data.js';

/** Writes outDir/math and outDir/facts (task.yaml, search.jsonl, test.jsonl) atomically. */
export async function writeDemoTasks(outDir: string, data: DemoData): Promise<void> {
  const tasks = { math: mathTaskFiles(data.math), facts: factTaskFiles(data.world, data.settings.seed) };
  for (const [name, files] of Object.entries(tasks)) {
    const dir = path.join(outDir, name);
    await mkdir(dir, { recursive: true });
    for (const [file, body] of Object.entries(files)) await writeFileAtomic(path.join(dir, file), body);
  }
}
