import { openCheckpoint, readCheckpointTensorF32 } from '../../src/tensors/checkpoint.js';

/**
 * A plain TypeScript forward pass of the Llama / Mistral / Qwen2 decoder on Hugging Face
 * weights, in f64 arithmetic: the independent reference that GGUF conversion + llama.cpp must
 * reproduce. It follows transformers' modeling code: RMSNorm, RoPE in the rotate-half
 * convention on the checkpoint's own (unpermuted) q/k weights, grouped-query attention with a
 * causal mask, SwiGLU MLP, optional q/k/v biases, tied or separate output head.
 */

export interface ReferenceConfig {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsEps: number;
  readonly ropeTheta: number;
  readonly vocabSize: number;
  readonly tied: boolean;
}

export interface ReferenceModel {
  readonly config: ReferenceConfig;
  /** Tensor values by HF name (row-major, f32), or undefined when absent (e.g. biases). */
  readonly weight: (name: string) => Float32Array | undefined;
}

/** Loads every tensor of an HF checkpoint directory into memory (tests use tiny models only). */
export async function loadReferenceModel(dir: string): Promise<ReferenceModel> {
  const ckpt = await openCheckpoint(dir);
  const raw = ckpt.config.raw as Record<string, unknown>;
  const num = (k: string, d?: number): number => {
    const v = raw[k] ?? d;
    if (typeof v !== 'number') throw new Error(`${dir}/config.json: ${k} missing`);
    return v;
  };
  const hiddenSize = num('hidden_size');
  const numHeads = num('num_attention_heads');
  const weights = new Map<string, Float32Array>();
  for (const t of ckpt.tensors.values()) {
    weights.set(t.name, await readCheckpointTensorF32(t));
  }
  const embed = ckpt.tensors.get('model.embed_tokens.weight');
  if (embed === undefined) throw new Error(`${dir}: no embeddings`);
  return {
    config: {
      hiddenSize,
      intermediateSize: num('intermediate_size'),
      numLayers: num('num_hidden_layers'),
      numHeads,
      numKvHeads: num('num_key_value_heads', numHeads),
      headDim: typeof raw.head_dim === 'number' ? raw.head_dim : hiddenSize / numHeads,
      rmsEps: num('rms_norm_eps'),
      ropeTheta: num('rope_theta', 10000),
      vocabSize: embed.shape[0] ?? 0,
      tied: ckpt.tiedEmbeddings,
    },
    weight: (name) => weights.get(name),
  };
}

function need(model: ReferenceModel, name: string): Float32Array {
  const w = model.weight(name);
  if (w === undefined) throw new Error(`reference forward: missing tensor ${name}`);
  return w;
}

/** y = W x (+ b) for W of shape [rows, cols] row-major. */
function matvec(w: Float32Array, x: Float64Array, rows: number, cols: number, bias?: Float32Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = bias?.[r] ?? 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += (w[base + c] ?? 0) * (x[c] ?? 0);
    y[r] = s;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * (w[i] ?? 0));
}

/** Rotate-half RoPE on each head of `v` (heads × headDim) at position `pos`, in place. */
function rope(v: Float64Array, heads: number, headDim: number, pos: number, theta: number): void {
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.pow(theta, (-2 * i) / headDim);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = v[base + i] ?? 0;
      const b = v[base + i + half] ?? 0;
      v[base + i] = a * cos - b * sin;
      v[base + i + half] = b * cos + a * sin;
    }
  }
}

/** Next-token logits after each position of `tokens` (no BOS added). */
export function referenceLogits(model: ReferenceModel, tokens: readonly number[]): Float64Array[] {
  const c = model.config;
  const E = c.hiddenSize;
  const D = c.headDim;
  const group = c.numHeads / c.numKvHeads;
  const embed = need(model, 'model.embed_tokens.weight');
  const head = c.tied ? embed : need(model, 'lm_head.weight');
  const keys: Float64Array[][] = Array.from({ length: c.numLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: c.numLayers }, () => []);
  const out: Float64Array[] = [];
  tokens.forEach((token, pos) => {
    let h = Float64Array.from(embed.subarray(token * E, (token + 1) * E));
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}`;
      const x = rmsNorm(h, need(model, `${p}.input_layernorm.weight`), c.rmsEps);
      const q = matvec(need(model, `${p}.self_attn.q_proj.weight`), x, c.numHeads * D, E, model.weight(`${p}.self_attn.q_proj.bias`));
      const k = matvec(need(model, `${p}.self_attn.k_proj.weight`), x, c.numKvHeads * D, E, model.weight(`${p}.self_attn.k_proj.bias`));
      const v = matvec(need(model, `${p}.self_attn.v_proj.weight`), x, c.numKvHeads * D, E, model.weight(`${p}.self_attn.v_proj.bias`));
      rope(q, c.numHeads, D, pos, c.ropeTheta);
      rope(k, c.numKvHeads, D, pos, c.ropeTheta);
      (keys[l] ?? []).push(k);
      (values[l] ?? []).push(v);
      const attn = new Float64Array(c.numHeads * D);
      for (let hq = 0; hq < c.numHeads; hq++) {
        const kvh = Math.floor(hq / group);
        const scores = (keys[l] ?? []).map((kk) => {
          let s = 0;
          for (let d = 0; d < D; d++) s += (q[hq * D + d] ?? 0) * (kk[kvh * D + d] ?? 0);
          return s / Math.sqrt(D);
        });
        const max = Math.max(...scores);
        const weights = scores.map((s) => Math.exp(s - max));
        const total = weights.reduce((a, b) => a + b, 0);
        (values[l] ?? []).forEach((vv, t) => {
          const wgt = (weights[t] ?? 0) / total;
          for (let d = 0; d < D; d++) attn[hq * D + d] = (attn[hq * D + d] ?? 0) + wgt * (vv[kvh * D + d] ?? 0);
        });
      }
      const o = matvec(need(model, `${p}.self_attn.o_proj.weight`), attn, E, c.numHeads * D);
      h = h.map((a, i) => a + (o[i] ?? 0));
      const y = rmsNorm(h, need(model, `${p}.post_attention_layernorm.weight`), c.rmsEps);
      const gate = matvec(need(model, `${p}.mlp.gate_proj.weight`), y, c.intermediateSize, E);
      const up = matvec(need(model, `${p}.mlp.up_proj.weight`), y, c.intermediateSize, E);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * (up[i] ?? 0));
      const down = matvec(need(model, `${p}.mlp.down_proj.weight`), act, E, c.intermediateSize);
      h = h.map((a, i) => a + (down[i] ?? 0));
    }
    const final = rmsNorm(h, need(model, 'model.norm.weight'), c.rmsEps);
    out.push(matvec(head, final, c.vocabSize, E));
  });
  return out;
}
