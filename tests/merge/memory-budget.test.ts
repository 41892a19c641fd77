import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { estimateWorkingSetBytes, inputBytesOf, LargestFirstScheduler } from '../../src/merge/memory-budget.js';
import type { Admission } from '../../src/merge/memory-budget.js';
import type { FileTensorInput, TensorTask } from '../../src/merge/task.js';

function drain<T>(s: LargestFirstScheduler<T>): Admission<T>[] {
  const out: Admission<T>[] = [];
  for (let a = s.admit(); a !== undefined; a = s.admit()) out.push(a);
  return out;
}

describe('LargestFirstScheduler', () => {
  it('admits the largest tasks first, ties in push order, while they fit', () => {
    const s = new LargestFirstScheduler<string>({ capacityBytes: 100, maxRunning: 10 });
    s.push('a', 10);
    s.push('b', 60);
    s.push('c', 30);
    s.push('d', 30);
    s.push('e', 5);
    // 60 + 30 = 90; the next 30 does not fit (120), but 10 (100) does; 5 no longer fits.
    expect(drain(s).map((a) => a.item)).toEqual(['b', 'c', 'a']);
    expect(s.reservedBytes).toBe(100);
    expect(s.running).toBe(3);
    expect(s.pending).toBe(2);
  });

  it('releasing frees budget and a slot for the next largest that fits', () => {
    const s = new LargestFirstScheduler<string>({ capacityBytes: 100, maxRunning: 10 });
    for (const [name, cost] of [['x', 70], ['y', 50], ['z', 20]] as const) s.push(name, cost);
    const first = drain(s);
    expect(first.map((a) => a.item)).toEqual(['x', 'z']);
    const x = first[0];
    if (x === undefined) throw new Error('unreachable');
    s.release(x);
    expect(s.reservedBytes).toBe(20);
    expect(drain(s).map((a) => a.item)).toEqual(['y']);
    expect(s.reservedBytes).toBe(70);
  });

  it('never runs more than maxRunning tasks', () => {
    const s = new LargestFirstScheduler<number>({ capacityBytes: 1000, maxRunning: 2 });
    for (let i = 0; i < 5; i++) s.push(i, 1);
    const a = drain(s);
    expect(a.map((x) => x.item)).toEqual([0, 1]);
    const head = a[0];
    if (head === undefined) throw new Error('unreachable');
    s.release(head);
    expect(drain(s).map((x) => x.item)).toEqual([2]);
  });

  it('runs a task bigger than the whole budget alone, once the pool is empty', () => {
    const s = new LargestFirstScheduler<string>({ capacityBytes: 100, maxRunning: 4 });
    s.push('small', 10);
    const small = drain(s);
    expect(small.map((a) => a.item)).toEqual(['small']);
    s.push('huge', 500);
    s.push('tiny', 1);
    // The huge task waits while something runs; the tiny one may fill the gap.
    expect(drain(s).map((a) => a.item)).toEqual(['tiny']);
    for (const a of small) s.release(a);
    const tiny = { item: 'tiny', costBytes: 1, reservedBytes: 1, alone: false };
    s.release(tiny);
    const huge = drain(s);
    expect(huge).toEqual([{ item: 'huge', costBytes: 500, reservedBytes: 100, alone: true }]);
    // Nothing, not even a zero-cost task, starts beside it.
    s.push('zero', 0);
    expect(s.admit()).toBeUndefined();
    const h = huge[0];
    if (h === undefined) throw new Error('unreachable');
    s.release(h);
    expect(s.reservedBytes).toBe(0);
    expect(drain(s).map((a) => a.item)).toEqual(['zero']);
  });

  it('rejects invalid sizes and a release without a running task', () => {
    expect(() => new LargestFirstScheduler({ capacityBytes: 0, maxRunning: 1 })).toThrow(/capacityBytes/);
    expect(() => new LargestFirstScheduler({ capacityBytes: 1, maxRunning: 1.5 })).toThrow(/maxRunning/);
    const s = new LargestFirstScheduler<string>({ capacityBytes: 10, maxRunning: 1 });
    expect(() => s.push('a', -1)).toThrow(/costBytes/);
    expect(() => s.push('a', Number.NaN)).toThrow(/costBytes/);
    expect(() => s.release({ item: 'a', costBytes: 1, reservedBytes: 1, alone: false })).toThrow(/release/);
  });

  it('property: under any release order, the budget and slot limit hold and every task runs exactly once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 200 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 150 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 80 }),
        (costs, capacity, maxRunning, picks) => {
          const s = new LargestFirstScheduler<number>({ capacityBytes: capacity, maxRunning });
          costs.forEach((c, i) => s.push(i, c));
          const running: Admission<number>[] = [];
          const ran: number[] = [];
          let step = 0;
          while (s.pending > 0 || running.length > 0) {
            for (const a of drain(s)) {
              running.push(a);
              ran.push(a.item);
            }
            expect(running.length).toBeLessThanOrEqual(maxRunning);
            const alone = running.some((a) => a.alone);
            if (alone) expect(running).toHaveLength(1);
            else expect(running.reduce((n, a) => n + a.costBytes, 0)).toBeLessThanOrEqual(capacity);
            // Progress is guaranteed: something runs whenever work is left.
            expect(running.length).toBeGreaterThan(0);
            const k = (picks[step++ % picks.length] ?? 0) % running.length;
            const [done] = running.splice(k, 1);
            if (done !== undefined) s.release(done);
          }
          expect([...ran].sort((a, b) => a - b)).toEqual(costs.map((_, i) => i));
          expect(s.reservedBytes).toBe(0);
        },
      ),
    );
  });
});

