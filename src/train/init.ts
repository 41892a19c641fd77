/**
 * Seeded initial weights: every matrix N(0, 0.02²) as in transformers' LlamaPreTrainedModel, the
 * residual outputs (o_proj, down_proj) scaled by 1/√(2·layers) as GPT-2 does, norms at 1. Each
 * tensor draws from its own named stream, so adding a tensor never shifts another's values.
 */
import { RngStreams } from '../search/rng.js';
import { type LlamaTrainConfig, checkTrainConfig, llamaWeightShapes } from './config.js';

const STD = 0.02;

export function initLlamaWeights(config: LlamaTrainConfig, seed: number): Map<string, Float32Array> {
  checkTrainConfig(config);
  const rng = new RngStreams(`llama-init/${seed}`);
  const out = new Map<string, Float32Array>();
  for (const [name, [rows, cols]] of llamaWeightShapes(config)) {
    const data = new Float32Array(rows * cols);
    if (name.endsWith('norm.weight')) data.fill(1);
    else {
      const residual = name.endsWith('o_proj.weight') || name.endsWith('down_proj.weight');
      const std = residual ? STD / Math.sqrt(2 * config.numLayers) : STD;
      const s = rng.stream(name);
      for (let i = 0; i < data.length; i++) data[i] = s.normal() * std;
    }
    out.set(name, data);
  }
  return out;
}
