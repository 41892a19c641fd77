import { isFloatDType, type FloatDType } from '../tensors/dtype.js';
import type { PlanIssue } from './plan-error.js';
import type { SourceTensor } from './plan-source.js';
import type { PermutationSource, PermutedTensorInput } from './task.js';
import { overrideSourceToken, tokenSourcePath, type TokenEmbeddingOverride } from './config.js';
import { isIdentity, packRows, permutationRows, type RowOverride, type RowSource, type Vocabulary } from './vocab-permutation.js';

/** The output vocabulary of `tokenizer_source` and every model's own vocabulary (plan-tokenizer.ts). */
export interface VocabularyPlan {
  /** Output tokens by id. */
  readonly outTokens: readonly (string | undefined)[];
  /** Each model reference's vocabulary. */
  readonly vocabs: ReadonlyMap<string, Vocabulary>;
  /** The document's base_model, whose row wins for a token several models share (§1.5). */
  readonly base?: string;
  /** `tokenizer.tokens` entries with their output ids (plan-tokenizer.ts checked the tokens exist). */
  readonly overrides?: readonly (TokenEmbeddingOverride & { readonly outId: number })[];
  /** Rows of every permuted tensor: `outTokens.length`, padded up by `pad_to_multiple_of`. */
  readonly rows: number;
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
  const overrides = new Map<number, RowOverride>();
  for (const o of vocabulary.overrides ?? []) {
    const source = overrideRow(output, o, picked, vocabulary, issues);
    if (source === undefined) return null;
    overrides.set(o.outId, { source, force: o.force });
  }
  const { rows, stats, missing } = permutationRows(vocabulary.outTokens, models, baseIndex === -1 ? null : baseIndex, { overrides, rows: vocabulary.rows });
  if (rows.every((r, i) => isIdentity(r, i, models[i]?.rows ?? 0))) return undefined;

  const sources: PermutationSource[] = [];
  for (const p of picked) {
    const input = p.tensor.input(p.model);
    // A stage's tensor is gathered from as the stage computes it: what multimerge writes and loads back.
    if (input.kind === 'permuted') throw new Error(`internal: ${p.model}'s ${p.inputName} is itself permuted`);
    sources.push(input);
  }
  if (missing > 0) {
    const n = vocabulary.outTokens.length;
    env.warn(`${output}: ${missing} of the ${n} output tokens ${missing === 1 ? 'has' : 'have'} no row in any model (absent, or an id past a model's rows); those rows are zeros`);
  }
  const width = picked[0]?.tensor.shape[1] ?? 0;
  return picked.map((p, i) => {
    const own = sources[i] as PermutationSource;
    return {
      kind: 'permuted',
      model: p.model,
      tensor: own.kind === 'file' ? own.tensor : own.task.output,
      dtype: env.dtype ?? p.tensor.dtype,
      shape: [vocabulary.rows, width],
      sources,
      ...packRows(rows[i] ?? []),
      // Padded rows are the mean of the real ones, which the worker gathers from these.
      ...(vocabulary.rows > vocabulary.outTokens.length ? { padMeanOf: packRows((rows[i] ?? []).slice(0, vocabulary.outTokens.length)) } : {}),
      stats: stats[i] ?? { own: 0, borrowed: 0, averaged: 0, zero: 0, overridden: 0, padded: 0 },
    };
  });
}

/**
 * The row a `tokenizer.tokens` entry names, as `[source index, row]` into `picked` (mergekit's
 * compute_default_embedding): `model`: that model's row for the same token; `model_token`: the row
 * of `token` in that model's own tokenizer, or row `token_id` of its stored tensor; `zero`: none.
 * undefined after recording an issue (a row past the model's tensor, a model not among this tensor's inputs).
 */
function overrideRow(
  output: string,
  o: TokenEmbeddingOverride,
  picked: readonly { readonly model: string; readonly tensor: SourceTensor }[],
  vocabulary: VocabularyPlan,
  issues: PlanIssue[],
): RowSource | undefined {
  const { source } = o;
  if (source.kind === 'zero') return [];
  const at = tokenSourcePath(o.token);
  const index = picked.findIndex((p) => p.model === source.model);
  if (index === -1) {
    issues.push({ code: 'UNSUPPORTED', message: `${at}: ${source.model} is not an input of ${output} (inputs: ${picked.map((p) => p.model).join(', ')})` });
    return undefined;
  }
  const rows = picked[index]?.tensor.shape[0] ?? 0;
  const vocab = vocabulary.vocabs.get(source.model);
  const token = overrideSourceToken(o);
  const row = token === undefined ? ('token_id' in source ? source.token_id : 0) : vocab?.get(token);
  if (row === undefined || row >= rows) {
    const what = token === undefined ? `token_id ${row ?? '?'}` : `token ${JSON.stringify(token)} (id ${row ?? 'absent'})`;
    const key = source.kind === 'model' ? at : `${at}.${token === undefined ? 'token_id' : 'token'}`;
    issues.push({ code: 'TOKEN_OVERRIDE', message: `${key}: ${what} is past the ${rows} rows of ${source.model}'s ${output}` });
    return undefined;
  }
  return [[index, row]];
}
