/**
 * The small built-in example family `npm run demo` searches over until the trained demo family
 * lands: a tiny Llama-layout `base`, two fine-tunes (`math-ft`, `chat-ft` = base + seeded task
 * vectors) and a hidden ideal merge `target` (base + a·δ_math + b·δ_chat, with coefficients that
 * change with depth and tensor class, so per-group genes matter). evaluators/example-closeness.mjs
 * scores a merge by its distance to the target.
 *
 *   node dist/src/example/make-example.js [--out DIR] [--seed N]     (default runs/example-models)
 *
 * Deterministic (the bytes depend only on the seed) and idempotent: when DIR/example.json already
 * records the same seed and format and every file is there, nothing is written.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../tensors/atomic-file.js';
import { encodeFromF32 } from '../tensors/dtype.js';
import { writeSafetensors, type TensorWithData } from '../tensors/safetensors-writer.js';

/** Bump when the family's contents change, so old folders are rewritten. */
const FORMAT = 1;

export const EXAMPLE_DIMENSIONS = { layers: 8, hidden: 64, intermediate: 128, vocab: 128, heads: 4 } as const;

/** The tensor classes the example space's `filters` split genes by; 'other' is the catch-all. */
export type ExampleTensorClass = 'self_attn' | 'mlp' | 'other';

/**
 * The hidden ideal: per class, per group of two layers (shallow → deep), the weights (a, b) of
 * the math and chat task vectors. Embeddings and final norm/lm_head use OTHER_COEFFICIENTS.
 */
export const TARGET_COEFFICIENTS: Readonly<Record<'self_attn' | 'mlp', readonly (readonly [number, number])[]>> = {
  self_attn: [
    [0.9, 0.1],
    [0.7, 0.3],
    [0.3, 0.6],
    [0.1, 0.9],
  ],
  mlp: [
    [0.2, 0.8],
    [0.8, 0.2],
    [0.9, 0.5],
    [0.4, 0.9],
  ],
};
const OTHER_COEFFICIENTS: readonly [number, number] = [0.5, 0.5];
const LAYERS_PER_GROUP = 2;

interface ExampleTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly kind: 'matrix' | 'norm';
  readonly cls: ExampleTensorClass;
  /** Layer index, or undefined for embeddings / final norm / lm_head. */
  readonly layer: number | undefined;
}

/** The tensors of the example model, in Hugging Face Llama naming. */
export function exampleTensors(): ExampleTensor[] {
  const { layers, hidden, intermediate, vocab } = EXAMPLE_DIMENSIONS;
  const out: ExampleTensor[] = [{ name: 'model.embed_tokens.weight', shape: [vocab, hidden], kind: 'matrix', cls: 'other', layer: undefined }];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    const t = (name: string, shape: number[], kind: 'matrix' | 'norm', cls: ExampleTensorClass): ExampleTensor => ({ name: `${p}.${name}`, shape, kind, cls, layer: i });
    out.push(
      t('input_layernorm.weight', [hidden], 'norm', 'other'),
      t('self_attn.q_proj.weight', [hidden, hidden], 'matrix', 'self_attn'),
      t('self_attn.k_proj.weight', [hidden, hidden], 'matrix', 'self_attn'),
      t('self_attn.v_proj.weight', [hidden, hidden], 'matrix', 'self_attn'),
      t('self_attn.o_proj.weight', [hidden, hidden], 'matrix', 'self_attn'),
      t('post_attention_layernorm.weight', [hidden], 'norm', 'other'),
      t('mlp.gate_proj.weight', [intermediate, hidden], 'matrix', 'mlp'),
      t('mlp.up_proj.weight', [intermediate, hidden], 'matrix', 'mlp'),
      t('mlp.down_proj.weight', [hidden, intermediate], 'matrix', 'mlp'),
    );
  }
  out.push({ name: 'model.norm.weight', shape: [hidden], kind: 'norm', cls: 'other', layer: undefined });
  out.push({ name: 'lm_head.weight', shape: [vocab, hidden], kind: 'matrix', cls: 'other', layer: undefined });
  return out;
}

/** (a, b) of the target for one tensor. */
export function targetCoefficients(t: Pick<ExampleTensor, 'cls' | 'layer'>): readonly [number, number] {
  if (t.cls === 'other' || t.layer === undefined) return OTHER_COEFFICIENTS;
  return TARGET_COEFFICIENTS[t.cls][Math.floor(t.layer / LAYERS_PER_GROUP)] ?? OTHER_COEFFICIENTS;
}

