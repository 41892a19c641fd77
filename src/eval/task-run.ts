import { EvoError } from '../errors.js';
import { throwIfAborted } from './backend.js';
import { summarizeItems } from './stats.js';
import { takeSubset } from './subset.js';
import type { EvalBudget, EvalContext, EvalSplit, EvaluationResult, InferenceBackend, ItemResult, JsonObject } from './types.js';

/** What the task evaluators (gsm8k, mmlu, generic) share: item selection, chunked calls, results. */

export class EvaluatorError extends EvoError {
  constructor(code: string, message: string, options?: { cause?: unknown; exitCode?: 1 | 2 }) {
    super(code, message, options);
    this.name = 'EvaluatorError';
  }
}

/** Default backend requests per call: small enough for progress and abort, large enough to fill the engine's sequences. */
export const DEFAULT_CHUNK_ITEMS = 16;

export function budgetSplit(budget: EvalBudget): EvalSplit {
  return budget.split ?? 'search';
}

/**
 * The items to score: `budget.itemIds` when given (each must exist), else the first `limit`
 * ids of the seeded order.
 */
export function pickItems<T extends { readonly id: string }>(records: readonly T[], order: readonly string[], budget: EvalBudget, evaluator: string): T[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const ids = budget.itemIds ?? takeSubset(order, budget.limit);
  return ids.map((id) => {
    const r = byId.get(id);
    if (r === undefined) throw new EvaluatorError('UNKNOWN_ITEM', `${evaluator}: item ${JSON.stringify(id)} is not in the ${budgetSplit(budget)} split`);
    return r;
  });
}

export function requireBackend(ctx: EvalContext, evaluator: string): InferenceBackend {
  if (ctx.backend === undefined) throw new EvaluatorError('NO_BACKEND', `${evaluator} needs an inference backend (llamacpp or openai), and none was given`);
  return ctx.backend;
}

/** Runs `work` over consecutive chunks, checking for abort and reporting progress between them. */
export async function inChunks<T, R>(items: readonly T[], chunkSize: number, ctx: EvalContext, what: string, work: (chunk: readonly T[]) => Promise<readonly R[]>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += chunkSize) {
    throwIfAborted(ctx.signal, what);
    const chunk = items.slice(i, i + chunkSize);
    const got = await work(chunk);
    if (got.length !== chunk.length) throw new EvaluatorError('BACKEND_REPLY', `${what}: the backend answered ${got.length} of ${chunk.length} requests`);
    out.push(...got);
    ctx.onProgress?.(Math.min(items.length, i + chunkSize), items.length);
  }
  return out;
}

/** An EvaluationResult from item results, its primary summary and the evaluator's details. */
export function taskResult(items: readonly ItemResult[], startedMs: number, details: JsonObject): EvaluationResult {
  const s = summarizeItems(items);
  return { score: s.score, ci: s.ci, stderr: s.stderr, itemsUsed: s.n, seconds: (performance.now() - startedMs) / 1000, items, details };
}

/** A positive integer option, or its default; the error names the evaluator and key. */
export function intOption(evaluator: string, key: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new EvaluatorError('BAD_EVALUATOR_OPTION', `${evaluator}: option ${key} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}
