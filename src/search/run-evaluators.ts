import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { EvoError } from '../errors.js';
import { createEvaluator, objectiveRecordOf } from '../eval/registry.js';
import type { Evaluator, InferenceBackend } from '../eval/types.js';
import type { MergeConfig } from '../merge/config.js';
import type { JsonValue, NewItemResult, ObjectiveScore } from '../store/types.js';
import type { RunSpace } from './run-space.js';
import type { ObjectiveSpec } from './space.js';

/**
 * The runner's side of evaluation: each objective of the space becomes an ObjectiveEvaluator,
 * loaded once before the first candidate is built (so a missing module or dataset fails before
 * any output). Built-in evaluators (gsm8k, mmlu, generic, command) come from src/eval/registry.ts;
 * a user module is a path whose `evaluate` export (or default export) is called as
 * `await evaluate(candidate, options, context)` and returns a number or `{score, ...}`:
 *
 *   { score: number,              // the objective's value (non-finite: this candidate failed)
 *     n?: number,                 // items the score rests on (`itemsUsed` too; default 1)
 *     stderr?: number, ci?: [lo, hi],
 *     items?: [{id, score?, correct?}],
 *     error?: string,             // why, when score is not finite
 *     ...details }                // anything else is stored as the evaluator's details
 *
 * The module may export `needs = 'backend'` to get `context.backend`, an inference backend
 * already serving the candidate, or `evaluator`, an object implementing src/eval/types.ts's
 * Evaluator. To be raced (an objective with `racing:`), a module exports
 * `subsetOrder(options, {split, seed})` returning every item id in the seeded order for that
 * seed; its `evaluate` is then called with `context.itemIds`, the slice to score, and must return
 * `items` for exactly those ids (the objective's score is their mean). A thrown error stops the run (the candidate stays unfinished, so `evo resume`
 * evaluates it again once the evaluator is fixed); to fail one candidate, return a non-finite score.
 */

/** The candidate an evaluator receives (src/eval/types.ts's Candidate, plus the run's identifiers). */
export interface EvaluationCandidate {
  /** The candidate's id in the run store, as text (evaluators treat it as a label). */
  readonly id: string;
  readonly candidateId: number;
  /** The merged model: a Hugging Face safetensors directory. */
  readonly dir: string;
  /** A GGUF of the same weights, when an evaluator of the space needs one. */
  readonly gguf: string | undefined;
  /** The mergekit config it was built from. */
  readonly config: MergeConfig;
  /** The same config as the YAML text stored and exported. */
  readonly configText: string;
  /** Gene name → value in the parameter's units (continuous) or the chosen option (categorical). */
  readonly genome: Readonly<Record<string, number | string>>;
  readonly hash: string;
  /** The generation that first asked for this recipe. */
  readonly generation: number;
}

/** The third argument of a user evaluator (a superset of src/eval/types.ts's UserEvaluatorContext). */
export interface EvaluationContext {
  /** The objective's name in the space. */
  readonly objective: string;
  /** Items per evaluation (the objective's `limit`), or Infinity for the evaluator's whole split. */
  readonly limit: number;
  /** Seed of the item subset: the same for every candidate of a generation. */
  readonly seed: number;
  readonly split: 'search';
  /** Score exactly these items, in this order (a racing slice; `limit` is then their count); undefined: the seeded subset of `limit`. */
  readonly itemIds: readonly string[] | undefined;
  readonly generation: number;
  /** The backend serving the candidate, for evaluators that need one; else undefined. */
  readonly backend: InferenceBackend | undefined;
  /** Aborted when the search is interrupted. */
  readonly signal: AbortSignal;
  /** Folder of the space file: relative paths in `options` are relative to it. */
  readonly spaceDir: string;
}

/** One objective's outcome for one candidate. */
export interface ObjectiveOutcome {
  readonly score: ObjectiveScore;
  readonly itemsUsed: number;
  readonly items: readonly NewItemResult[];
  readonly details: JsonValue;
  /** Set when the score is not finite: the candidate failed on this objective. */
  readonly failure: string | null;
}

/** What a candidate must be besides its HF folder: loaded in the inference backend, or a GGUF file. */
export type EvaluatorNeed = 'hf-dir' | 'backend' | 'gguf';

