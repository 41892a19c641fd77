import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { GenericTaskEvaluator } from '../../evaluators/generic.js';
import { Gsm8kEvaluator } from '../../evaluators/gsm8k.js';
import { MmluEvaluator } from '../../evaluators/mmlu.js';
import { EvoError } from '../errors.js';
import { CommandEvaluator } from './command.js';
import { resolveDataDir } from './datasets.js';
import { summarizeItems } from './stats.js';
import type {
  Candidate,
  EvalBudget,
  EvalContext,
  EvaluationResult,
  Evaluator,
  EvaluatorNeeds,
  ItemResult,
  JsonObject,
  JsonValue,
  UserEvaluateFunction,
} from './types.js';

/**
 * Evaluators by name (the search space's `evaluator: gsm8k`) and user modules by path
 * (`evaluator: {module: ./my-eval.mjs}`). Options come from the objective's `options:` mapping,
 * in the space file's snake_case; unknown keys are errors that name the key.
 */

export class EvaluatorRegistryError extends EvoError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'EvaluatorRegistryError';
  }
}

/** The same shape as the search space's EvaluatorRef. */
export type EvaluatorReference = { readonly kind: 'builtin'; readonly name: string } | { readonly kind: 'module'; readonly module: string };

export const BUILTIN_EVALUATORS = ['gsm8k', 'mmlu', 'generic', 'command'] as const;
export type BuiltinEvaluatorName = (typeof BUILTIN_EVALUATORS)[number];

