import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createMergeProgress, formatMergeSummary } from '../../src/merge/progress.js';
import type { ProgressMode, ProgressStream } from '../../src/merge/progress.js';

function capture(isTTY: boolean): { stream: ProgressStream; text: () => string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  if (isTTY) {
    stream.isTTY = true;
    stream.columns = 160;
  }
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

function runThrough(mode: ProgressMode, isTTY: boolean): string {
  const { stream, text } = capture(isTTY);
  const p = createMergeProgress(mode, stream);
  p.start({ tensors: 3, inputBytes: 3e9 });
  p.advance({ tensors: 1, inputBytes: 1e9 });
  p.warn('warning: tensor x runs alone');
  p.advance({ tensors: 2, inputBytes: 2e9 });
  p.finish({ tensors: 3, inputBytes: 3e9, seconds: 2, peakRssBytes: 512e6 });
  return text();
}

describe('merge progress', () => {
  it('writes nothing when the stream is not a TTY', () => {
    expect(runThrough('auto', false)).toBe('');
  });

  it("writes nothing in 'json' and 'none' modes, even on a TTY", () => {
    expect(runThrough('json', true)).toBe('');
    expect(runThrough('none', true)).toBe('');
  });

  it('draws a bar with tensors, GB and GB/s on a TTY, then the warning and the summary line', () => {
    const out = runThrough('auto', true);
    expect(out).toMatch(/3\/3 tensors/);
    expect(out).toMatch(/GB\/s/);
    expect(out).toContain('warning: tensor x runs alone\n');
    expect(out).toContain('merged 3 tensors in 2.0 s: 3.00 GB read at 1.50 GB/s, peak memory 512 MB\n');
  });

  it('grow() raises the total for passes the start did not plan, so the bar ends full', () => {
    const { stream, text } = capture(true);
    const p = createMergeProgress('auto', stream);
    p.start({ tensors: 1, inputBytes: 2e9 });
    p.advance({ tensors: 0, inputBytes: 2e9 });
    p.grow({ inputBytes: 1e9 });
    p.advance({ tensors: 1, inputBytes: 1e9 });
    p.finish({ tensors: 1, inputBytes: 3e9, seconds: 1, peakRssBytes: 1e6 });
    expect(text()).toMatch(/100% \| 1\/1 tensors \| 3\.00\/3\.00 GB/);
    // Silent displays take it too.
    expect(() => createMergeProgress('none', stream).grow({ inputBytes: 1 })).not.toThrow();
  });

  it('stop() after a failure prints no summary', () => {
    const { stream, text } = capture(true);
    const p = createMergeProgress('auto', stream);
    p.start({ tensors: 1, inputBytes: 10 });
    p.stop();
    expect(text()).not.toContain('merged');
  });

  it('formats the summary from its numbers', () => {
    expect(formatMergeSummary({ tensors: 291, inputBytes: 4.5e9, seconds: 1.5, peakRssBytes: 812.6e6 })).toBe(
      'merged 291 tensors in 1.5 s: 4.50 GB read at 3.00 GB/s, peak memory 813 MB',
    );
  });
});
