import { describe, expect, it } from 'vitest';
import { attentionBackwardReference, attentionForwardReference } from '../../src/train/attention.js';
import {
  crossEntropyReference,
  rmsNormBackwardReference,
  rmsNormForwardReference,
  ropeReference,
  swigluBackwardReference,
  swigluForwardReference,
} from '../../src/train/elementwise.js';
import { gemmReference } from '../../src/train/gemm.js';
import { ropeTables } from '../../src/train/ops.js';
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

describe.runIf(kernels.native)('native per-row ops against their TypeScript twins', () => {
  const worstDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
    let w = 0;
    for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
    return w;
  };
  const n = 70;
  const e = 24;

  it('rmsNorm forward and backward: the twin’s bytes, for any thread count', () => {
    const x = seeded(n * e, 11);
    const w = seeded(e, 12);
    const dy = seeded(n * e, 13);
    const run = (threads: number | 'ts'): Float32Array[] => {
      const y = new Float32Array(n * e);
      const inv = new Float32Array(n);
      const dx = seeded(n * e, 14);
      const dw = seeded(e, 15);
      if (threads === 'ts') {
        rmsNormForwardReference(x, w, y, inv, n, e, 1e-5);
        rmsNormBackwardReference(x, w, inv, dy, dx, dw, n, e);
      } else {
        kernels.rmsNormForward(x, w, y, inv, n, e, 1e-5, threads);
        kernels.rmsNormBackward(x, w, inv, dy, dx, dw, n, e, threads);
      }
      return [y, inv, dx, dw];
    };
    const ts = run('ts');
    for (const threads of [1, 3]) run(threads).forEach((v, i) => expect(same(v, ts[i] ?? new Float32Array(0)), `output ${i}, threads ${threads}`).toBe(true));
  });

  it('rope forward and inverse: the twin’s bytes; the inverse undoes the rotation', () => {
    const seq = 9;
    const tables = ropeTables(seq, 8, 10000);
    const x = seeded(n * 32, 21);
    const want = new Float32Array(x.length);
    ropeReference(x, want, tables.cos, tables.sin, n, 32, 8, seq, 1, false);
    for (const threads of [1, 3]) {
      const got = new Float32Array(x.length);
      kernels.rope(x, got, tables.cos, tables.sin, n, 32, 8, seq, 1, false, threads);
      expect(same(got, want), `threads ${threads}`).toBe(true);
      const back = new Float32Array(x.length);
      kernels.rope(got, back, tables.cos, tables.sin, n, 32, 8, seq, -1, true, threads);
      expect(worstDiff(back, x)).toBeLessThan(1e-6);
    }
  });

  it('swiglu and cross-entropy agree with the twins to float precision and do not depend on threads', () => {
    const count = n * 300;
    const gate = seeded(count, 31).map((v) => v * 6);
    const up = seeded(count, 32);
    const dy = seeded(count, 33);
    const swi = (threads: number | 'ts'): Float32Array[] => {
      const y = new Float32Array(count);
      const sig = new Float32Array(count);
      const dg = seeded(count, 34);
      const du = seeded(count, 35);
      if (threads === 'ts') {
        swigluForwardReference(gate, up, y, sig, count);
        swigluBackwardReference(gate, up, sig, dy, dg, du, count);
      } else {
        kernels.swigluForward(gate, up, y, sig, count, threads);
        kernels.swigluBackward(gate, up, sig, dy, dg, du, count, threads);
      }
      return [y, sig, dg, du];
    };
    const ts = swi('ts');
    const one = swi(1);
    swi(3).forEach((v, i) => expect(same(v, one[i] ?? new Float32Array(0)), `swiglu output ${i}`).toBe(true));
    one.forEach((v, i) => expect(worstDiff(v, ts[i] ?? []), `swiglu output ${i}`).toBeLessThan(1e-6));

    const v = 50;
    const logits = seeded(n * v, 41).map((x) => x * 8);
    const targets = Int32Array.from({ length: n }, (_, i) => (i * 7) % v);
    const mask = Uint8Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 1));
    const ce = (threads: number | 'ts'): [Float64Array, Float32Array] => {
      const rows = new Float64Array(n);
      const d = seeded(n * v, 42);
      if (threads === 'ts') crossEntropyReference(logits, targets, mask, rows, d, 0.25, n, v);
      else kernels.crossEntropy(logits, targets, mask, rows, d, 0.25, n, v, threads);
      return [rows, d];
    };
    const [tsRows, tsGrad] = ce('ts');
    const [rows1, grad1] = ce(1);
    const [rows3, grad3] = ce(3);
    expect([...rows3]).toEqual([...rows1]);
    expect(same(grad3, grad1)).toBe(true);
    expect(worstDiff(rows1, tsRows)).toBeLessThan(1e-12);
    expect(worstDiff(grad1, tsGrad)).toBeLessThan(1e-6);
    expect(rows1[0]).toBe(0);
    expect(() => kernels.crossEntropy(logits, Int32Array.from(targets, () => v), mask, new Float64Array(n), null, 1, n, v, 1)).toThrow(/target id 50 at position 1 is outside the vocabulary of 50/);
  });
});

describe('per-row twins on hand-computed cases', () => {
  it('rmsNorm of (3, 4): rms = √12.5, then the weight', () => {
    const y = new Float32Array(2);
    const inv = new Float32Array(1);
    rmsNormForwardReference(Float32Array.from([3, 4]), Float32Array.from([1, 2]), y, inv, 1, 2, 0);
    expect(inv[0]).toBeCloseTo(1 / Math.sqrt(12.5), 7);
    expect(y[0]).toBeCloseTo(3 / Math.sqrt(12.5), 6);
    expect(y[1]).toBeCloseTo(8 / Math.sqrt(12.5), 6);
  });
  it('cross-entropy of uniform logits is ln(vocab); its gradient is softmax − onehot', () => {
    const rows = new Float64Array(1);
    const d = new Float32Array(4);
    crossEntropyReference(new Float32Array(4), Int32Array.from([2]), Uint8Array.from([1]), rows, d, 1, 1, 4);
    expect(rows[0]).toBeCloseTo(Math.log(4), 12);
    expect([...d]).toEqual([0.25, 0.25, -0.75, 0.25]);
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
