/**
 * The operations of a Llama decoder, each a forward computation plus the backward step it records
 * on the tape. Shapes follow transformers' LlamaForCausalLM: activations are [tokens, features],
 * projection weights [out, in]. Sums over many terms are taken in f64 and rounded once.
 */
import type { AttentionShape } from './attention.js';
import { logSumExp } from './elementwise.js';
import { Tape, Tensor } from './tape.js';

function output(tape: Tape, rows: number, cols: number, ...inputs: readonly Tensor[]): Tensor {
  return new Tensor(tape.alloc(rows * cols), rows, cols, tape.tracks(...inputs), { alloc: (n) => tape.alloc(n) });
}

/** Rows `tokens` of `table` ([vocab, hidden]). */
export function embedding(tape: Tape, table: Tensor, tokens: Int32Array): Tensor {
  const E = table.cols;
  const y = output(tape, tokens.length, E, table);
  tokens.forEach((t, n) => {
    if (!(t >= 0 && t < table.rows)) throw new RangeError(`embedding: token id ${t} at position ${n} is outside the vocabulary of ${table.rows}`);
    y.data.set(table.data.subarray(t * E, (t + 1) * E), n * E);
  });
  if (y.requiresGrad) {
    tape.record(() => {
      const g = table.grad;
      const dy = y.grad;
      tokens.forEach((t, n) => {
        for (let e = 0; e < E; e++) g[t * E + e] = (g[t * E + e] ?? 0) + (dy[n * E + e] ?? 0);
      });
    });
  }
  return y;
}

/** x · Wᵀ for x [n, in] and W [out, in]. */
export function linear(tape: Tape, x: Tensor, w: Tensor): Tensor {
  if (x.cols !== w.cols) throw new RangeError(`linear: input has ${x.cols} features, weight expects ${w.cols}`);
  const N = x.rows;
  const K = x.cols;
  const O = w.rows;
  const y = output(tape, N, O, x, w);
  // Wᵀ [in, out], so that the kernel runs along contiguous output columns.
  const wt = tape.alloc(K * O);
  for (let o = 0; o < O; o++) for (let k = 0; k < K; k++) wt[k * O + o] = w.data[o * K + k] ?? 0;
  tape.kernels.gemm({ a: x.data, aOffset: 0, sam: K, sak: 1, b: wt, bOffset: 0, ldb: O, c: y.data, cOffset: 0, ldc: O, m: N, n: O, k: K, accumulate: false }, tape.threads);
  if (y.requiresGrad) {
    tape.record(() => {
      const dy = y.grad;
      if (x.requiresGrad) {
        // dx += dy · W
        tape.kernels.gemm({ a: dy, aOffset: 0, sam: O, sak: 1, b: w.data, bOffset: 0, ldb: K, c: x.grad, cOffset: 0, ldc: K, m: N, n: K, k: O, accumulate: true }, tape.threads);
      }
      if (w.requiresGrad) {
        // dW += dyᵀ · x, summed over tokens in order; a masked fine-tune's weight only where its mask may be 1
        const regions = w.gradRegions ?? [{ row0: 0, row1: O, col0: 0, col1: K }];
        for (const g of regions) {
          tape.kernels.gemm({ a: dy, aOffset: g.row0, sam: 1, sak: O, b: x.data, bOffset: g.col0, ldb: K, c: w.grad, cOffset: g.row0 * K + g.col0, ldc: K, m: g.row1 - g.row0, n: g.col1 - g.col0, k: N, accumulate: true }, tape.threads);
        }
      }
    });
  }
  return y;
}

/** x · rsqrt(mean(x²) + eps) · w per row (LlamaRMSNorm, in f32 with an f64 mean). */
export function rmsNorm(tape: Tape, x: Tensor, w: Tensor, eps: number): Tensor {
  const N = x.rows;
  const E = x.cols;
  if (w.data.length !== E) throw new RangeError(`rmsNorm: weight of ${w.data.length} for ${E} features`);
  const y = output(tape, N, E, x, w);
  const inv = tape.alloc(N);
  tape.kernels.rmsNormForward(x.data, w.data, y.data, inv, N, E, eps, tape.threads);
  if (y.requiresGrad) {
    tape.record(() => tape.kernels.rmsNormBackward(x.data, w.data, inv, y.grad, x.requiresGrad ? x.grad : null, w.requiresGrad ? w.grad : null, N, E, tape.threads));
  }
  return y;
}

