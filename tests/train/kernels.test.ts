import { describe, expect, it } from 'vitest';
import { attentionBackwardReference, attentionForwardReference } from '../../src/train/attention.js';
import { gemmReference } from '../../src/train/gemm.js';
import { loadTrainKernels } from '../../src/train/kernels.js';

const kernels = loadTrainKernels();

function seeded(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe.runIf(kernels.native)('native training kernels against their TypeScript twins', () => {
  it('gemm gives the twin’s bytes for edge shapes, strided A, offsets and accumulation, for any thread count', () => {
    const shapes = [
      [1, 1, 1],
      [4, 32, 7],
      [5, 33, 9],
      [37, 70, 129],
      [130, 96, 2048],
    ] as const;
    for (const [m, n, k] of shapes) {
      for (const transposedA of [false, true]) {
        const a = seeded(m * k + 3, m * 31 + k);
        const b = seeded(k * (n + 2) + 5, n * 17 + k);
        const sam = transposedA ? 1 : k;
        const sak = transposedA ? m : 1;
        for (const accumulate of [false, true]) {
          const init = seeded(m * (n + 1) + 2, 99);
          const want = init.slice();
          gemmReference({ a, aOffset: 3, sam, sak, b, bOffset: 5, ldb: n + 2, c: want, cOffset: 2, ldc: n + 1, m, n, k, accumulate });
          for (const threads of [1, 2, 3]) {
            const got = init.slice();
            kernels.gemm({ a, aOffset: 3, sam, sak, b, bOffset: 5, ldb: n + 2, c: got, cOffset: 2, ldc: n + 1, m, n, k, accumulate }, threads);
            expect(same(got, want), `gemm ${m}×${n}×${k} transposedA=${transposedA} accumulate=${accumulate} threads=${threads}`).toBe(true);
          }
        }
      }
    }
  });

  it('gemm refuses a buffer shorter than the extent it would touch, naming it', () => {
    const a = new Float32Array(10);
    expect(() => kernels.gemm({ a, aOffset: 0, sam: 4, sak: 1, b: new Float32Array(16), bOffset: 0, ldb: 4, c: new Float32Array(16), cOffset: 0, ldc: 4, m: 4, n: 4, k: 4, accumulate: false }, 1)).toThrow(/gemm: a holds 10 elements, needs 16/);
  });

  it('attention forward and backward agree with the twins (GQA) and do not depend on the thread count', () => {
    const s = { batch: 3, seq: 9, heads: 4, kvHeads: 2, headDim: 6 };
    const n = s.batch * s.seq;
    const q = seeded(n * s.heads * s.headDim, 1);
    const k = seeded(n * s.kvHeads * s.headDim, 2);
    const v = seeded(n * s.kvHeads * s.headDim, 3);
    const dout = seeded(q.length, 4);
    const run = (threads: number | 'ts'): Float32Array[] => {
      const o = new Float32Array(q.length);
      const p = new Float32Array(s.batch * s.heads * s.seq * s.seq);
      const dq = seeded(q.length, 5);
      const dk = seeded(k.length, 6);
      const dv = seeded(v.length, 7);
      if (threads === 'ts') {
        attentionForwardReference(s, q, k, v, o, p);
        attentionBackwardReference(s, q, k, v, p, dout, dq, dk, dv);
      } else {
        kernels.attentionForward(s, q, k, v, o, p, threads);
        kernels.attentionBackward(s, q, k, v, p, dout, dq, dk, dv, threads);
      }
      return [o, p, dq, dk, dv];
    };
    const ts = run('ts');
    const one = run(1);
    const three = run(3);
    one.forEach((x, i) => {
      expect(same(x, three[i] ?? new Float32Array(0)), `output ${i}: threads 1 vs 3`).toBe(true);
      const t = ts[i] ?? new Float32Array(0);
      let worst = 0;
      x.forEach((val, j) => (worst = Math.max(worst, Math.abs(val - (t[j] ?? 0)))));
      expect(worst, `output ${i}: native vs TypeScript`).toBeLessThan(1e-5);
    });
  });
});

describe('attention twin on a hand-computed case', () => {
  it('one head, two tokens: the second attends to both with softmax weights', () => {
    const s = { batch: 1, seq: 2, heads: 1, kvHeads: 1, headDim: 2 };
    const q = Float32Array.from([1, 0, 0, 2]);
    const k = Float32Array.from([1, 1, 0, 1]);
    const v = Float32Array.from([1, 2, 3, 4]);
    const o = new Float32Array(4);
    const p = new Float32Array(4);
    attentionForwardReference(s, q, k, v, o, p);
    // token 0 sees itself only; token 1: scores (q1·k0, q1·k1)/√2 = (2, 2)/√2 → equal weights
    expect([...p]).toEqual([1, 0, 0.5, 0.5]);
    expect([...o]).toEqual([1, 2, 2, 3]);
  });
});

describe('gemm twin on a hand-computed case', () => {
  it('[[1,2],[3,4]] · [[5,6],[7,8]] plus an accumulated C', () => {
    const c = Float32Array.from([1, 1, 1, 1]);
    gemmReference({ a: Float32Array.from([1, 2, 3, 4]), aOffset: 0, sam: 2, sak: 1, b: Float32Array.from([5, 6, 7, 8]), bOffset: 0, ldb: 2, c, cOffset: 0, ldc: 2, m: 2, n: 2, k: 2, accumulate: true });
    expect([...c]).toEqual([20, 23, 44, 51]);
  });
});