export interface ObjectiveEvaluator {
  readonly objective: string;
  readonly needs: EvaluatorNeed;
  evaluate(candidate: EvaluationCandidate, context: EvaluationContext): Promise<ObjectiveOutcome>;
  /** Every item id of the search split in the seeded order of `seed`; absent when the evaluator cannot be raced. */
  readonly subsetOrder?: (seed: number) => Promise<readonly string[]>;
}

/** A user evaluator function as exported by its module. */
export type UserEvaluatorFunction = (candidate: EvaluationCandidate, options: Readonly<Record<string, unknown>>, context: EvaluationContext) => unknown;

export class EvaluatorError extends EvoError {
  constructor(code: 'EVALUATOR_NOT_FOUND' | 'EVALUATOR_MODULE' | 'EVALUATOR_RESULT' | 'EVALUATOR_FAILED', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'EvaluatorError';
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON copy of `v` with non-JSON members dropped and non-finite numbers as null. */
function toJson(v: unknown, depth = 0): JsonValue {
  if (depth > 32) return null;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (Array.isArray(v)) return v.map((x) => toJson(x, depth + 1));
  if (isRecord(v)) {
    const out: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol' || typeof x === 'bigint') continue;
      out[k] = toJson(x, depth + 1);
    }
    return out;
  }
  return null;
}

function finiteOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function failed(reason: string, details: JsonValue): ObjectiveOutcome {
  return { score: { value: 0, n: 0 }, itemsUsed: 0, items: [], details, failure: reason };
}

/**
 * Reads what a user evaluator returned for `objective`. Throws EVALUATOR_RESULT naming the module
 * when it is neither a number nor `{score: number, ...}` with well-formed items.
 */
export function outcomeOf(value: unknown, where: string, objective: string): ObjectiveOutcome {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? { score: { value, n: 1 }, itemsUsed: 1, items: [], details: null, failure: null } : failed(`${where} returned ${value}`, null);
  }
  if (!isRecord(value) || typeof value.score !== 'number') {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object without a numeric score' : typeof value;
    throw new EvaluatorError('EVALUATOR_RESULT', `${where} must return a number or {score: number, ...}, got ${got}`);
  }
  const { score, n, itemsUsed, stderr, ci, items, error, ...rest } = value;
  const details = Object.keys(rest).length > 0 ? toJson(rest) : null;
  if (!Number.isFinite(score)) return failed(`${where}: ${typeof error === 'string' && error !== '' ? error : `score ${String(score)}`}`, details);
  const given = typeof n === 'number' ? n : itemsUsed;
  const itemList: NewItemResult[] = [];
  if (Array.isArray(items)) {
    items.forEach((it, i) => {
      const correct = isRecord(it) && typeof it.correct === 'boolean' ? it.correct : null;
      const s = isRecord(it) && typeof it.score === 'number' ? it.score : correct === null ? Number.NaN : correct ? 1 : 0;
      if (!isRecord(it) || (typeof it.id !== 'string' && typeof it.id !== 'number') || !Number.isFinite(s)) {
        throw new EvaluatorError('EVALUATOR_RESULT', `${where}: items[${i}] must be {id, correct?: boolean, score?: finite number} with correct or score`);
      }
      itemList.push({ objective, itemId: String(it.id), score: s, correct });
    });
  }
  const count = typeof given === 'number' && Number.isSafeInteger(given) && given >= 0 ? given : itemList.length > 0 ? itemList.length : 1;
  const ciPair = Array.isArray(ci) && ci.length === 2 ? ci : null;
  return {
    score: { value: score, n: count, stderr: finiteOrNull(stderr), ciLow: ciPair ? finiteOrNull(ciPair[0]) : null, ciHigh: ciPair ? finiteOrNull(ciPair[1]) : null },
    itemsUsed: count,
    items: itemList,
    details,
    failure: null,
  };
}

function isEvaluatorObject(v: unknown): v is Evaluator {
  return isRecord(v) && typeof v.evaluate === 'function' && typeof v.name === 'string';
}

function needOf(v: unknown, where: string): EvaluatorNeed {
  if (v === 'hf-dir' || v === 'backend' || v === 'gguf') return v;
  throw new EvaluatorError('EVALUATOR_MODULE', `${where}: export needs must be 'hf-dir', 'backend' or 'gguf', got ${JSON.stringify(v)}`);
}

