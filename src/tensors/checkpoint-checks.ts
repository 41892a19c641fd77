import type { CheckpointTensor } from './checkpoint.js';
import type { HfConfig } from './hf-config.js';
import { splitLayerName, tensorRole } from './tensor-role.js';

/**
 * Non-fatal findings about a checkpoint whose files are individually valid: things that make a
 * merge surprising rather than impossible. Pure: config and tensor table in, one line each out.
 */
export function checkpointProblems(config: HfConfig, tensors: ReadonlyMap<string, CheckpointTensor>): string[] {
  return [
    ...headProblems(config, tensors),
    ...layerProblems(config, tensors),
    ...dtypeProblems(config, tensors),
    ...shapeProblems(config, tensors),
  ];
}

/** The first few items of a list and how many more there are. */
export function abbreviate(items: readonly string[], shown = 3): string {
  const head = items.slice(0, shown).join(', ');
  return items.length > shown ? `${head}, … (${items.length - shown} more)` : head;
}

function headProblems(config: HfConfig, tensors: ReadonlyMap<string, CheckpointTensor>): string[] {
  const roles = [...tensors.keys()].map((n) => tensorRole(n).kind);
  const hasEmbedding = roles.includes('embedding');
  const hasLmHead = roles.includes('lm_head');
  const problems: string[] = [];
  if (hasEmbedding && !hasLmHead && !config.tieWordEmbeddings) {
    const how = config.tieWordEmbeddingsExplicit ? 'is false' : `defaults to false for model_type ${config.modelType}`;
    problems.push(`no lm_head tensor although tie_word_embeddings ${how}: the output layer is taken to be the input embeddings`);
  }
  if (!hasEmbedding && config.file !== undefined) problems.push('no token embedding tensor (model.embed_tokens.weight or similar)');
  return problems;
}

/**
 * Layer numbering against num_hidden_layers. Only the layer stack with the most tensors counts
 * as the decoder (a multimodal model's vision tower has its own `layers.N`).
 */
function layerProblems(config: HfConfig, tensors: ReadonlyMap<string, CheckpointTensor>): string[] {
  const stacks = new Map<string, Map<number, Set<string>>>();
  for (const name of tensors.keys()) {
    const parts = splitLayerName(name);
    if (parts === undefined) continue;
    const key = parts.prefix + parts.container.replace(/\d+\.$/, '');
    let layers = stacks.get(key);
    if (layers === undefined) stacks.set(key, (layers = new Map()));
    let rests = layers.get(parts.layer);
    if (rests === undefined) layers.set(parts.layer, (rests = new Set()));
    rests.add(parts.rest);
  }
  let decoder: Map<number, Set<string>> | undefined;
  let decoderSize = -1;
  for (const layers of stacks.values()) {
    let size = 0;
    for (const rests of layers.values()) size += rests.size;
    if (size > decoderSize) {
      decoder = layers;
      decoderSize = size;
    }
  }
  const n = config.numHiddenLayers;
  if (decoder === undefined) return n > 0 ? [`num_hidden_layers is ${n} but no tensor belongs to a numbered layer`] : [];
  const problems: string[] = [];
  const missing: string[] = [];
  for (let i = 0; i < n; i++) if (!decoder.has(i)) missing.push(String(i));
  if (missing.length > 0) problems.push(`layer(s) ${abbreviate(missing, 8)} of num_hidden_layers ${n} have no tensors`);
  const extra = [...decoder.keys()].filter((i) => i >= n).sort((a, b) => a - b).map(String);
  if (extra.length > 0) problems.push(`tensors for layer(s) ${abbreviate(extra, 8)} beyond num_hidden_layers ${n}`);
  // Layers of one stack normally hold the same tensors; name what each odd one lacks.
  const all = new Set<string>();
  for (const rests of decoder.values()) for (const r of rests) all.add(r);
  const uneven: string[] = [];
  for (const [layer, rests] of [...decoder.entries()].sort((a, b) => a[0] - b[0])) {
    const lacking = [...all].filter((r) => !rests.has(r)).sort();
    if (lacking.length > 0 && lacking.length < all.size) uneven.push(`layer ${layer} lacks ${abbreviate(lacking, 2)}`);
  }
  if (uneven.length > 0) problems.push(`layers differ in their tensors: ${abbreviate(uneven, 3)}`);
  return problems;
}