export interface EvaluatorSettings {
  /** Folder that relative paths in options resolve against (the space file's folder). Default: cwd. */
  readonly baseDir?: string;
  /** `--data-dir` from the command line, which wins over `data_dir` in options. Default: none. */
  readonly dataDirFlag?: string | undefined;
  /** Default: process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const dataDir = z.string().min(1).optional();
const chunkItems = z.number().int().min(1).optional();

const SCHEMAS = {
  gsm8k: z
    .object({ data_dir: dataDir, shots: z.number().int().min(0).optional(), fewshot_seed: z.number().int().optional(), max_tokens: z.number().int().min(1).optional(), metric: z.enum(['strict', 'flexible']).optional(), chunk_items: chunkItems })
    .strict(),
  mmlu: z.object({ data_dir: dataDir, shots: z.number().int().min(0).max(5).optional(), subjects: z.array(z.string().min(1)).min(1).optional(), average: z.enum(['micro', 'macro']).optional(), chunk_items: chunkItems }).strict(),
  generic: z.object({ task: z.string().min(1), chunk_items: chunkItems }).strict(),
  command: z
    .object({
      command: z.string().min(1),
      score_path: z.string().min(1),
      stderr_path: z.string().min(1).optional(),
      items_path: z.string().min(1).optional(),
      items: z.number().int().min(0).optional(),
      timeout_s: z.number().positive().optional(),
      cwd: z.string().min(1).optional(),
      env: z.record(z.string(), z.string()).optional(),
    })
    .strict(),
} as const;

function parseOptions<K extends BuiltinEvaluatorName>(name: K, options: Readonly<Record<string, unknown>>): z.infer<(typeof SCHEMAS)[K]> {
  const res = SCHEMAS[name].safeParse(options);
  if (res.success) return res.data as z.infer<(typeof SCHEMAS)[K]>;
  const issue = res.error.issues[0];
  const key = issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : (issue?.path.join('.') ?? '');
  const why = issue?.code === 'unrecognized_keys' ? `unknown option; ${name} takes ${Object.keys(SCHEMAS[name].shape).join(', ')}` : (issue?.message ?? 'invalid');
  throw new EvaluatorRegistryError('BAD_EVALUATOR_OPTION', `evaluator ${name}: options.${key}: ${why}`);
}

/** Makes the evaluator an objective names. */
export async function createEvaluator(ref: EvaluatorReference, options: Readonly<Record<string, unknown>>, settings: EvaluatorSettings = {}): Promise<Evaluator> {
  const base = settings.baseDir ?? process.cwd();
  if (ref.kind === 'module') return loadUserEvaluator(path.resolve(base, ref.module), options);
  const dirFor = (given: string | undefined): string =>
    resolveDataDir({ flag: settings.dataDirFlag, space: given === undefined ? undefined : path.resolve(base, given), ...(settings.env ? { env: settings.env } : {}) }).dir;
  switch (ref.name) {
    case 'gsm8k': {
      const o = parseOptions('gsm8k', options);
      return new Gsm8kEvaluator({
        dataDir: dirFor(o.data_dir),
        ...(o.shots === undefined ? {} : { shots: o.shots }),
        ...(o.fewshot_seed === undefined ? {} : { fewshotSeed: o.fewshot_seed }),
        ...(o.max_tokens === undefined ? {} : { maxTokens: o.max_tokens }),
        ...(o.metric === undefined ? {} : { metric: o.metric }),
        ...(o.chunk_items === undefined ? {} : { chunkItems: o.chunk_items }),
      });
    }
    case 'mmlu': {
      const o = parseOptions('mmlu', options);
      return new MmluEvaluator({
        dataDir: dirFor(o.data_dir),
        ...(o.shots === undefined ? {} : { shots: o.shots }),
        ...(o.subjects === undefined ? {} : { subjects: o.subjects }),
        ...(o.average === undefined ? {} : { average: o.average }),
        ...(o.chunk_items === undefined ? {} : { chunkItems: o.chunk_items }),
      });
    }
    case 'generic': {
      const o = parseOptions('generic', options);
      return GenericTaskEvaluator.fromPath(o.task, base, o.chunk_items === undefined ? {} : { chunkItems: o.chunk_items });
    }
    case 'command': {
      const o = parseOptions('command', options);
      return new CommandEvaluator({
        command: o.command,
        scorePath: o.score_path,
        ...(o.stderr_path === undefined ? {} : { stderrPath: o.stderr_path }),
        ...(o.items_path === undefined ? {} : { itemsPath: o.items_path }),
        ...(o.items === undefined ? {} : { items: o.items }),
        ...(o.timeout_s === undefined ? {} : { timeoutMs: o.timeout_s * 1000 }),
        cwd: path.resolve(base, o.cwd ?? '.'),
        ...(o.env === undefined ? {} : { env: o.env }),
      });
    }
    default:
      throw new EvaluatorRegistryError('UNKNOWN_EVALUATOR', `unknown evaluator ${JSON.stringify(ref.name)}; built-in evaluators: ${BUILTIN_EVALUATORS.join(', ')}, or {module: ./path/to/evaluator.mjs}`);
  }
}

function toJson(value: unknown): JsonValue {
  try {
    return (JSON.parse(JSON.stringify(value ?? null)) as JsonValue) ?? null;
  } catch {
    return String(value);
  }
}

function userResultError(module: string, message: string): EvaluatorRegistryError {
  return new EvaluatorRegistryError('USER_EVALUATOR_RESULT', `${module}: evaluate() ${message}`);
}

/** Turns what a user's evaluate() returned into an EvaluationResult (see UserEvaluateFunction). */
export function adaptUserResult(module: string, value: unknown, seconds: number): EvaluationResult {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw userResultError(module, `returned ${value}, not a finite score`);
    return { score: value, ci: null, stderr: null, itemsUsed: 0, seconds, items: [], details: {} };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw userResultError(module, `must return a number or {score, ...}, got ${JSON.stringify(value) ?? typeof value}`);
  const { score, ci, stderr, itemsUsed, n: count, items, error, ...rest } = value as Record<string, unknown>;
  if (typeof score !== 'number' || !Number.isFinite(score)) {
    throw userResultError(module, `returned score ${String(score)}, not a finite number${typeof error === 'string' && error !== '' ? ` (${error})` : ''}`);
  }
  let itemResults: ItemResult[] = [];
  if (items !== undefined) {
    if (!Array.isArray(items)) throw userResultError(module, 'returned items that is not an array');
    itemResults = items.map((it: unknown, i) => {
      const r = it as { id?: unknown; correct?: unknown; score?: unknown } | null;
      if (r === null || typeof r !== 'object' || (typeof r.id !== 'string' && typeof r.id !== 'number')) throw userResultError(module, `items[${i}] needs an id`);
      const correct = typeof r.correct === 'boolean' ? r.correct : null;
      const s = typeof r.score === 'number' ? r.score : correct === null ? NaN : correct ? 1 : 0;
      if (!Number.isFinite(s)) throw userResultError(module, `items[${i}] needs correct (boolean) or score (number)`);
      return { id: String(r.id), correct, score: s };
    });
  }
  let interval: [number, number] | null = null;
  if (ci !== undefined && ci !== null) {
    if (!Array.isArray(ci) || ci.length !== 2 || typeof ci[0] !== 'number' || typeof ci[1] !== 'number' || !(ci[0] <= ci[1])) {
      throw userResultError(module, `returned ci ${JSON.stringify(ci)}; expected [low, high] with low ≤ high`);
    }
    interval = [ci[0], ci[1]];
  }
  const summary = itemResults.length > 0 ? summarizeItems(itemResults) : undefined;
  if (interval === null && summary !== undefined) interval = summary.ci;
  const se = typeof stderr === 'number' ? stderr : (summary?.stderr ?? null);
  const n = typeof itemsUsed === 'number' ? itemsUsed : typeof count === 'number' ? count : itemResults.length;
  return { score, ci: interval, stderr: se, itemsUsed: n, seconds, items: itemResults, details: toJson(rest) as JsonObject };
}

function isEvaluatorObject(v: unknown): v is Evaluator {
  const e = v as Partial<Evaluator> | null;
  return typeof e === 'object' && e !== null && typeof e.evaluate === 'function' && typeof e.name === 'string';
}

/**
 * Loads a user evaluator module. It exports `evaluate(candidate, options, context)` (or a
 * default function), and optionally `needs` ('hf-dir' — the default —, 'gguf' or 'backend');
 * or it exports `evaluator`, an object implementing the full Evaluator interface.
 */
export async function loadUserEvaluator(modulePath: string, options: Readonly<Record<string, unknown>>): Promise<Evaluator> {
  if (!existsSync(modulePath)) throw new EvaluatorRegistryError('USER_EVALUATOR_MISSING', `${modulePath}: evaluator module not found`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  } catch (err) {
    throw new EvaluatorRegistryError('USER_EVALUATOR_INVALID', `${modulePath}: cannot import: ${(err as Error).message.split('\n')[0] ?? ''}`, { cause: err });
  }
  if (isEvaluatorObject(mod.evaluator)) return mod.evaluator;
  const fn = typeof mod.evaluate === 'function' ? mod.evaluate : typeof mod.default === 'function' ? mod.default : undefined;
  if (fn === undefined) throw new EvaluatorRegistryError('USER_EVALUATOR_INVALID', `${modulePath}: exports no evaluate function (export async function evaluate(candidate, options, context))`);
  const needs = mod.needs ?? 'hf-dir';
  if (needs !== 'hf-dir' && needs !== 'gguf' && needs !== 'backend') throw new EvaluatorRegistryError('USER_EVALUATOR_INVALID', `${modulePath}: export needs must be 'hf-dir', 'gguf' or 'backend', got ${JSON.stringify(needs)}`);
  const evaluate = fn as UserEvaluateFunction;
  const name = `module:${path.basename(modulePath)}`;
  return {
    name,
    needs: needs as EvaluatorNeeds,
    async evaluate(candidate: Candidate, budget: EvalBudget, ctx: EvalContext): Promise<EvaluationResult> {
      const started = performance.now();
      const value: unknown = await evaluate(candidate, options, {
        limit: budget.limit,
        seed: budget.seed,
        split: budget.split ?? 'search',
        itemIds: budget.itemIds,
        backend: ctx.backend,
        signal: ctx.signal,
      });
      return adaptUserResult(modulePath, value, (performance.now() - started) / 1000);
    },
  };
}

/** Which candidate formats a set of evaluators needs, given the backend's own need. */
export function neededFormats(evaluators: readonly Evaluator[], backendNeeds: 'gguf' | 'hf-dir' | undefined): Set<'gguf' | 'hf-dir'> {
  const out = new Set<'gguf' | 'hf-dir'>(['hf-dir']);
  for (const e of evaluators) {
    if (e.needs === 'gguf') out.add('gguf');
    else if (e.needs === 'backend' && backendNeeds === 'gguf') out.add('gguf');
  }
  return out;
}

/**
 * One objective's result as the search runner records it (the shape of the runner's
 * ObjectiveOutcome and the store's ObjectiveScore / NewItemResult).
 */
export interface ObjectiveRecord {
  readonly score: { readonly value: number; readonly n: number; readonly stderr: number | null; readonly ciLow: number | null; readonly ciHigh: number | null };
  readonly itemsUsed: number;
  readonly items: readonly { readonly objective: string; readonly itemId: string; readonly correct: boolean | null; readonly score: number }[];
  readonly details: JsonValue;
  readonly failure: null;
}

/** Converts an EvaluationResult for the run store, tagging each item with the objective's name. */
export function objectiveRecordOf(objective: string, result: EvaluationResult): ObjectiveRecord {
  return {
    score: { value: result.score, n: result.itemsUsed, stderr: result.stderr, ciLow: result.ci?.[0] ?? null, ciHigh: result.ci?.[1] ?? null },
    itemsUsed: result.itemsUsed,
    items: result.items.map((i) => ({ objective, itemId: i.id, correct: i.correct, score: i.score })),
    details: { ...result.details, seconds: result.seconds },
    failure: null,
  };
}
