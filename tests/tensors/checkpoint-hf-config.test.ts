import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/tensors/checkpoint-error.js';
import { parseHfConfig, withNumHiddenLayers } from '../../src/tensors/hf-config.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CheckpointError ? err.code : `not a CheckpointError: ${String(err)}`;
  }
  return undefined;
}

const llama = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 3,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  vocab_size: 100,
  rms_norm_eps: 1e-6,
  rope_theta: 500000,
  max_position_embeddings: 2048,
  torch_dtype: 'bfloat16',
};

describe('parseHfConfig', () => {
  it('reads the Llama keys', () => {
    const c = parseHfConfig(llama, 'config.json');
    expect(c).toMatchObject({
      architecture: 'LlamaForCausalLM',
      modelType: 'llama',
      numHiddenLayers: 3,
      layersKeyPath: ['num_hidden_layers'],
      hiddenSize: 64,
      intermediateSize: 172,
      numAttentionHeads: 8,
      numKeyValueHeads: 2,
      headDim: 8,
      vocabSize: 100,
      tieWordEmbeddings: false,
      tieWordEmbeddingsExplicit: false,
      rmsNormEps: 1e-6,
      ropeTheta: 500000,
      maxPositionEmbeddings: 2048,
      torchDtype: 'bfloat16',
      file: 'config.json',
    });
    expect(c.raw).toBe(llama);
  });

  it('defaults tie_word_embeddings per model type, and an explicit value wins', () => {
    expect(parseHfConfig({ ...llama }, 'c').tieWordEmbeddings).toBe(false);
    expect(parseHfConfig({ model_type: 'gemma', num_hidden_layers: 2 }, 'c').tieWordEmbeddings).toBe(true);
    expect(parseHfConfig({ ...llama, tie_word_embeddings: true }, 'c')).toMatchObject({ tieWordEmbeddings: true, tieWordEmbeddingsExplicit: true });
  });

  it('falls back to num_attention_heads for kv heads and honours head_dim', () => {
    const c = parseHfConfig({ num_hidden_layers: 1, hidden_size: 48, num_attention_heads: 4, head_dim: 16 }, 'c');
    expect(c.numKeyValueHeads).toBe(4);
    expect(c.headDim).toBe(16);
  });

  it('reads gpt2 aliases and newer spellings', () => {
    const c = parseHfConfig({ model_type: 'gpt2', n_layer: 12, n_embd: 768, n_head: 12, n_positions: 1024, dtype: 'float16' }, 'c');
    expect(c).toMatchObject({ numHiddenLayers: 12, layersKeyPath: ['n_layer'], hiddenSize: 768, numAttentionHeads: 12, maxPositionEmbeddings: 1024, torchDtype: 'float16' });
    expect(parseHfConfig({ num_hidden_layers: 1, rope_parameters: { rope_theta: 1e6 } }, 'c').ropeTheta).toBe(1e6);
  });

  it('reads a multimodal config from text_config', () => {
    const c = parseHfConfig({ architectures: ['Gemma3ForConditionalGeneration'], model_type: 'gemma3', text_config: { num_hidden_layers: 26, hidden_size: 1152 } }, 'c');
    expect(c).toMatchObject({ architecture: 'Gemma3ForConditionalGeneration', numHiddenLayers: 26, hiddenSize: 1152, layersKeyPath: ['text_config', 'num_hidden_layers'] });
  });

  it('rejects bad configs with a code', () => {
    expect(codeOf(() => parseHfConfig([1, 2], 'c'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseHfConfig({ ...llama, num_hidden_layers: undefined }, 'c'))).toBe('MISSING_LAYERS_KEY');
    expect(codeOf(() => parseHfConfig({ ...llama, num_hidden_layers: null }, 'c'))).toBe('MISSING_LAYERS_KEY');
    expect(codeOf(() => parseHfConfig({ ...llama, num_hidden_layers: '3' }, 'c'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseHfConfig({ ...llama, num_hidden_layers: 2.5 }, 'c'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseHfConfig({ ...llama, hidden_size: 0 }, 'c'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseHfConfig({ ...llama, architectures: 'Llama' }, 'c'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseHfConfig({ ...llama, tie_word_embeddings: 'yes' }, 'c'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseHfConfig({ ...llama, rms_norm_eps: 'small' }, 'c'))).toBe('CONFIG_INVALID');
  });

  it('names the file and key in the message', () => {
    try {
      parseHfConfig({ ...llama, hidden_size: -1 }, '/m/config.json');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe('/m/config.json: hidden_size must be an integer ≥ 1, got -1');
    }
  });
});

describe('withNumHiddenLayers', () => {
  it('changes only the layer count and leaves the input alone', () => {
    const out = withNumHiddenLayers(llama, 6);
    expect(out).toEqual({ ...llama, num_hidden_layers: 6 });
    expect(llama.num_hidden_layers).toBe(3);
  });

  it('patches text_config and aliases where the count lives', () => {
    expect(withNumHiddenLayers({ n_layer: 12 }, 4)).toEqual({ n_layer: 4 });
    expect(withNumHiddenLayers({ text_config: { num_hidden_layers: 26 } }, 30)).toEqual({ text_config: { num_hidden_layers: 30 } });
    expect(withNumHiddenLayers({}, 2)).toEqual({ num_hidden_layers: 2 });
  });

  it('re-indexes layer_types by source layer, or cycles them without a mapping', () => {
    const raw = { num_hidden_layers: 4, layer_types: ['sliding', 'sliding', 'full', 'full'] };
    expect(withNumHiddenLayers(raw, 3, [2, 0, 3]).layer_types).toEqual(['full', 'sliding', 'full']);
    expect(withNumHiddenLayers(raw, 6).layer_types).toEqual(['sliding', 'sliding', 'full', 'full', 'sliding', 'sliding']);
    expect(() => withNumHiddenLayers(raw, 2, [0])).toThrow(RangeError);
    expect(() => withNumHiddenLayers(raw, 1, [4])).toThrow(RangeError);
  });
});
