/**
 * Replay for the fine-tunes: the other task's training prompts answered by the base itself
 * (greedy). A fine-tune that also learns "on these prompts, say what the base says" leaves the
 * base's behaviour there alone, so its task vector stays out of the other task's way when the two
 * are merged; and it cannot get better at the other task, since it only copies the base.
 */
import type { LlamaTrainConfig, LlamaWeights } from '../train/index.js';
import { greedyContinuation, llamaForward, softmax } from '../train/index.js';
import type { BpeEncoder } from './byte-level-bpe.js';
import type { EncodedDocument, Stage } from './corpus.js';
import type { DemoData } from './family-data.js';
import { trainingQuestions } from './fact-world.js';
import { mathPrompt, trainingMathProblems } from './math-problems.js';

/** Longest replayed answer: the demo's math answers are about 15 tokens. */
const MAX_ANSWER_TOKENS = 24;

/** `count` training prompts of the task that is not `stage`'s (never a search or test item). */
export function replayPrompts(stage: Exclude<Stage, 'base'>, data: DemoData, count: number): string[] {
  const seed = `${data.settings.seed}/replay-${stage}`;
  return stage === 'facts'
    ? trainingMathProblems(seed, count, data.math.held).map(mathPrompt)
    : trainingQuestions(data.world, seed, count).map((q) => q.prompt);
}

/**
 * Each prompt with the base's greedy answer; only the answer is learned. `distill`: each answer
 * token is learned as the base's whole next-token distribution there, not as the token itself.
 * Hard tokens teach the fine-tune to be surer of the base's answers (an active change, which a
 * merge then has to fight); the distribution has zero gradient while the fine-tune still predicts
 * what the base predicts, so it only asks the fine-tune to leave those prompts alone.
 */
export function baseReplayDocuments(config: LlamaTrainConfig, base: LlamaWeights, encoder: BpeEncoder, prompts: readonly string[], threads: number, distill = false): EncodedDocument[] {
  const { bosId, eosId } = encoder.vocabulary;
  return prompts.map((prompt) => {
    const p = [bosId, ...encoder.encode(prompt)];
    const answer = greedyContinuation(config, base, p, { maxNewTokens: MAX_ANSWER_TOKENS, stopIds: [eosId], threads });
    const tokens = Int32Array.from([...p, ...answer]);
    const learn = new Uint8Array(tokens.length);
    learn.fill(1, p.length);
    if (!distill) return { tokens, learn };
    const V = config.vocabSize;
    const logits = llamaForward(config, base, tokens, threads);
    const soft = new Map<number, Float32Array>();
    for (let j = p.length; j < tokens.length; j++) soft.set(j, softmax(logits.subarray((j - 1) * V, j * V)));
    return { tokens, learn, soft };
  });
}
