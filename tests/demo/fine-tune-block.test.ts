import { describe, expect, it } from 'vitest';
import { DEFAULT_STAGES, fineTuneBlock, privateDims, privateHeads } from '../../src/demo/train-family.js';
import { type LlamaTrainConfig, initLlamaWeights } from '../../src/train/index.js';
import { widenMlp } from '../../src/train/mlp-neurons.js';
import { widenHeads, widenResidual } from '../../src/train/private-dims.js';

const CONFIG: LlamaTrainConfig = { vocabSize: 16, hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 2, numKvHeads: 2, maxSeqLen: 8, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: 1, eosTokenId: 2 };

describe('fineTuneBlock: which fresh MLP neurons each fine-tune trains', () => {
  const settings = { ...DEFAULT_STAGES, math: { ...DEFAULT_STAGES.math, neurons: 3 }, facts: { ...DEFAULT_STAGES.facts, neurons: 5 } };
  const grown = widenMlp(CONFIG, initLlamaWeights(CONFIG, 1), 8, 1);

  it('math gets the first block of the grown neurons, facts the last; none without neurons', () => {
    expect(fineTuneBlock('math', settings, grown.config, grown.weights, 'base')).toEqual({ start: 12, end: 15 });
    expect(fineTuneBlock('facts', settings, grown.config, grown.weights, 'base')).toEqual({ start: 15, end: 20 });
    expect(fineTuneBlock('math', { ...settings, math: { ...settings.math, neurons: 0 } }, grown.config, grown.weights, 'base')).toBeUndefined();
  });

  it('refuses neurons that are not fresh (a base grown with other counts), naming the neuron and tensor', () => {
    const more = { ...settings, math: { ...settings.math, neurons: 4 } };
    expect(() => fineTuneBlock('math', more, grown.config, grown.weights, 'demo/family/base')).toThrow(
      /demo\/family\/base: MLP neuron 11 of layer 0 is not fresh \(model\.layers\.0\.mlp\.down_proj\.weight column 11 is not zero\).*math\.neurons 4 and facts\.neurons 5/,
    );
    expect(() => fineTuneBlock('facts', { ...settings, facts: { ...settings.facts, neurons: 40 } }, grown.config, grown.weights, 'base')).toThrow(/facts\.neurons 40 does not fit the base's 20 MLP neurons/);
  });
});

describe('privateDims: which residual dims each fine-tune owns', () => {
  const settings = { ...DEFAULT_STAGES, math: { ...DEFAULT_STAGES.math, dims: 2 }, facts: { ...DEFAULT_STAGES.facts, dims: 3 } };
  const grown = widenResidual(CONFIG, initLlamaWeights(CONFIG, 1), 5);

  it('math gets the first of the grown dims, facts the last; none without dims', () => {
    expect(privateDims('math', settings, grown.config, grown.weights)).toEqual({ start: 8, end: 10 });
    expect(privateDims('facts', settings, grown.config, grown.weights)).toEqual({ start: 10, end: 13 });
    expect(privateDims('math', { ...settings, math: { ...settings.math, dims: 0 } }, grown.config)).toBeUndefined();
  });

  it('refuses dims the base uses (a base grown with other counts), naming the dim and the row', () => {
    const more = { ...settings, math: { ...settings.math, dims: 3 } };
    expect(() => privateDims('math', more, grown.config, grown.weights, 'demo/family/base')).toThrow(/demo\/family\/base: residual dim 7 is not private \(embedding row 0 is not zero there\).*math\.dims 3 and facts\.dims 3/);
    expect(() => privateDims('facts', { ...settings, facts: { ...settings.facts, dims: 13 } }, grown.config)).toThrow(/facts\.dims 13 does not fit the base's 13 residual dims/);
  });
});

describe('privateHeads: which fresh attention heads each fine-tune owns', () => {
  const settings = { ...DEFAULT_STAGES, math: { ...DEFAULT_STAGES.math, heads: 1 }, facts: { ...DEFAULT_STAGES.facts, heads: 2 } };
  const grown = widenHeads(CONFIG, initLlamaWeights(CONFIG, 1), 3);

  it('math gets the first of the grown heads, facts the last; none without heads', () => {
    expect(privateHeads('math', settings, grown.config, grown.weights)).toEqual({ start: 2, end: 3 });
    expect(privateHeads('facts', settings, grown.config, grown.weights)).toEqual({ start: 3, end: 5 });
    expect(privateHeads('math', { ...settings, math: { ...settings.math, heads: 0 } }, grown.config)).toBeUndefined();
  });

  it('refuses heads the base uses (a base grown with other counts), naming the head, layer and tensor', () => {
    const more = { ...settings, math: { ...settings.math, heads: 2 } };
    expect(() => privateHeads('math', more, grown.config, grown.weights, 'demo/family/base')).toThrow(
      /demo\/family\/base: attention head 1 of layer 0 is not fresh \(model\.layers\.0\.self_attn\.o_proj\.weight column 4 is not zero\).*math\.heads 2 and facts\.heads 2/,
    );
    expect(() => privateHeads('facts', { ...settings, facts: { ...settings.facts, heads: 5 } }, grown.config)).toThrow(/facts\.heads 5 does not fit the base's 5 attention heads/);
  });
});
