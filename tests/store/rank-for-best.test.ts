import { describe, expect, it } from 'vitest';
import { bestPerObjective, rankForBest } from '../../src/store/records.js';
import type { ObjectiveSpec, ScoreRecord } from '../../src/store/types.js';

describe('rankForBest', () => {
  it('puts candidates scored on the most items first, then orders by value, then by id', () => {
    const scores = [
      { id: 1, value: 0.5, n: 50 },
      { id: 2, value: 0.9, n: 10 },
      { id: 3, value: 0.7, n: 50 },
      { id: 4, value: 0.7, n: 50 },
      { id: 5, value: 0.2, n: 10 },
    ];
    expect(rankForBest('maximize', scores).map((s) => s.id)).toEqual([3, 4, 1, 2, 5]);
    expect(rankForBest('minimize', scores).map((s) => s.id)).toEqual([1, 3, 4, 5, 2]);
    // The input keeps its order.
    expect(scores.map((s) => s.id)).toEqual([1, 2, 3, 4, 5]);
    expect(rankForBest('maximize', [])).toEqual([]);
  });

  it('ranks a long run without spreading its scores into one call', () => {
    const many = Array.from({ length: 300_000 }, (_, i) => ({ id: i + 1, value: (i * 7919) % 1000, n: i === 123_456 ? 64 : 16 }));
    expect(rankForBest('maximize', many)[0]?.id).toBe(123_457);
  });

  it('bestPerObjective takes the first of that order per objective, and null where nobody is scored', () => {
    const s = (value: number, n: number): ScoreRecord => ({ value, n, stderr: 0.05, ciLow: value - 0.1, ciHigh: value + 0.1 });
    const entries: { id: number; scores: Record<string, ScoreRecord> }[] = [
      { id: 1, scores: { acc: s(0.8, 8) } },
      { id: 2, scores: { acc: s(0.6, 32), loss: s(2, 32) } },
      { id: 3, scores: { acc: s(0.7, 32), loss: s(1, 32) } },
    ];
    const objectives: ObjectiveSpec[] = [
      { name: 'acc', direction: 'maximize' },
      { name: 'loss', direction: 'minimize' },
      { name: 'speed', direction: 'maximize' },
    ];
    const best = bestPerObjective(objectives, entries);
    expect(best['acc']).toEqual({ candidateId: 3, value: 0.7, ciLow: 0.7 - 0.1, ciHigh: 0.7 + 0.1, n: 32 });
    expect(best['loss']?.candidateId).toBe(3);
    expect(best['speed']).toBeNull();
  });
});
