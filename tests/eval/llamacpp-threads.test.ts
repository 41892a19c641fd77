import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultLlamaThreads, threadsForLoad } from '../../src/eval/llamacpp-threads.js';

describe('llama.cpp default threads', () => {
  it('gives llama.cpp the cores the load leaves idle, at least one, at most all', () => {
    expect(threadsForLoad(2, 0)).toBe(2);
    expect(threadsForLoad(2, 0.4)).toBe(2);
    expect(threadsForLoad(2, 0.6)).toBe(1);
    expect(threadsForLoad(2, 9.9)).toBe(1);
    expect(threadsForLoad(16, 3.2)).toBe(13);
    expect(threadsForLoad(16, 12.5)).toBe(4);
    // No load average (Windows reports 0; a broken reading is not a reason to starve it).
    expect(threadsForLoad(8, 0)).toBe(8);
    expect(threadsForLoad(8, Number.NaN)).toBe(8);
    expect(threadsForLoad(8, -1)).toBe(8);
  });

  it('reads this machine', () => {
    const n = defaultLlamaThreads();
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(os.availableParallelism());
  });
});
