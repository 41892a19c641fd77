import { isFloatDType, type FloatDType } from '../tensors/dtype.js';
import type { PlanIssue } from './plan-error.js';
import type { SourceTensor } from './plan-source.js';
import type { FileTensorInput, PermutedTensorInput } from './task.js';
import { isIdentity, packRows, permutationRows, type Vocabulary } from './vocab-permutation.js';

/** The output vocabulary of `tokenizer_source` and every model's own vocabulary (plan-tokenizer.ts). */
export interface VocabularyPlan {
  /** Output tokens by id. */
  readonly outTokens: readonly (string | undefined)[];
  /** Each model reference's vocabulary. */
  readonly vocabs: ReadonlyMap<string, Vocabulary>;
  /** The document's base_model, whose row wins for a token several models share (§1.5). */
  readonly base?: string;
}

/**
 * The inputs of one embedding / lm_head output re-indexed into the output vocabulary, aligned with
 * `picked`; undefined when the permutation is the identity for every model (the plan is then
 * exactly what it is without tokenizer_source); null after recording an issue. The gathered rows
 * are in `dtype` (the document's compute dtype) when given, as mergekit casts on load before it
 * permutes, else in each model's stored dtype.
 */
export function permuteEmbeddingInputs(
  output: string,
  picked: readonly { readonly model: string; readonly inputName: string; readonly tensor: SourceTensor }[],
  vocabulary: VocabularyPlan,
  env: { readonly issues: PlanIssue[]; readonly warn: (message: string) => void; readonly dtype?: FloatDType },
): PermutedTensorInput[] | undefined | null {
  const { issues } = env;
  for (const p of picked) {
    const { shape, dtype } = p.tensor;
    if (shape.length !== 2 || !isFloatDType(dtype)) {
      issues.push({ code: 'SHAPE_MISMATCH', message: `${output}: tokenizer_source needs 2-D F32/F16/BF16 embeddings, ${p.model} has ${dtype} [${shape.join(', ')}]` });
      return null;
    }
  }
  const cols = new Set(picked.map((p) => p.tensor.shape[1]));
  if (cols.size > 1) {
    issues.push({ code: 'SHAPE_MISMATCH', message: `${output}: embedding widths differ (${picked.map((p) => `${p.model} ${p.tensor.shape[1] ?? '?'}`).join(', ')}); tokenizer_source only re-indexes rows` });
    return null;
  }
  const models = picked.map((p) => {
    const vocab = vocabulary.vocabs.get(p.model);
    if (vocab === undefined) throw new Error(`internal: no vocabulary for ${p.model}`);
    return { vocab, rows: p.tensor.shape[0] ?? 0 };
  });
  const baseIndex = vocabulary.base === undefined ? -1 : picked.findIndex((p) => p.model === vocabulary.base);
  const { rows, stats, missing } = permutationRows(vocabulary.outTokens, models, baseIndex === -1 ? null : baseIndex);
  if (rows.every((r, i) => isIdentity(r, i, models[i]?.rows ?? 0))) return undefined;

  const files: FileTensorInput[] = [];
  for (const p of picked) {
    const input = p.tensor.input(p.model);
    if (input.kind !== 'file') {
      issues.push({ code: 'UNSUPPORTED', message: `${output}: tokenizer_source cannot permute ${p.model}'s ${p.inputName}, which is computed by an earlier stage; write the stage to disk and merge it as a model` });
      return null;
    }
    files.push(input);
  }
  if (missing > 0) {
    const n = vocabulary.outTokens.length;
    env.warn(`${output}: ${missing} of the ${n} output tokens ${missing === 1 ? 'has' : 'have'} no row in any model (absent, or an id past a model's rows); those rows are zeros`);
  }
  const width = files[0]?.shape[1] ?? 0;
  return picked.map((p, i) => {
    const own = files[i] as FileTensorInput;
    return {
      kind: 'permuted',
      model: p.model,
      tensor: own.tensor,
      dtype: env.dtype ?? own.dtype,
      shape: [vocabulary.outTokens.length, width],
      sources: files,
      ...packRows(rows[i] ?? []),
      stats: stats[i] ?? { own: 0, borrowed: 0, averaged: 0, zero: 0 },
    };
  });
}
