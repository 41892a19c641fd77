import { existsSync } from 'node:fs';
import path from 'node:path';
import { GenericTaskEvaluator } from '../../evaluators/generic.js';
import type { LlamaCppBackend } from '../eval/backend.js';
import { Z_95, wilsonInterval } from '../eval/stats.js';
import type { EvalSplit } from '../eval/types.js';

/** Scores models on the two demo tasks with llama.cpp (through the generic task evaluator). */

export interface TaskCount {
  readonly correct: number;
  readonly n: number;
}

export interface DemoScores {
  readonly math: TaskCount;
  readonly facts: TaskCount;
}

export interface DemoTasks {
  readonly math: GenericTaskEvaluator;
  readonly facts: GenericTaskEvaluator;
}

export async function loadDemoTasks(tasksDir: string): Promise<DemoTasks> {
  return { math: await GenericTaskEvaluator.fromPath(path.join(tasksDir, 'math')), facts: await GenericTaskEvaluator.fromPath(path.join(tasksDir, 'facts')) };
}

/** The facts task's validation questions (demo-tasks.ts) as a task of their own, or null when the tasks have none. */
export async function loadFactsValidation(tasksDir: string): Promise<GenericTaskEvaluator | null> {
  const file = path.join(tasksDir, 'facts', 'validation.jsonl');
  return existsSync(file) ? GenericTaskEvaluator.fromPath(file) : null;
}

function count(items: readonly { readonly correct: boolean | null }[]): TaskCount {
  return { correct: items.filter((i) => i.correct === true).length, n: items.length };
}

/**
 * Both tasks' counts for the HF model folder `dir`; `limit` items per task (a seeded subset),
 * Infinity for all. With `factsValidation` (loadFactsValidation), its count too, from the same
 * loaded model: the backend converts and loads a model on each useModel.
 */
export async function scoreDemoModel(
  backend: LlamaCppBackend,
  tasks: DemoTasks,
  id: string,
  dir: string,
  split: EvalSplit,
  limit: number,
  factsValidation: GenericTaskEvaluator | null = null,
): Promise<DemoScores & { readonly factsValidation?: TaskCount }> {
  const candidate = { id: id.replace(/[^\w.-]+/g, '_'), dir, config: null, genome: {} };
  await backend.useModel(candidate);
  const budget = { limit, seed: 0, split };
  const math = await tasks.math.evaluate(candidate, budget, { backend });
  const facts = await tasks.facts.evaluate(candidate, budget, { backend });
  const scores = { math: count(math.items), facts: count(facts.items) };
  // A single-file task has one split: its file whichever split is asked.
  if (factsValidation === null) return scores;
  return { ...scores, factsValidation: count((await factsValidation.evaluate(candidate, { ...budget, split: 'search' }, { backend })).items) };
}

/** The combined objective: both tasks weighted equally, whatever their item counts. */
export interface CombinedScore {
  readonly value: number;
  /** 95% interval of the mean of two independent accuracies (normal approximation, Agresti–Coull-adjusted variances). */
  readonly low: number;
  readonly high: number;
}

export function combined(s: DemoScores): CombinedScore {
  const value = (s.math.correct / s.math.n + s.facts.correct / s.facts.n) / 2;
  // (x + 2) / (n + 4) keeps the variance honest at 0/n and n/n.
  const variance = (c: TaskCount): number => {
    const p = (c.correct + 2) / (c.n + 4);
    return (p * (1 - p)) / (c.n + 4);
  };
  const half = Z_95 * 0.5 * Math.sqrt(variance(s.math) + variance(s.facts));
  return { value, low: Math.max(0, value - half), high: Math.min(1, value + half) };
}

/** "62.5% [55.1, 69.3]" for a combined score. */
export function formatCombined(c: CombinedScore): string {
  const pct = (x: number): string => (100 * x).toFixed(1).padStart(5);
  return `${pct(c.value)}% [${pct(c.low)}, ${pct(c.high)}]`;
}

/** "62.5% [55.1, 69.3]": accuracy and its Wilson 95% interval, in percent. */
export function formatCount(c: TaskCount): string {
  const [lo, hi] = wilsonInterval(c.correct, c.n);
  const pct = (x: number): string => (100 * x).toFixed(1).padStart(5);
  return `${pct(c.correct / c.n)}% [${pct(lo)}, ${pct(hi)}]`;
}
