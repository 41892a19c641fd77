/**
 * Greedy continuation with the training forward pass: what the model itself says after a prompt.
 * No key/value cache (each step reruns the prefix): meant for the short answers of tiny models.
 */
import { UsageError } from '../errors.js';
import type { LlamaTrainConfig, LlamaWeights } from './config.js';
import { llamaForward } from './train.js';

export interface GreedyOptions {
  readonly maxNewTokens: number;
  /** Generation ends after any of these ids (it is kept in the result). */
  readonly stopIds: readonly number[];
  readonly threads?: number;
}

/** The ids the model emits after `prompt`, argmax at each step (lowest id on exact ties). */
export function greedyContinuation(config: LlamaTrainConfig, weights: LlamaWeights, prompt: readonly number[], options: GreedyOptions): number[] {
  if (prompt.length === 0) throw new UsageError('greedyContinuation: empty prompt');
  const ids = [...prompt];
  const out: number[] = [];
  while (out.length < options.maxNewTokens && ids.length < config.maxSeqLen) {
    const logits = llamaForward(config, weights, Int32Array.from(ids), options.threads);
    const last = logits.subarray((ids.length - 1) * config.vocabSize, ids.length * config.vocabSize);
    let best = 0;
    for (let k = 1; k < last.length; k++) if ((last[k] ?? -Infinity) > (last[best] ?? -Infinity)) best = k;
    out.push(best);
    ids.push(best);
    if (options.stopIds.includes(best)) break;
  }
  return out;
}