const TORCH_DTYPES: Readonly<Record<string, string>> = {
  float32: 'F32',
  float: 'F32',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  float64: 'F64',
};

function dtypeProblems(config: HfConfig, tensors: ReadonlyMap<string, CheckpointTensor>): string[] {
  const counts = new Map<string, number>();
  for (const t of tensors.values()) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + 1);
  const problems: string[] = [];
  if (counts.size > 1) {
    const parts = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([d, c]) => `${c} ${d}`);
    problems.push(`mixed dtypes: ${parts.join(', ')}`);
  }
  const declared = config.torchDtype === undefined ? undefined : TORCH_DTYPES[config.torchDtype.replace(/^torch\./, '')];
  if (declared !== undefined && counts.size === 1 && !counts.has(declared)) {
    problems.push(`config torch_dtype is ${config.torchDtype} but the tensors are stored as ${[...counts.keys()][0]}`);
  }
  return problems;
}

/** Expected shapes of the Llama-family tensors from the config's dimensions. */
function expectedShape(name: string, config: HfConfig): { shape: readonly number[]; why: string } | undefined {
  const h = config.hiddenSize;
  const v = config.vocabSize;
  const role = tensorRole(name);
  if (role.kind === 'embedding' || role.kind === 'lm_head') {
    return v !== undefined && h !== undefined && name.endsWith('.weight') ? { shape: [v, h], why: 'vocab_size × hidden_size' } : undefined;
  }
  if (role.kind === 'final_norm') return h !== undefined && name.endsWith('.weight') ? { shape: [h], why: 'hidden_size' } : undefined;
  const parts = splitLayerName(name);
  if (parts === undefined || h === undefined) return undefined;
  const heads = config.numAttentionHeads;
  const kv = config.numKeyValueHeads;
  const d = config.headDim;
  const inter = config.intermediateSize;
  const q = heads !== undefined && d !== undefined ? heads * d : undefined;
  const k = kv !== undefined && d !== undefined ? kv * d : undefined;
  switch (parts.rest) {
    case 'input_layernorm.weight':
    case 'post_attention_layernorm.weight':
      return { shape: [h], why: 'hidden_size' };
    case 'self_attn.q_proj.weight':
      return q === undefined ? undefined : { shape: [q, h], why: 'heads·head_dim × hidden_size' };
    case 'self_attn.k_proj.weight':
    case 'self_attn.v_proj.weight':
      return k === undefined ? undefined : { shape: [k, h], why: 'kv_heads·head_dim × hidden_size' };
    case 'self_attn.o_proj.weight':
      return q === undefined ? undefined : { shape: [h, q], why: 'hidden_size × heads·head_dim' };
    case 'self_attn.q_proj.bias':
      return q === undefined ? undefined : { shape: [q], why: 'heads·head_dim' };
    case 'self_attn.k_proj.bias':
    case 'self_attn.v_proj.bias':
      return k === undefined ? undefined : { shape: [k], why: 'kv_heads·head_dim' };
    case 'mlp.gate_proj.weight':
    case 'mlp.up_proj.weight':
      return inter === undefined ? undefined : { shape: [inter, h], why: 'intermediate_size × hidden_size' };
    case 'mlp.down_proj.weight':
      return inter === undefined ? undefined : { shape: [h, inter], why: 'hidden_size × intermediate_size' };
    default:
      return undefined;
  }
}

function shapeProblems(config: HfConfig, tensors: ReadonlyMap<string, CheckpointTensor>): string[] {
  const wrong: string[] = [];
  for (const t of tensors.values()) {
    const expected = expectedShape(t.name, config);
    if (expected === undefined) continue;
    const same = expected.shape.length === t.shape.length && expected.shape.every((x, i) => x === t.shape[i]);
    if (!same) wrong.push(`${t.name} is [${t.shape.join(', ')}], config implies [${expected.shape.join(', ')}] (${expected.why})`);
  }
  if (wrong.length === 0) return [];
  const shown = wrong.slice(0, 3);
  if (wrong.length > 3) shown.push(`… and ${wrong.length - 3} more tensors whose shape disagrees with config.json`);
  return shown;
}
