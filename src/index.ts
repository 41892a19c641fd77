/**
 * evomerge's public API, one stage of design.md's data flow per block. Each name is listed
 * explicitly (style.md: no `export *`), so this file is the map of what users may import.
 */

// Errors
export { EvoError, UsageError } from './errors.js';

// Checkpoint I/O (src/tensors/)
export type { DType, FloatDType } from './tensors/dtype.js';
export { decodeToF32, encodeFromF32, dtypeByteSize } from './tensors/dtype.js';
export { f32ToBf16, bf16ToF32, f32ToBf16Bits, bf16BitsToF32 } from './tensors/bf16.js';
export { f32ToF16, f16ToF32, f32ToF16Bits, f16BitsToF32 } from './tensors/f16.js';
export type { TensorInfo, SafetensorsHeader } from './tensors/safetensors.js';
export { SafetensorsError, SafetensorsReader, readSafetensorsHeader } from './tensors/safetensors.js';
export type { PlannedTensor, SafetensorsLayout } from './tensors/safetensors-writer.js';
export { SafetensorsWriter, planSafetensorsLayout, writeSafetensors } from './tensors/safetensors-writer.js';
export { planShards, ShardedWriter, readSafetensorsIndex, writeSafetensorsIndex } from './tensors/shards.js';
export type { ModelCheckpoint, CheckpointTensor, OpenCheckpointOptions } from './tensors/checkpoint.js';
export { openCheckpoint, CheckpointError, parameterCount } from './tensors/checkpoint.js';
export type { TensorRole } from './tensors/tensor-role.js';
export { tensorRole } from './tensors/tensor-role.js';

// Merge configs, plans and the engine (src/merge/)
export type { MethodId, TensorTask, TensorInput, MergePlan } from './merge/task.js';
export type { MergeConfig, MergeDocument } from './merge/config.js';
export { parseMergeConfig, loadMergeConfig, stringifyMergeConfig } from './merge/config.js';
export { METHODS, METHOD_IDS, getMethodSpec, paramRange } from './merge/registry.js';
export type { MethodSpec, ParamSpec } from './merge/method-spec.js';
export { resolvePlan } from './merge/plan.js';
export type { ResolvePlanOptions } from './merge/plan.js';
export { materializePlan } from './merge/materialize.js';
export type { MaterializeOptions, MaterializeSummary } from './merge/materialize.js';

// Search (src/search/)
export type { SearchSpace } from './search/space.js';
export { parseSpace, loadSpace } from './search/space.js';
export { buildGenomeSchema, decodeGenome, recipeHash } from './search/genome.js';
export type { Optimizer, Evaluated } from './search/optimizer.js';
export { createOptimizer, optimizerFromState } from './search/optimizer-factory.js';
export { isDominated, nonDominatedSort, crowdingDistance, paretoFront } from './search/pareto.js';
export { runSearch } from './search/runner.js';
export type { SearchOptions } from './search/runner.js';

// Evaluation (src/eval/)
export type { Candidate, Evaluator, EvaluationResult, InferenceBackend } from './eval/types.js';
export { createEvaluator, loadUserEvaluator } from './eval/registry.js';
export { LlamaCppBackend } from './eval/backend.js';
export { LlamaCppEngine } from './eval/llamacpp.js';
export { convertHfToGguf } from './convert/hf-to-gguf.js';
export { convertLlama2cToHf } from './convert/llama2c.js';

// Run store (src/store/)
export type { RunStore } from './store/types.js';
export { openSqliteRunStore } from './store/sqlite-store.js';
export { createMemoryRunStore } from './store/memory-store.js';
