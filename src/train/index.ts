/** Training tiny Llamas from scratch (the demo family, issue 6): the public surface of src/train. */
export { type LlamaTrainConfig, type LlamaWeights, checkTrainConfig, llamaWeightShapes } from './config.js';
export { initLlamaWeights } from './init.js';
export { loadLlamaCheckpoint, saveLlamaCheckpoint } from './checkpoint.js';
export { type TrainBatch, type TrainOptions, evaluateLoss, llamaForward, lossAndGradients, trainLlama } from './train.js';
export { learningRateAt } from './adamw.js';
export { softmax } from './elementwise.js';
export { type GreedyOptions, greedyContinuation } from './greedy.js';
