import { describe, expect, it } from 'vitest';
import { DEFAULT_STAGES, fineTuneBlock } from '../../src/demo/train-family.js';
import { type LlamaTrainConfig, initLlamaWeights } from '../../src/train/index.js';
import { widenMlp } from '../../src/train/mlp-neurons.js';

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
