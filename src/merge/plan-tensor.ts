import type { DType, FloatDType } from '../tensors/dtype.js';
import { isFloatDType, roundToDType } from '../tensors/dtype.js';
import { normalizeFlagOf, type MethodSpec } from './method-spec.js';
import type { PlanIssue } from './plan-error.js';
import { permuteEmbeddingInputs, type VocabularyPlan } from './plan-permutation.js';
import type { PlanSource, SourceTensor } from './plan-source.js';
import { coerceParamValue, resolveParameter, type ParameterMap } from './resolve.js';
import type { ResolvedParams, TensorInput, TensorTask } from './task.js';

/**
 * One output tensor before resolution: where its inputs come from and which config levels apply.
 * plan.ts makes these from slices; `buildTensorTask` turns one into a TensorTask.
 */
export interface TensorPlanItem {
  /** Output tensor name. */
  readonly output: string;
  /** The slice's sources in config order (repeats included: §0.13 is applied here). */
  readonly entries: readonly {
    readonly model: string;
    /** The tensor name in that model, used for per-model parameter filters (§2). */
    readonly inputName: string;
    /** Stored names tried in order after inputName (a tied lm_head falls back to the embeddings). */
    readonly fallbacks: readonly string[];
    readonly parameters?: ParameterMap;
  }[];
  /** Depth position for gradients (0 for pre/post weights, §0.1). */
  readonly t: number;
  readonly sliceParameters?: ParameterMap;
  readonly moduleParameters?: ParameterMap;
  readonly baseModel?: string;
  readonly isEmbed: boolean;
  /** lm_head: skipped when no input stores it under its own name (§1.5). */
  readonly optional: boolean;
}

export interface TensorPlanContext {
  readonly spec: MethodSpec;
  readonly sources: ReadonlyMap<string, PlanSource>;
  readonly topParameters?: ParameterMap;
  /** The document's `dtype:` (compute dtype), if any. */
  readonly dtype?: FloatDType;
  /** The document's `out_dtype:`, if any. */
  readonly outDType?: FloatDType;
  readonly seed: number;
  /** Prefix of random keys: '' for the final document, `<stage>/` for named stages. */
  readonly keyPrefix: string;
  readonly issues: PlanIssue[];
  readonly warn: (message: string) => void;
  /** With `tokenizer_source`: embeddings and lm_head are re-indexed into this vocabulary (§1.5). */
  readonly vocabulary?: VocabularyPlan;
}

