/**
 * The Llama decoder as autograd operations: embeddings, then per layer RMSNorm → q/k/v → RoPE →
 * causal GQA attention → o_proj → residual, RMSNorm → SwiGLU MLP → residual, then the final norm
 * and the (tied or separate) output head. With a non-recording tape this is the forward pass.
 */
import { type LlamaTrainConfig, type LlamaWeights, headDimOf, llamaWeightShapes } from './config.js';
import { add, attention, embedding, linear, rmsNorm, rope, ropeTables, swiglu } from './ops.js';
import type { GradRegion } from './grad-regions.js';
import { Tape, Tensor } from './tape.js';

/**
 * The weights as tensors that share their buffers (updates to one are updates to the other).
 * `requiresGrad` says which get gradients; `gradRegions`, where in each they are needed (tape.ts).
 */
export function weightTensors(config: LlamaTrainConfig, weights: LlamaWeights, requiresGrad: boolean | ((name: string) => boolean), gradRegions: (name: string) => readonly GradRegion[] | undefined = () => undefined): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, [rows, cols]] of llamaWeightShapes(config)) {
    const data = weights.get(name);
    if (data === undefined) throw new RangeError(`missing tensor ${name}`);
    const grads = typeof requiresGrad === 'boolean' ? requiresGrad : requiresGrad(name);
    out.set(name, new Tensor(data, rows, cols, grads, { gradRegions: grads ? gradRegions(name) : undefined }));
  }
  return out;
}

const ropeCache = new Map<string, { cos: Float32Array; sin: Float32Array }>();

function tablesFor(seq: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const key = `${seq}/${headDim}/${theta}`;
  let t = ropeCache.get(key);
  if (t === undefined) {
    t = ropeTables(seq, headDim, theta);
    ropeCache.set(key, t);
  }
  return t;
}

/** Logits [batch·seq, vocab] for `tokens` (batch rows of seq ids each; position restarts per row). */
export function llamaLogits(tape: Tape, config: LlamaTrainConfig, w: ReadonlyMap<string, Tensor>, tokens: Int32Array, batch: number, seq: number): Tensor {
  if (tokens.length !== batch * seq) throw new RangeError(`llamaLogits: ${tokens.length} tokens for ${batch} rows of ${seq}`);
  if (seq > config.maxSeqLen) throw new RangeError(`llamaLogits: rows of ${seq} tokens exceed maxSeqLen ${config.maxSeqLen}`);
  const get = (name: string): Tensor => {
    const t = w.get(name);
    if (t === undefined) throw new RangeError(`missing tensor ${name}`);
    return t;
  };
  const D = headDimOf(config);
  const tables = tablesFor(seq, D, config.ropeTheta);
  const shape = { batch, seq, heads: config.numHeads, kvHeads: config.numKvHeads, headDim: D };
  const embed = get('model.embed_tokens.weight');
  let h = embedding(tape, embed, tokens);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    const x = rmsNorm(tape, h, get(`${p}.input_layernorm.weight`), config.rmsEps);
    const q = rope(tape, linear(tape, x, get(`${p}.self_attn.q_proj.weight`)), seq, D, tables);
    const k = rope(tape, linear(tape, x, get(`${p}.self_attn.k_proj.weight`)), seq, D, tables);
    const v = linear(tape, x, get(`${p}.self_attn.v_proj.weight`));
    h = add(tape, h, linear(tape, attention(tape, q, k, v, shape), get(`${p}.self_attn.o_proj.weight`)));
    const m = rmsNorm(tape, h, get(`${p}.post_attention_layernorm.weight`), config.rmsEps);
    const act = swiglu(tape, linear(tape, m, get(`${p}.mlp.gate_proj.weight`)), linear(tape, m, get(`${p}.mlp.up_proj.weight`)));
    h = add(tape, h, linear(tape, act, get(`${p}.mlp.down_proj.weight`)));
  }
  const final = rmsNorm(tape, h, get('model.norm.weight'), config.rmsEps);
  return linear(tape, final, config.tieEmbeddings ? embed : get('lm_head.weight'));
}