function fileInput(model: string, dtype: 'BF16' | 'F32', shape: number[]): FileTensorInput {
  const n = shape.reduce((a, b) => a * b, 1);
  const size = dtype === 'BF16' ? 2 : 4;
  return { kind: 'file', model, file: `/m/${model}.safetensors`, tensor: 'w', dtype, shape, byteOffset: 8, byteLength: n * size };
}

function task(inputs: TensorTask['inputs'], outShape: number[]): TensorTask {
  return {
    output: 'w',
    outShape,
    outDType: 'BF16',
    computeDType: 'BF16',
    method: 'linear',
    inputs,
    baseIndex: null,
    params: {},
    modelParams: inputs.map(() => ({ weight: 1 })),
    isEmbed: false,
    randomKey: { seed: 0, tensor: 'w' },
  };
}

describe('estimateWorkingSetBytes', () => {
  it('counts stored inputs, (inputs + 4) scratch bytes per element and the output', () => {
    const t = task([fileInput('a', 'BF16', [4, 8]), fileInput('b', 'F32', [4, 8])], [4, 8]);
    // inputs 64 + 128, scratch (2 + 4) × 32 = 192, output 64.
    expect(estimateWorkingSetBytes(t)).toBe(64 + 128 + 192 + 64);
    expect(inputBytesOf(t)).toBe(192);
  });

  it('sizes scratch by the largest input (embeddings cut to a smaller output) and adds stage inputs whole', () => {
    const stage = task([fileInput('a', 'BF16', [2, 2])], [2, 2]);
    // stage: 8 + (1 + 4) × 4 + 8 = 36
    expect(estimateWorkingSetBytes(stage)).toBe(36);
    const t = task([fileInput('big', 'BF16', [10, 2]), { kind: 'stage', model: 's', task: stage }], [2, 2]);
    // 40 (file) + 36 (stage) + (2 + 4) × 20 = 120 + output 8.
    expect(estimateWorkingSetBytes(t)).toBe(40 + 36 + 120 + 8);
    expect(inputBytesOf(t)).toBe(40 + 8);
  });
});