interface Picked {
  readonly model: string;
  readonly inputName: string;
  readonly tensor: SourceTensor;
  readonly levels: readonly (ParameterMap | undefined)[];
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);
const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Resolves one output tensor; returns undefined when it is skipped (or on issues, recorded in ctx). */
export function buildTensorTask(item: TensorPlanItem, ctx: TensorPlanContext): TensorTask | undefined {
  const { spec } = ctx;
  const outer = [item.sliceParameters, item.moduleParameters, ctx.topParameters];

  // Repeated models collapse: first position, last entry's tensor (mergekit builds a dict from
  // zip(models, tensors)), per-parameter the first entry that sets it (§0.13).
  const order: string[] = [];
  const lastEntry = new Map<string, TensorPlanItem['entries'][number]>();
  for (const e of item.entries) {
    if (!lastEntry.has(e.model)) order.push(e.model);
    lastEntry.set(e.model, e);
  }

  const picked: Picked[] = [];
  let ownNameFound = false;
  for (const model of order) {
    const entry = lastEntry.get(model);
    const source = ctx.sources.get(model);
    if (!entry || !source) continue;
    const own = source.tensors.get(entry.inputName);
    if (own) ownNameFound = true;
    const tensor = own ?? entry.fallbacks.map((n) => source.tensors.get(n)).find((x) => x !== undefined);
    if (!tensor) {
      if (!item.optional) {
        ctx.issues.push({
          code: 'TENSOR_NOT_FOUND',
          message: `model ${source.label} has no tensor '${entry.inputName}' (needed for output ${item.output})`,
        });
      }
      continue;
    }
    const ownLevels = item.entries.filter((e) => e.model === model).map((e) => e.parameters);
    picked.push({ model, inputName: entry.inputName, tensor, levels: [...ownLevels, ...outer] });
  }
  if (item.optional && !ownNameFound) return undefined;
  if (picked.length < order.length && !item.optional) return undefined;

  const usesBase = spec.needsBase !== 'no' && item.baseModel !== undefined;
  let baseIndex: number | null = usesBase ? picked.findIndex((p) => p.model === item.baseModel) : null;
  if (baseIndex === -1) {
    ctx.issues.push({ code: 'BASE_MODEL', message: `${spec.id}: the base model '${item.baseModel ?? ''}' is not an input of ${item.output}` });
    return undefined;
  }

  // Parameters: globals against the output name, per-model ones against each input name (§2).
  const params: Record<string, number | boolean> = {};
  let missing = false;
  for (const p of spec.params.filter((q) => q.scope === 'global')) {
    const v = resolveParameter(p.name, outer, item.output, item.t);
    if (v !== undefined) params[p.name] = coerceParamValue(p.kind, v);
    else if (p.default !== undefined) params[p.name] = p.default;
    else if (p.required) {
      ctx.issues.push({ code: 'MISSING_PARAMETER', message: `Missing required parameter ${p.name} for ${item.output}` });
      missing = true;
    }
  }
  const modelParams: Record<string, number | boolean>[] = picked.map((pk, i) => {
    const out: Record<string, number | boolean> = {};
    const isBase = i === baseIndex;
    for (const p of spec.params.filter((q) => q.scope === 'model')) {
      const v = resolveParameter(p.name, pk.levels, pk.inputName, item.t);
      if (v !== undefined) out[p.name] = coerceParamValue(p.kind, v);
      else if (p.default !== undefined) out[p.name] = p.default;
      else if (p.required && !isBase) {
        ctx.issues.push({ code: 'MISSING_PARAMETER', message: `Missing required parameter ${p.name} for ${pk.model}.${pk.inputName}` });
        missing = true;
      }
    }
    return out;
  });
  if (missing) return undefined;

  // tokenizer_source: every model's rows re-indexed into the output vocabulary first (§1.5).
  const permuted = item.isEmbed && ctx.vocabulary !== undefined ? permuteEmbeddingInputs(item.output, picked, ctx.vocabulary, ctx) : undefined;
  if (permuted === null) return undefined;

  // Shapes (§0.11).
  let keep = picked.map((_p, i) => i);
  const shapes = permuted?.map((p) => p.shape) ?? picked.map((p) => p.tensor.shape);
  const same = shapes.every((s) => fmtShape(s) === fmtShape(shapes[0] ?? []));
  let outShape: readonly number[] = (baseIndex !== null ? shapes[baseIndex] : shapes[0]) ?? [];
  if (!same) {
    const describe = picked.map((p, i) => `${p.model} ${fmtShape(shapes[i] ?? [])}`).join(', ');
    const twoD = shapes.every((s) => s.length === 2);
    if (item.isEmbed && twoD && spec.embedShapes === 'common') {
      outShape = [Math.min(...shapes.map((s) => s[0] ?? 0)), Math.min(...shapes.map((s) => s[1] ?? 0))];
      ctx.warn(`${item.output}: shapes differ (${describe}); using the common submatrix ${fmtShape(outShape)} as mergekit does`);
    } else if (item.isEmbed && twoD && spec.embedShapes === 'base' && baseIndex !== null) {
      const small = picked.filter((_p, i) => (shapes[i]?.[0] ?? 0) < (outShape[0] ?? 0) || (shapes[i]?.[1] ?? 0) < (outShape[1] ?? 0));
      if (small.length > 0) {
        ctx.issues.push({ code: 'SHAPE_MISMATCH', message: `${item.output}: ${small.map((p) => p.model).join(', ')} smaller than the base ${fmtShape(outShape)} (${describe}); ${spec.id} cuts models to the base's shape and cannot grow them` });
        return undefined;
      }
      ctx.warn(`${item.output}: shapes differ (${describe}); cutting each model to the base's ${fmtShape(outShape)} as mergekit does`);
    } else if (spec.otherShapes === 'skip' && baseIndex !== null) {
      const base = fmtShape(outShape);
      const skipped = picked.filter((_p, i) => fmtShape(shapes[i] ?? []) !== base).map((p) => p.model);
      keep = keep.filter((i) => fmtShape(shapes[i] ?? []) === base);
      ctx.warn(`${item.output}: skipping ${skipped.join(', ')} (shape differs from the base ${base}), as mergekit does`);
      baseIndex = keep.indexOf(baseIndex);
    } else {
      ctx.issues.push({ code: 'SHAPE_MISMATCH', message: `${item.output}: ${spec.id} needs equal shapes, got ${describe}` });
      return undefined;
    }
  }
  const kept = keep.map((i) => picked[i]).filter((p): p is Picked => p !== undefined);
  const keptParams = keep.map((i) => modelParams[i] ?? {});

  const ref = baseIndex !== null ? kept[baseIndex] : kept[0];
  const stored: DType = ref?.tensor.dtype ?? 'F32';
  const computeDType: FloatDType = ctx.dtype ?? (isFloatDType(stored) ? stored : 'F32');
  const outDType: DType = ctx.outDType ?? ctx.dtype ?? stored;

  checkRules(item.output, product(outShape), kept, keptParams, baseIndex, params, computeDType, ctx);

  const inputs: TensorInput[] = permuted ?? kept.map((p) => p.tensor.input(p.model));
  return {
    output: item.output,
    outShape,
    outDType,
    computeDType,
    method: spec.id,
    inputs,
    baseIndex,
    params: params satisfies ResolvedParams,
    modelParams: keptParams,
    isEmbed: item.isEmbed,
    randomKey: { seed: ctx.seed, tensor: `${ctx.keyPrefix}${item.output}` },
  };
}

