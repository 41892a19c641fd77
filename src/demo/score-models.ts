import path from 'node:path';
import { GenericTaskEvaluator } from '../../evaluators/generic.js';
import type { LlamaCppBackend } from '../eval/backend.js';
import { wilsonInterval } from '../eval/stats.js';
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

function count(items: readonly { readonly correct: boolean | null }[]): TaskCount {
  return { correct: items.filter((i) => i.correct === true).length, n: items.length };
}

/** Both tasks' counts for the HF model folder `dir`; `limit` items per task (a seeded subset), Infinity for all. */
export async function scoreDemoModel(backend: LlamaCppBackend, tasks: DemoTasks, id: string, dir: string, split: EvalSplit, limit: number): Promise<DemoScores> {
  const candidate = { id: id.replace(/[^\w.-]+/g, '_'), dir, config: null, genome: {} };
  await backend.useModel(candidate);
  const budget = { limit, seed: 0, split };
  const math = await tasks.math.evaluate(candidate, budget, { backend });
  const facts = await tasks.facts.evaluate(candidate, budget, { backend });
  return { math: count(math.items), facts: count(facts.items) };
}

export function pooled(s: DemoScores): TaskCount {
  return { correct: s.math.correct + s.facts.correct, n: s.math.n + s.facts.n };
}

/** "62.5% [55.1, 69.3]": accuracy and its Wilson 95% interval, in percent. */
export function formatCount(c: TaskCount): string {
  const [lo, hi] = wilsonInterval(c.correct, c.n);
  const pct = (x: number): string => (100 * x).toFixed(1).padStart(5);
  return `${pct(c.correct / c.n)}% [${pct(lo)}, ${pct(hi)}]`;
}
