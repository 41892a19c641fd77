import { describe, expect, it } from 'vitest';
import { Rng, RngStreams } from '../../src/search/rng.js';

function draw(r: Rng, n: number): number[] {
  return Array.from({ length: n }, () => r.next());
}

describe('RngStreams', () => {
  it('gives the same sequence for the same seed and stream, different ones otherwise', () => {
    const a = draw(new RngStreams(42).stream('x'), 5);
    expect(draw(new RngStreams(42).stream('x'), 5)).toEqual(a);
    expect(draw(new RngStreams(43).stream('x'), 5)).not.toEqual(a);
    expect(draw(new RngStreams(42).stream('y'), 5)).not.toEqual(a);
  });

  it('keeps streams independent: drawing from one never shifts another', () => {
    const s1 = new RngStreams('seed');
    const s2 = new RngStreams('seed');
    draw(s1.stream('other'), 100);
    expect(draw(s1.stream('x'), 10)).toEqual(draw(s2.stream('x'), 10));
  });

  it('continues exactly after a JSON round trip of its state', () => {
    const s = new RngStreams(7);
    draw(s.stream('a'), 13);
    s.stream('b').normal();
    const saved = JSON.parse(JSON.stringify(s.saveState())) as ReturnType<RngStreams['saveState']>;
    const restored = RngStreams.fromState(saved);
    expect(draw(restored.stream('a'), 20)).toEqual(draw(s.stream('a'), 20));
    expect(draw(restored.stream('b'), 3)).toEqual(draw(s.stream('b'), 3));
    // A stream first used after the restore starts where it would have started anyway.
    expect(draw(restored.stream('new'), 3)).toEqual(draw(s.stream('new'), 3));
  });

  it('child trees are independent of the parent streams and reproducible', () => {
    const root = new RngStreams(1);
    const c1 = draw(root.child('optimizer').stream('x'), 4);
    expect(draw(new RngStreams(1).child('optimizer').stream('x'), 4)).toEqual(c1);
    expect(draw(root.stream('x'), 4)).not.toEqual(c1);
  });

  it('refuses a malformed state', () => {
    expect(() => RngStreams.fromState({ seed: 's', streams: { a: { c: 1, s0: 0.5, s1: Number.NaN, s2: 0 } } })).toThrow(RangeError);
  });
});

describe('Rng distributions', () => {
  const r = new RngStreams(3).stream('d');
  it('next() is in [0, 1) with the right mean', () => {
    const xs = draw(r, 20000);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((a, b) => a + b, 0) / xs.length).toBeCloseTo(0.5, 1);
  });
  it('int(n) covers 0..n-1 uniformly', () => {
    const counts = [0, 0, 0, 0, 0];
    for (let i = 0; i < 10000; i++) {
      const k = r.int(5);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    for (const c of counts) expect(c).toBeGreaterThan(1700);
    expect(() => r.int(0)).toThrow(RangeError);
  });
  it('normal() has mean 0 and variance 1', () => {
    const xs = Array.from({ length: 20000 }, () => r.normal());
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
  });
  it('permutation() is a permutation', () => {
    expect([...r.permutation(10)].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
  });
});
