import { describe, expect, it } from 'vitest';
import {
  compareTensorNames,
  layerIndexOf,
  layerTensorName,
  splitLayerName,
  tensorRole,
  type TensorRole,
} from '../../src/tensors/tensor-role.js';

const layer = (n: number, module: 'attention' | 'mlp' | 'norm' | 'other'): TensorRole => ({ kind: 'layer', layer: n, module });

describe('tensorRole', () => {
  const table: [string, TensorRole][] = [
    // llama / mistral / qwen2
    ['model.embed_tokens.weight', { kind: 'embedding' }],
    ['lm_head.weight', { kind: 'lm_head' }],
    ['model.norm.weight', { kind: 'final_norm' }],
    ['model.layers.0.self_attn.q_proj.weight', layer(0, 'attention')],
    ['model.layers.12.self_attn.k_proj.bias', layer(12, 'attention')],
    ['model.layers.3.self_attn.o_proj.weight', layer(3, 'attention')],
    ['model.layers.3.mlp.gate_proj.weight', layer(3, 'mlp')],
    ['model.layers.31.mlp.down_proj.weight', layer(31, 'mlp')],
    ['model.layers.2.input_layernorm.weight', layer(2, 'norm')],
    // says "attention" but is a norm
    ['model.layers.2.post_attention_layernorm.weight', layer(2, 'norm')],
    // gemma2/3
    ['model.layers.5.pre_feedforward_layernorm.weight', layer(5, 'norm')],
    ['model.layers.5.post_feedforward_layernorm.weight', layer(5, 'norm')],
    // qwen3: a norm inside attention belongs to attention
    ['model.layers.7.self_attn.q_norm.weight', layer(7, 'attention')],
    // phi3 fused projections
    ['model.layers.1.self_attn.qkv_proj.weight', layer(1, 'attention')],
    ['model.layers.1.mlp.gate_up_proj.weight', layer(1, 'mlp')],
    // mixtral experts
    ['model.layers.4.block_sparse_moe.experts.3.w1.weight', layer(4, 'mlp')],
    ['model.layers.4.block_sparse_moe.gate.weight', layer(4, 'mlp')],
    // gpt2
    ['transformer.wte.weight', { kind: 'embedding' }],
    ['transformer.wpe.weight', { kind: 'other' }],
    ['transformer.h.10.attn.c_attn.weight', layer(10, 'attention')],
    ['transformer.h.10.mlp.c_fc.bias', layer(10, 'mlp')],
    ['transformer.h.0.ln_1.weight', layer(0, 'norm')],
    ['transformer.ln_f.weight', { kind: 'final_norm' }],
    // gpt-neox
    ['gpt_neox.embed_in.weight', { kind: 'embedding' }],
    ['gpt_neox.layers.6.attention.query_key_value.weight', layer(6, 'attention')],
    ['gpt_neox.layers.6.mlp.dense_h_to_4h.weight', layer(6, 'mlp')],
    ['gpt_neox.final_layer_norm.weight', { kind: 'final_norm' }],
    ['embed_out.weight', { kind: 'lm_head' }],
    // phi-2 style final norm, rotary buffers, unknown things
    ['model.final_layernorm.weight', { kind: 'final_norm' }],
    ['model.layers.0.self_attn.rotary_emb.inv_freq', layer(0, 'attention')],
    ['model.layers.0.something.weight', layer(0, 'other')],
    ['score.weight', { kind: 'other' }],
    // multimodal: the language model's layers are still layers
    ['model.language_model.layers.9.mlp.up_proj.weight', layer(9, 'mlp')],
  ];
  it.each(table)('%s', (name, expected) => {
    expect(tensorRole(name)).toEqual(expected);
  });
});

describe('layer names', () => {
  it('finds the layer index', () => {
    expect(layerIndexOf('model.layers.17.mlp.up_proj.weight')).toBe(17);
    expect(layerIndexOf('transformer.h.0.attn.c_attn.weight')).toBe(0);
    expect(layerIndexOf('model.embed_tokens.weight')).toBeUndefined();
    // only the first numbered container counts (expert 3 is not a layer)
    expect(layerIndexOf('model.layers.4.block_sparse_moe.experts.3.w1.weight')).toBe(4);
    // "layers" must be a whole component
    expect(layerIndexOf('model.sublayers.4.weight')).toBeUndefined();
  });

  it('renumbers only the layer index', () => {
    expect(layerTensorName('model.layers.3.self_attn.q_proj.weight', 10)).toBe('model.layers.10.self_attn.q_proj.weight');
    expect(layerTensorName('model.layers.12.mlp.experts.3.w1.weight', 0)).toBe('model.layers.0.mlp.experts.3.w1.weight');
    expect(layerTensorName('transformer.h.7.ln_1.weight', 8)).toBe('transformer.h.8.ln_1.weight');
    expect(layerTensorName('layers.1.attention.wq.weight', 2)).toBe('layers.2.attention.wq.weight');
    expect(() => layerTensorName('model.norm.weight', 1)).toThrow(RangeError);
    expect(() => layerTensorName('model.layers.1.mlp.up_proj.weight', -1)).toThrow(RangeError);
    expect(() => layerTensorName('model.layers.1.mlp.up_proj.weight', 1.5)).toThrow(RangeError);
  });

  it('splits a name into prefix, container, layer and rest', () => {
    expect(splitLayerName('model.layers.3.mlp.up_proj.weight')).toEqual({ prefix: 'model.', container: 'layers.3.', layer: 3, rest: 'mlp.up_proj.weight' });
    expect(splitLayerName('layers.0.attention.wq.weight')).toEqual({ prefix: '', container: 'layers.0.', layer: 0, rest: 'attention.wq.weight' });
    expect(splitLayerName('lm_head.weight')).toBeUndefined();
  });

  it('orders names with numbers compared as numbers', () => {
    const names = [
      'model.layers.10.mlp.up_proj.weight',
      'model.layers.2.mlp.up_proj.weight',
      'lm_head.weight',
      'model.layers.2.input_layernorm.weight',
      'model.embed_tokens.weight',
    ];
    expect([...names].sort(compareTensorNames)).toEqual([
      'lm_head.weight',
      'model.embed_tokens.weight',
      'model.layers.2.input_layernorm.weight',
      'model.layers.2.mlp.up_proj.weight',
      'model.layers.10.mlp.up_proj.weight',
    ]);
    expect(compareTensorNames('a.1', 'a.1')).toBe(0);
  });
});