/** Adapts a src/eval Evaluator (a built-in, or a module's `evaluator` export) to one objective. */
function fromEvaluator(objective: ObjectiveSpec, evaluator: Evaluator): ObjectiveEvaluator {
  const order = evaluator.subsetOrder?.bind(evaluator);
  return {
    objective: objective.name,
    needs: evaluator.needs,
    ...(order !== undefined ? { subsetOrder: (seed: number) => order('search', seed) } : {}),
    async evaluate(candidate, context) {
      const result = await evaluator.evaluate(
        { id: candidate.id, dir: candidate.dir, gguf: candidate.gguf, config: candidate.config, genome: candidate.genome },
        { limit: context.limit, seed: context.seed, split: 'search', itemIds: context.itemIds },
        { backend: context.backend, signal: context.signal },
      );
      if (!Number.isFinite(result.score)) return failed(`evaluator ${evaluator.name} (objective ${objective.name}) scored ${result.score}`, toJson(result.details));
      return objectiveRecordOf(objective.name, result);
    },
  };
}

/** Loads a user evaluator module for one objective. */
async function fromModule(objective: ObjectiveSpec, modulePath: string): Promise<ObjectiveEvaluator> {
  if (!existsSync(modulePath)) throw new EvaluatorError('EVALUATOR_NOT_FOUND', `objective ${objective.name}: evaluator module ${modulePath} does not exist`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  } catch (err) {
    const why = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    throw new EvaluatorError('EVALUATOR_MODULE', `objective ${objective.name}: cannot load evaluator module ${modulePath}: ${why}`, { cause: err });
  }
  if (isEvaluatorObject(mod.evaluator)) return fromEvaluator(objective, mod.evaluator);
  const fn = typeof mod.evaluate === 'function' ? mod.evaluate : mod.default;
  if (typeof fn !== 'function') throw new EvaluatorError('EVALUATOR_MODULE', `objective ${objective.name}: ${modulePath} exports no function 'evaluate' (nor a default function)`);
  const where = `evaluator ${modulePath} (objective ${objective.name})`;
  const needs = needOf(mod.needs ?? 'hf-dir', where);
  const evaluate = fn as UserEvaluatorFunction;
  const options = objective.limit === null ? objective.options : { ...objective.options, limit: objective.limit };
  const order = mod.subsetOrder;
  if (order !== undefined && typeof order !== 'function') throw new EvaluatorError('EVALUATOR_MODULE', `${where}: export subsetOrder must be a function (options, {split, seed}) → item ids`);
  return {
    objective: objective.name,
    needs,
    ...(typeof order === 'function'
      ? {
          subsetOrder: async (seed: number) => {
            const ids: unknown = await (order as (o: unknown, c: unknown) => unknown)(options, { split: 'search', seed });
            if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string' && typeof id !== 'number')) {
              throw new EvaluatorError('EVALUATOR_RESULT', `${where}: subsetOrder must return a list of item ids (strings or numbers)`);
            }
            return ids.map(String);
          },
        }
      : {}),
    async evaluate(candidate, context) {
      let value: unknown;
      try {
        value = await evaluate(candidate, options, context);
      } catch (err) {
        if (err instanceof EvoError) throw err;
        const message = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
        throw new EvaluatorError('EVALUATOR_FAILED', `${where} failed on candidate ${candidate.id}: ${message}`, { cause: err });
      }
      return outcomeOf(value, where, objective.name);
    },
  };
}

/** The evaluator of one objective: a built-in by name (options resolved against the space's folder) or a module. */
export async function loadObjectiveEvaluator(objective: ObjectiveSpec, spaceDir: string): Promise<ObjectiveEvaluator> {
  const ref = objective.evaluator;
  if (ref.kind === 'module') return fromModule(objective, ref.module);
  return fromEvaluator(objective, await createEvaluator(ref, objective.options, { baseDir: spaceDir }));
}

/** Every objective's evaluator, in the space's order. */
export async function loadEvaluators(space: RunSpace): Promise<ObjectiveEvaluator[]> {
  const out: ObjectiveEvaluator[] = [];
  for (const o of space.objectives) out.push(await loadObjectiveEvaluator(o, space.spaceDir));
  return out;
}
