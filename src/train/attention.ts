/**
 * The TypeScript twin of native/attention.cc: causal softmax attention over rows of `seq` tokens
 * with grouped-query heads, and its gradient. Same loop order and f32 rounding as the C++; only
 * exp may differ in the last bit (Math.exp vs expf), so the twins agree to float precision.
 */
export interface AttentionShape {
  readonly batch: number;
  readonly seq: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/** q: [batch·seq, heads·headDim]; k, v: [batch·seq, kvHeads·headDim]. Writes o and p [batch, heads, seq, seq]. */
export function attentionForwardReference(s: AttentionShape, q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, p: Float32Array): void {
  const { seq: T, heads: H, headDim: D } = s;
  const group = H / s.kvHeads;
  const qs = H * D;
  const ks = s.kvHeads * D;
  const fr = Math.fround;
  const scale = fr(1 / fr(Math.sqrt(D)));
  for (let task = 0; task < s.batch * H; task++) {
    const b = Math.floor(task / H);
    const h = task % H;
    const kvh = Math.floor(h / group);
    const pb = task * T * T;
    for (let i = 0; i < T; i++) {
      const qi = (b * T + i) * qs + h * D;
      const pi = pb + i * T;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j <= i; j++) {
        const kj = (b * T + j) * ks + kvh * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot = fr(dot + fr((q[qi + d] ?? 0) * (k[kj + d] ?? 0)));
        const sc = fr(dot * scale);
        p[pi + j] = sc;
        if (sc > max) max = sc;
      }
      let sum = 0;
      for (let j = 0; j <= i; j++) {
        const e = fr(Math.exp(fr((p[pi + j] ?? 0) - max)));
        p[pi + j] = e;
        sum = fr(sum + e);
      }
      const inv = fr(1 / sum);
      for (let j = 0; j <= i; j++) p[pi + j] = fr((p[pi + j] ?? 0) * inv);
      p.fill(0, pi + i + 1, pi + T);
      const oi = (b * T + i) * qs + h * D;
      o.fill(0, oi, oi + D);
      for (let j = 0; j <= i; j++) {
        const vj = (b * T + j) * ks + kvh * D;
        const pj = p[pi + j] ?? 0;
        for (let d = 0; d < D; d++) o[oi + d] = (o[oi + d] ?? 0) + fr(pj * (v[vj + d] ?? 0));
      }
    }
  }
}

/** Adds the gradients of q, k and v for the output gradient `dout`, given the forward's p. */
export function attentionBackwardReference(
  s: AttentionShape,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  p: Float32Array,
  dout: Float32Array,
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
): void {
  const { seq: T, heads: H, kvHeads: KV, headDim: D } = s;
  const group = H / KV;
  const qs = H * D;
  const ks = KV * D;
  const fr = Math.fround;
  const scale = fr(1 / fr(Math.sqrt(D)));
  const ds = new Float32Array(T);
  for (let task = 0; task < s.batch * KV; task++) {
    const b = Math.floor(task / KV);
    const kvh = task % KV;
    for (let h = kvh * group; h < (kvh + 1) * group; h++) {
      const pb = (b * H + h) * T * T;
      for (let i = 0; i < T; i++) {
        const pi = pb + i * T;
        const doi = (b * T + i) * qs + h * D;
        let rowdot = 0;
        for (let j = 0; j <= i; j++) {
          const vj = (b * T + j) * ks + kvh * D;
          let dp = 0;
          for (let d = 0; d < D; d++) dp = fr(dp + fr((dout[doi + d] ?? 0) * (v[vj + d] ?? 0)));
          ds[j] = dp;
          rowdot = fr(rowdot + fr((p[pi + j] ?? 0) * dp));
        }
        for (let j = 0; j <= i; j++) ds[j] = fr(fr((p[pi + j] ?? 0) * fr((ds[j] ?? 0) - rowdot)) * scale);
        const qi = (b * T + i) * qs + h * D;
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc = fr(acc + fr((ds[j] ?? 0) * (k[(b * T + j) * ks + kvh * D + d] ?? 0)));
          dq[qi + d] = (dq[qi + d] ?? 0) + acc;
        }
        for (let j = 0; j <= i; j++) {
          const kj = (b * T + j) * ks + kvh * D;
          const dsj = ds[j] ?? 0;
          const pj = p[pi + j] ?? 0;
          for (let d = 0; d < D; d++) {
            dk[kj + d] = (dk[kj + d] ?? 0) + fr(dsj * (q[qi + d] ?? 0));
            dv[kj + d] = (dv[kj + d] ?? 0) + fr(pj * (dout[doi + d] ?? 0));
          }
        }
      }
    }
  }
}
