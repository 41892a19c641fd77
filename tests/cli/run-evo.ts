import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

export interface EvoRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `evo ...args` in-process through the real CLI entry, capturing what it prints. */
export async function runEvo(...args: string[]): Promise<EvoRun> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(['node', 'evo', ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