/** 32-bit FNV-1a: keys each tensor's random stream by its name. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** n uniform values in [-1, 1) from (seed, stream, tensor name): mulberry32, keyed. */
function noise(seed: number, stream: string, name: string, n: number): Float32Array {
  let state = (fnv1a(`${stream}/${name}`) ^ Math.imul(seed | 0, 0x9e3779b9)) >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    out[i] = ((z ^ (z >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** The four models' values of one tensor. Deltas are a tenth of the weights' scale. */
function tensorValues(t: ExampleTensor, seed: number): { base: Float32Array; math: Float32Array; chat: Float32Array; target: Float32Array } {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const scale = t.kind === 'matrix' ? 1 / Math.sqrt(t.shape[t.shape.length - 1] ?? 1) : 0.1;
  const deltaScale = 0.1 * scale;
  const base = noise(seed, 'base', t.name, n);
  const dMath = noise(seed, 'math', t.name, n);
  const dChat = noise(seed, 'chat', t.name, n);
  const [a, b] = targetCoefficients(t);
  const math = new Float32Array(n);
  const chat = new Float32Array(n);
  const target = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = (t.kind === 'norm' ? 1 : 0) + scale * (base[i] ?? 0);
    const dm = deltaScale * (dMath[i] ?? 0);
    const dc = deltaScale * (dChat[i] ?? 0);
    base[i] = x;
    math[i] = x + dm;
    chat[i] = x + dc;
    target[i] = x + a * dm + b * dc;
  }
  return { base, math, chat, target };
}

function configJson(): string {
  const d = EXAMPLE_DIMENSIONS;
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: d.hidden,
    intermediate_size: d.intermediate,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.heads,
    vocab_size: d.vocab,
    hidden_act: 'silu',
    max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export const EXAMPLE_MODELS = ['base', 'math-ft', 'chat-ft'] as const;

/** Files written under the output folder (example.json, the manifest, is written last). */
export function exampleFiles(): string[] {
  return [...EXAMPLE_MODELS.flatMap((m) => [`${m}/config.json`, `${m}/model.safetensors`]), 'target.safetensors', 'target.json'];
}

function isCurrent(outDir: string, seed: number): boolean {
  const manifest = path.join(outDir, 'example.json');
  if (!existsSync(manifest)) return false;
  try {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as { seed?: unknown; format?: unknown };
    return m.seed === seed && m.format === FORMAT && exampleFiles().every((f) => existsSync(path.join(outDir, f)));
  } catch {
    return false;
  }
}

export interface MakeExampleResult {
  readonly outDir: string;
  /** false when the folder already held this seed's family. */
  readonly written: boolean;
}

/** Writes the example family into `outDir` (created if needed) unless it is already there. */
export async function makeExample(outDir: string, seed = 1): Promise<MakeExampleResult> {
  if (isCurrent(outDir, seed)) return { outDir, written: false };
  const tensors = exampleTensors();
  const files: Record<'base' | 'math-ft' | 'chat-ft' | 'target', TensorWithData[]> = { base: [], 'math-ft': [], 'chat-ft': [], target: [] };
  for (const t of tensors) {
    const v = tensorValues(t, seed);
    const entry = (values: Float32Array): TensorWithData => ({ name: t.name, dtype: 'F32', shape: t.shape, data: encodeFromF32('F32', values) });
    files.base.push(entry(v.base));
    files['math-ft'].push(entry(v.math));
    files['chat-ft'].push(entry(v.chat));
    files.target.push(entry(v.target));
  }
  for (const m of EXAMPLE_MODELS) {
    await mkdir(path.join(outDir, m), { recursive: true });
    await writeFileAtomic(path.join(outDir, m, 'config.json'), configJson());
    await writeSafetensors(path.join(outDir, m, 'model.safetensors'), files[m], { format: 'pt' });
  }
  await writeSafetensors(path.join(outDir, 'target.safetensors'), files.target, { format: 'pt' });
  const described = {
    about: 'The hidden ideal merge: target = base + a·(math-ft − base) + b·(chat-ft − base), per layer group of 2.',
    self_attn: TARGET_COEFFICIENTS.self_attn.map(([a, b], g) => ({ layers: [g * LAYERS_PER_GROUP, g * LAYERS_PER_GROUP + 1], a, b })),
    mlp: TARGET_COEFFICIENTS.mlp.map(([a, b], g) => ({ layers: [g * LAYERS_PER_GROUP, g * LAYERS_PER_GROUP + 1], a, b })),
    other: { a: OTHER_COEFFICIENTS[0], b: OTHER_COEFFICIENTS[1] },
  };
  await writeFileAtomic(path.join(outDir, 'target.json'), `${JSON.stringify(described, null, 2)}\n`);
  await writeFileAtomic(path.join(outDir, 'example.json'), `${JSON.stringify({ format: FORMAT, seed }, null, 2)}\n`);
  return { outDir, written: true };
}

/** Parses `[--out DIR] [--seed N]`. */
export function parseMakeExampleArgs(args: readonly string[]): { outDir: string; seed: number } {
  let outDir = path.join('runs', 'example-models');
  let seed = 1;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const v = args[i + 1];
    if (a === '--out' && v !== undefined) {
      outDir = v;
      i++;
    } else if (a === '--seed' && v !== undefined && /^\d+$/.test(v)) {
      seed = Number(v);
      i++;
    } else {
      throw new UsageError(`make-example: unexpected argument '${a ?? ''}' (usage: make-example [--out DIR] [--seed N])`);
    }
  }
  return { outDir, seed };
}

async function cli(): Promise<void> {
  try {
    const { outDir, seed } = parseMakeExampleArgs(process.argv.slice(2));
    const r = await makeExample(outDir, seed);
    process.stderr.write(r.written ? `example: wrote base, math-ft, chat-ft and target to ${outDir}\n` : `example: ${outDir} is up to date\n`);
  } catch (err) {
    process.stderr.write(`make-example: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await cli();