function checkRules(
  output: string,
  numel: number,
  models: readonly Picked[],
  modelParams: readonly Readonly<Record<string, number | boolean>>[],
  baseIndex: number | null,
  params: Readonly<Record<string, number | boolean>>,
  computeDType: FloatDType,
  ctx: TensorPlanContext,
): void {
  const num = (r: Readonly<Record<string, number | boolean>> | undefined, k: string, d: number): number => {
    const v = r?.[k];
    return typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : d;
  };
  for (const rule of ctx.spec.rules) {
    switch (rule) {
      case 'topk-nonzero':
        models.forEach((m, i) => {
          if (i === baseIndex) return;
          const density = num(modelParams[i], 'density', 1);
          if (density < 1 && Math.trunc(density * numel) === 0) {
            ctx.issues.push({
              code: 'DENSITY_TOO_SMALL',
              message: `${ctx.spec.id}: density ${density} keeps int(${density}·${numel}) = 0 elements of ${output} for ${m.model}; it must be at least ${1 / numel}`,
            });
          }
        });
        break;
      case 'della-window':
        models.forEach((m, i) => {
          if (i === baseIndex) return;
          const density = num(modelParams[i], 'density', 1);
          const eps = num(modelParams[i], 'epsilon', 0.15);
          if (density < 1 && density > 0 && (density + eps >= 1 || density - eps <= 0)) {
            ctx.issues.push({
              code: 'DELLA_WINDOW',
              message: `${ctx.spec.id}: density ± epsilon must lie in (0, 1), got density ${density}, epsilon ${eps} for ${m.model}.${m.inputName}`,
            });
          }
        });
        break;
      case 'weights-sum-nonzero': {
        // linear's flag is `normalize`, multislerp's `normalize_weights`; a base carries no weight.
        const flag = normalizeFlagOf(ctx.spec);
        if (params[flag] !== true) break;
        const sum = modelParams.reduce((acc, p, i) => (i === baseIndex ? acc : acc + roundToDType(computeDType, num(p, 'weight', 0))), 0);
        if (sum === 0) {
          ctx.issues.push({
            code: 'WEIGHTS_SUM_ZERO',
            message: `${ctx.spec.id}: the weights of ${output} sum to 0 with ${flag}: true (mergekit would write inf/NaN); change a weight or set ${flag}: false`,
          });
        }
        break;
      }
      case 'breadcrumbs-empty-slice':
        models.forEach((m, i) => {
          if (i === baseIndex) return;
          const density = num(modelParams[i], 'density', 1);
          const gamma = num(modelParams[i], 'gamma', 0.01);
          if (density >= 1) return;
          let nTop = Math.trunc(gamma * numel);
          const nBot = numel - Math.trunc(density * numel) - nTop;
          if (nBot < 0) nTop += nBot;
          if (nTop === 0) {
            ctx.warn(`${ctx.spec.id}: gamma ${gamma} removes int(gamma·${numel}) = 0 outliers of ${output} for ${m.model}; mergekit then drops this model's whole delta (semantics §0.6), and so does evomerge`);
          }
        });
        break;
      default: {
        const never: never = rule;
        throw new Error(`unhandled rule ${String(never)}`);
      }
    }
  }
}
