/**
 * Synthetic Llama-layout checkpoints for `npm run bench -- merge`: a random bf16 base and
 * fine-tunes that differ from it by a few low mantissa bits per element (small deltas of random
 * sign, proportional to the weight). Generated with memcpy-speed loops, written once into
 * os.tmpdir() and reused by later runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SafetensorsWriter } from '../src/tensors/safetensors-writer.js';
import type { PlannedTensor } from '../src/tensors/safetensors-writer.js';

export interface BenchModelShape {
  readonly hidden: number;
  readonly intermediate: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocab: number;
  readonly layers: number;
}

/** TinyLlama's widths (hidden 2048, 32 heads, 4 KV heads, vocab 32000) at ≥ 1 GB; narrower below. */
export function shapeForSize(bytes: number): BenchModelShape {
  const scale = Math.min(1, Math.sqrt(bytes / 1e9));
  const hidden = Math.max(512, Math.round((2048 * scale) / 512) * 512);
  const heads = hidden / 64;
  const kvHeads = Math.max(1, heads / 8);
  const intermediate = Math.round((hidden * 2.75) / 64) * 64;
  const vocab = 32000;
  const perLayer = 2 * hidden * hidden + 2 * kvHeads * 64 * hidden + 3 * intermediate * hidden + 2 * hidden;
  const fixed = 2 * vocab * hidden + hidden;
  const layers = Math.max(1, Math.round((bytes / 2 - fixed) / perLayer));
  return { hidden, intermediate, heads, kvHeads, vocab, layers };
}

export function benchTensors(s: BenchModelShape): PlannedTensor[] {
  const kv = s.kvHeads * (s.hidden / s.heads);
  const t: PlannedTensor[] = [{ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [s.vocab, s.hidden] }];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    t.push(
      { name: `${p}.input_layernorm.weight`, dtype: 'BF16', shape: [s.hidden] },
      { name: `${p}.self_attn.q_proj.weight`, dtype: 'BF16', shape: [s.hidden, s.hidden] },
      { name: `${p}.self_attn.k_proj.weight`, dtype: 'BF16', shape: [kv, s.hidden] },
      { name: `${p}.self_attn.v_proj.weight`, dtype: 'BF16', shape: [kv, s.hidden] },
      { name: `${p}.self_attn.o_proj.weight`, dtype: 'BF16', shape: [s.hidden, s.hidden] },
      { name: `${p}.post_attention_layernorm.weight`, dtype: 'BF16', shape: [s.hidden] },
      { name: `${p}.mlp.gate_proj.weight`, dtype: 'BF16', shape: [s.intermediate, s.hidden] },
      { name: `${p}.mlp.up_proj.weight`, dtype: 'BF16', shape: [s.intermediate, s.hidden] },
      { name: `${p}.mlp.down_proj.weight`, dtype: 'BF16', shape: [s.hidden, s.intermediate] },
    );
  }
  t.push({ name: 'model.norm.weight', dtype: 'BF16', shape: [s.hidden] }, { name: 'lm_head.weight', dtype: 'BF16', shape: [s.vocab, s.hidden] });
  return t;
}

function hfConfig(s: BenchModelShape): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    num_hidden_layers: s.layers,
    vocab_size: s.vocab,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 2048,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
  };
}

/** xorshift32: fast and good enough for synthetic weights. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const TABLE = 1 << 20;

/** bf16 bit patterns of N(mean, sd) values (Irwin–Hall approximation), TABLE + 1 of them. */
function valueTable(seed: number, mean: number, sd: number): Uint16Array {
  const next = xorshift(seed);
  const f = new Float32Array(TABLE + 1);
  for (let i = 0; i < f.length; i++) {
    let s = 0;
    for (let k = 0; k < 4; k++) s += next() / 2 ** 32;
    f[i] = mean + sd * (s - 2) * Math.sqrt(3);
  }
  const u32 = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = (u32[i] ?? 0) >>> 16;
  return out;
}

/** Fills `dst` with table values from a tensor-specific offset (cyclic copy). */
function fillFromTable(dst: Uint16Array, table: Uint16Array, offset: number): void {
  let o = offset % TABLE;
  for (let i = 0; i < dst.length; ) {
    const n = Math.min(dst.length - i, TABLE - o);
    dst.set(table.subarray(o, o + n), i);
    i += n;
    o = 0;
  }
}

/** XORs 0–7 into the low 3 mantissa bits of each bf16: a relative change below ~6%, sign random. */
function perturb(dst: Uint16Array, noise: Uint32Array, offset: number): void {
  const pairs = new Uint32Array(dst.buffer, dst.byteOffset, dst.length >>> 1);
  let o = offset % noise.length;
  for (let i = 0; i < pairs.length; i++) {
    pairs[i] = (pairs[i] ?? 0) ^ (noise[o] ?? 0);
    if (++o === noise.length) o = 0;
  }
}

function tensorKey(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export interface BenchModels {
  readonly dir: string;
  readonly base: string;
  readonly fineTunes: readonly string[];
  readonly shape: BenchModelShape;
  /** Bytes of one model's tensor data. */
  readonly modelBytes: number;
  readonly generatedSeconds: number;
}

/** The base and `fineTunes` fine-tunes for `sizeBytes`, generated unless a complete set is cached in `dir`. */
export async function ensureBenchModels(dir: string, sizeBytes: number, fineTunes: number): Promise<BenchModels> {
  const shape = shapeForSize(sizeBytes);
  const tensors = benchTensors(shape);
  const modelBytes = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1) * 2, 0);
  const names = ['base', ...Array.from({ length: fineTunes }, (_, i) => `ft${i + 1}`)];
  const stamp = JSON.stringify({ version: 1, shape, names });
  const stampFile = path.join(dir, 'complete.json');
  const t0 = performance.now();
  if (!(fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp)) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const matrix = valueTable(1, 0, 0.02);
    const norm = valueTable(2, 1, 0.05);
    // One buffer for every tensor, so generation leaves no garbage behind to inflate the merges' RSS.
    const scratch = new Uint16Array(Math.max(...tensors.map((t) => t.shape.reduce((a, b) => a * b, 1))));
    for (const [m, name] of names.entries()) {
      const modelDir = path.join(dir, name);
      fs.mkdirSync(modelDir, { recursive: true });
      const noise = new Uint32Array(TABLE);
      const next = xorshift(1000 + m);
      for (let i = 0; i < noise.length; i++) noise[i] = next() & 0x00070007;
      const writer = await SafetensorsWriter.create(path.join(modelDir, 'model.safetensors'), tensors, { format: 'pt' });
      try {
        for (const t of tensors) {
          const data = scratch.subarray(0, t.shape.reduce((a, b) => a * b, 1));
          const key = tensorKey(t.name);
          fillFromTable(data, t.shape.length === 1 ? norm : matrix, key);
          if (m > 0) perturb(data, noise, key >>> 3);
          await writer.writeTensor(t.name, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        }
        await writer.commit();
      } catch (err) {
        await writer.abort();
        throw err;
      }
      fs.writeFileSync(path.join(modelDir, 'config.json'), `${JSON.stringify(hfConfig(shape), null, 2)}\n`);
    }
    fs.writeFileSync(stampFile, stamp);
  }
  return {
    dir,
    base: path.join(dir, 'base'),
    fineTunes: names.slice(1).map((n) => path.join(dir, n)),
    shape,
    modelBytes,
    generatedSeconds: (performance.now() - t0) / 1000,
  };
}