/** cos/sin of position · θ^(−2i/d) for positions [0, seq) and i < d/2, as transformers computes them in f32. */
export function ropeTables(seq: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(seq * half);
  const sin = new Float32Array(seq * half);
  for (let i = 0; i < half; i++) {
    const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
    for (let t = 0; t < seq; t++) {
      const angle = Math.fround(t * invFreq);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** Rotate-half RoPE on each head of x [batch·seq, heads·headDim]; token n sits at position n mod seq. */
export function rope(tape: Tape, x: Tensor, seq: number, headDim: number, tables: { cos: Float32Array; sin: Float32Array }): Tensor {
  const y = output(tape, x.rows, x.cols, x);
  tape.kernels.rope(x.data, y.data, tables.cos, tables.sin, x.rows, x.cols, headDim, seq, 1, false, tape.threads);
  // The rotation's transpose is the rotation by −angle.
  if (y.requiresGrad) tape.record(() => tape.kernels.rope(y.grad, x.grad, tables.cos, tables.sin, x.rows, x.cols, headDim, seq, -1, true, tape.threads));
  return y;
}

/** Causal grouped-query attention; q [n, heads·d], k and v [n, kvHeads·d]. */
export function attention(tape: Tape, q: Tensor, k: Tensor, v: Tensor, shape: AttentionShape): Tensor {
  const o = output(tape, q.rows, q.cols, q, k, v);
  const p = tape.alloc(shape.batch * shape.heads * shape.seq * shape.seq);
  tape.kernels.attentionForward(shape, q.data, k.data, v.data, o.data, p, tape.threads);
  if (o.requiresGrad) {
    tape.record(() => tape.kernels.attentionBackward(shape, q.data, k.data, v.data, p, o.grad, q.grad, k.grad, v.grad, tape.threads));
  }
  return o;
}

/** silu(gate) · up, elementwise (the SwiGLU of LlamaMLP). */
export function swiglu(tape: Tape, gate: Tensor, up: Tensor): Tensor {
  const y = output(tape, gate.rows, gate.cols, gate, up);
  const n = y.data.length;
  const sig = tape.alloc(n);
  tape.kernels.swigluForward(gate.data, up.data, y.data, sig, n, tape.threads);
  if (y.requiresGrad) tape.record(() => tape.kernels.swigluBackward(gate.data, up.data, sig, y.grad, gate.grad, up.grad, n, tape.threads));
  return y;
}

/** a + b (the residual connections). */
export function add(tape: Tape, a: Tensor, b: Tensor): Tensor {
  const y = output(tape, a.rows, a.cols, a, b);
  for (let i = 0; i < y.data.length; i++) y.data[i] = (a.data[i] ?? 0) + (b.data[i] ?? 0);
  if (y.requiresGrad) {
    tape.record(() => {
      const dy = y.grad;
      for (const t of [a, b]) {
        if (!t.requiresGrad) continue;
        const g = t.grad;
        for (let i = 0; i < g.length; i++) g[i] = (g[i] ?? 0) + (dy[i] ?? 0);
      }
    });
  }
  return y;
}

/**
 * Mean cross-entropy of `logits` [n, vocab] against `targets` over the positions where mask is 1
 * (the value is in f64). Seeds its own backward: call tape.backward() after it. A row listed in
 * `soft` is scored against that distribution over the vocabulary instead of its target id
 * (−Σ p·log softmax, gradient softmax − p): distillation, e.g. toward a frozen model's own
 * predictions, whose gradient is zero where the model already predicts them.
 */
export function maskedCrossEntropy(tape: Tape, logits: Tensor, targets: Int32Array, mask: Uint8Array, soft?: ReadonlyMap<number, Float32Array>): number {
  const N = logits.rows;
  const V = logits.cols;
  if (targets.length !== N || mask.length !== N) throw new RangeError(`cross-entropy: ${targets.length} targets and ${mask.length} mask entries for ${N} rows`);
  let count = 0;
  for (let n = 0; n < N; n++) {
    if (mask[n] !== 1) continue;
    count++;
    if (soft?.has(n) === true) continue;
    const t = targets[n] ?? -1;
    if (!(t >= 0 && t < V)) throw new RangeError(`cross-entropy: target id ${t} at position ${n} is outside the vocabulary of ${V}`);
  }
  if (count === 0) return 0;
  const rowLoss = new Float64Array(N);
  const hardMask = soft === undefined || soft.size === 0 ? mask : Uint8Array.from(mask, (m, n) => (soft.has(n) ? 0 : m));
  const dlogits = tape.tracks(logits) ? logits.grad : null;
  tape.kernels.crossEntropy(logits.data, targets, hardMask, rowLoss, dlogits, 1 / count, N, V, tape.threads);
  let total = 0;
  for (const l of rowLoss) total += l;
  for (const [n, p] of soft ?? []) {
    if (mask[n] !== 1) continue;
    if (p.length !== V) throw new RangeError(`cross-entropy: the soft target of position ${n} has ${p.length} entries for a vocabulary of ${V}`);
    const z = logits.data.subarray(n * V, (n + 1) * V);
    const logSum = logSumExp(z);
    let loss = 0;
    for (let v = 0; v < V; v++) {
      const pv = p[v] ?? 0;
      if (pv > 0) loss -= pv * ((z[v] ?? 0) - logSum);
      if (dlogits !== null) dlogits[n * V + v] = (dlogits[n * V + v] ?? 0) + (Math.exp((z[v] ?? 0) - logSum) - pv) / count;
    }
    total += loss;
  }
  return total / count;
}
