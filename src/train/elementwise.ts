/**
 * The TypeScript twins of native/elementwise.cc: the per-row work of the Llama ops (RMSNorm, RoPE,
 * SwiGLU, masked cross-entropy), forward and backward. Rows are independent, so the C++ splits
 * them over threads; sums that run across rows (the norm weight's gradient) run over columns in
 * row order instead. Arithmetic: f64 where a value sums many terms, f32 where transformers uses it.
 */

/** y = (x · r) · w with r = 1/√(mean(x²) + eps) per row, saved in inv. x, y: [n, e]. */
export function rmsNormForwardReference(x: Float32Array, w: Float32Array, y: Float32Array, inv: Float32Array, n: number, e: number, eps: number): void {
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < e; j++) ss += (x[i * e + j] ?? 0) * (x[i * e + j] ?? 0);
    const r = Math.fround(1 / Math.sqrt(Math.fround(ss / e) + eps));
    inv[i] = r;
    for (let j = 0; j < e; j++) y[i * e + j] = Math.fround((x[i * e + j] ?? 0) * r) * (w[j] ?? 0);
  }
}

/** Adds the gradients of x (when dx is given) and w (when dw is given) for the output gradient dy. */
export function rmsNormBackwardReference(x: Float32Array, w: Float32Array, inv: Float32Array, dy: Float32Array, dx: Float32Array | null, dw: Float32Array | null, n: number, e: number): void {
  if (dx !== null) {
    for (let i = 0; i < n; i++) {
      const r = inv[i] ?? 0;
      let dot = 0;
      for (let j = 0; j < e; j++) dot += (dy[i * e + j] ?? 0) * (w[j] ?? 0) * (x[i * e + j] ?? 0);
      const c = (dot * r * r * r) / e;
      for (let j = 0; j < e; j++) dx[i * e + j] = (dx[i * e + j] ?? 0) + ((dy[i * e + j] ?? 0) * (w[j] ?? 0) * r - (x[i * e + j] ?? 0) * c);
    }
  }
  if (dw !== null) {
    for (let j = 0; j < e; j++) {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += (dy[i * e + j] ?? 0) * (x[i * e + j] ?? 0) * (inv[i] ?? 0);
      dw[j] = (dw[j] ?? 0) + acc;
    }
  }
}

/**
 * Rotate-half RoPE of each head of x [n, heads·d] at position (row mod seq), from tables
 * cos/sin [seq, d/2]; sign −1 applies the inverse rotation. add: y += instead of y =.
 */
export function ropeReference(x: Float32Array, y: Float32Array, cos: Float32Array, sin: Float32Array, n: number, features: number, headDim: number, seq: number, sign: number, add: boolean): void {
  const half = headDim / 2;
  const heads = features / headDim;
  const fr = Math.fround;
  for (let i = 0; i < n; i++) {
    const t = i % seq;
    for (let h = 0; h < heads; h++) {
      const base = i * features + h * headDim;
      for (let j = 0; j < half; j++) {
        const c = cos[t * half + j] ?? 0;
        const s = fr((sin[t * half + j] ?? 0) * sign);
        const a = x[base + j] ?? 0;
        const b = x[base + j + half] ?? 0;
        const ya = fr(fr(a * c) - fr(b * s));
        const yb = fr(fr(b * c) + fr(a * s));
        y[base + j] = add ? (y[base + j] ?? 0) + ya : ya;
        y[base + j + half] = add ? (y[base + j + half] ?? 0) + yb : yb;
      }
    }
  }
}

/** y = silu(gate) · up, keeping σ(gate) in sig. */
export function swigluForwardReference(gate: Float32Array, up: Float32Array, y: Float32Array, sig: Float32Array, count: number): void {
  for (let i = 0; i < count; i++) {
    const g = gate[i] ?? 0;
    const s = 1 / (1 + Math.exp(-g));
    sig[i] = s;
    y[i] = Math.fround(g * (sig[i] ?? 0)) * (up[i] ?? 0);
  }
}

/** Adds the gradients of gate and up for the output gradient dy. */
export function swigluBackwardReference(gate: Float32Array, up: Float32Array, sig: Float32Array, dy: Float32Array, dgate: Float32Array, dup: Float32Array, count: number): void {
  for (let i = 0; i < count; i++) {
    const g = gate[i] ?? 0;
    const s = sig[i] ?? 0;
    const d = dy[i] ?? 0;
    dgate[i] = (dgate[i] ?? 0) + d * (up[i] ?? 0) * s * (1 + g * (1 - s));
    dup[i] = (dup[i] ?? 0) + d * g * s;
  }
}

/** log Σ exp(z), shifted by max(z) so that no exp overflows (f64). */
export function logSumExp(z: Float32Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (const v of z) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** softmax(z) in f32, through logSumExp. */
export function softmax(z: Float32Array): Float32Array {
  const logZ = logSumExp(z);
  return Float32Array.from(z, (v) => Math.exp(v - logZ));
}

/**
 * Per-row cross-entropy of logits [n, v] against targets where mask is 1: writes each row's loss
 * (0 where masked) to rowLoss and, when dlogits is given, adds (softmax − onehot) · scale to it.
 */
export function crossEntropyReference(logits: Float32Array, targets: Int32Array, mask: Uint8Array, rowLoss: Float64Array, dlogits: Float32Array | null, scale: number, n: number, v: number): void {
  for (let i = 0; i < n; i++) {
    rowLoss[i] = 0;
    if (mask[i] !== 1) continue;
    const row = i * v;
    const t = targets[i] ?? 0;
    const logZ = logSumExp(logits.subarray(row, row + v));
    rowLoss[i] = logZ - (logits[row + t] ?? 0);
    if (dlogits !== null) {
      for (let j = 0; j < v; j++) dlogits[row + j] = (dlogits[row + j] ?? 0) + Math.exp((logits[row + j] ?? 0) - logZ) * scale;
      dlogits[row + t] = (dlogits[row + t] ?? 0) - scale;
    }
  }
}
