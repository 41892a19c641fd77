import { seededOrder } from '../src/eval/subset.js';
import { budgetSplit, DEFAULT_CHUNK_ITEMS, EvaluatorError, inChunks, pickItems, requireBackend, taskResult } from '../src/eval/task-run.js';
import type { Candidate, EvalBudget, EvalContext, EvalSplit, EvaluationResult, Evaluator, ItemResult, JsonObject, LoglikelihoodResult } from '../src/eval/types.js';
import { loadTaskDefinition, loadTaskItems } from './generic-task-file.js';
import type { AnswerNormalizer, ChoiceItem, GenerateItem, LengthNormalization, TaskDefinition, TaskItem } from './generic-task-file.js';

export { loadTaskDefinition, loadTaskItems };
export type { AnswerNormalizer, ChoiceItem, GenerateItem, GenericTaskType, LengthNormalization, TaskDefinition, TaskFields, TaskItem } from './generic-task-file.js';

/**
 * The generic task evaluator: scores a task read by generic-task-file.ts (the file format is
 * documented there) by greedy generation + answer extraction, or by the log-likelihood of each
 * choice.
 */

/** Applies the task's normalizers in order. */
export function normalizeAnswer(value: string, normalizers: readonly AnswerNormalizer[]): string {
  let v = value;
  for (const n of normalizers) {
    switch (n) {
      case 'trim':
        v = v.trim();
        break;
      case 'lowercase':
        v = v.toLowerCase();
        break;
      case 'no_commas':
        v = v.replace(/,/g, '');
        break;
      case 'no_dollar':
        v = v.replace(/\$/g, '');
        break;
      case 'no_trailing_period':
        v = v.replace(/\.$/, '');
        break;
      case 'collapse_spaces':
        v = v.replace(/\s+/g, ' ');
        break;
      default: {
        const never: never = n;
        throw new EvaluatorError('BAD_EVALUATOR_OPTION', `unknown normalizer ${String(never)}`);
      }
    }
  }
  return v;
}

/** The answer in a generation: the regex's first group (or match), first or last match; the whole text without a regex. */
export function extractAnswer(output: string, regex: RegExp | null, which: 'first' | 'last'): string | null {
  if (regex === null) return output;
  const matches = [...output.matchAll(new RegExp(regex.source, regex.flags.includes('g') ? regex.flags : `${regex.flags}g`))];
  const m = which === 'first' ? matches[0] : matches.at(-1);
  if (m === undefined) return null;
  return m[1] ?? m[0];
}

/** Choice scores after length normalization. */
export function choiceScores(results: readonly LoglikelihoodResult[], choices: readonly string[], mode: LengthNormalization): number[] {
  return results.map((r, i) => {
    if (mode === 'bytes') return r.logprob / Math.max(1, Buffer.byteLength(choices[i] ?? ''));
    if (mode === 'tokens') return r.logprob / Math.max(1, r.tokens);
    return r.logprob;
  });
}

export interface GenericTaskOptions {
  /** Items per backend call. Default: 16. */
  readonly chunkItems?: number;
}

export class GenericTaskEvaluator implements Evaluator {
  readonly name: string;
  readonly needs = 'backend' as const;
  readonly task: TaskDefinition;
  private readonly chunkItems: number;
  private readonly data = new Map<string, Promise<TaskItem[]>>();

  constructor(task: TaskDefinition, options: GenericTaskOptions = {}) {
    this.task = task;
    this.name = `generic:${task.name}`;
    this.chunkItems = options.chunkItems ?? DEFAULT_CHUNK_ITEMS;
  }

  /** Reads a task (see loadTaskDefinition) and makes its evaluator. */
  static async fromPath(taskPath: string, baseDir?: string, options: GenericTaskOptions = {}): Promise<GenericTaskEvaluator> {
    return new GenericTaskEvaluator(await loadTaskDefinition(taskPath, baseDir), options);
  }

  private load(which: 'search' | 'test' | 'fewshot'): Promise<TaskItem[]> {
    const file = which === 'fewshot' ? this.task.splits.fewshot : this.task.splits[which];
    if (file === null) return Promise.resolve([]);
    let p = this.data.get(which);
    if (p === undefined) {
      p = loadTaskItems(this.task, file, which === 'fewshot' ? 'train' : which);
      this.data.set(which, p);
      p.catch(() => this.data.delete(which));
    }
    return p;
  }

  async subsetOrder(split: EvalSplit, seed: number): Promise<readonly string[]> {
    return seededOrder((await this.load(split)).map((r) => r.id), seed, this.name);
  }

  /** The few-shot prefix (the same examples for every item). */
  async fewshotPrefix(): Promise<string> {
    if (this.task.shots === 0) return '';
    const shots = seededOrder(await this.load('fewshot'), this.task.fewshotSeed, `${this.name}:fewshot`).slice(0, this.task.shots);
    const t = this.task;
    return shots
      .map((s) => (s.kind === 'generate' ? `${s.prompt}${t.targetDelimiter}${s.target}` : `${s.question}${t.targetDelimiter}${s.choices[s.answer] ?? ''}`) + t.fewshotSeparator)
      .join('');
  }

  async evaluate(_candidate: Candidate, budget: EvalBudget, ctx: EvalContext): Promise<EvaluationResult> {
    const started = performance.now();
    const backend = requireBackend(ctx, this.name);
    const split = budgetSplit(budget);
    const records = await this.load(split);
    const items = pickItems(records, budget.itemIds ?? (await this.subsetOrder(split, budget.seed)), budget, this.name);
    const prefix = await this.fewshotPrefix();
    const t = this.task;
    const results: ItemResult[] = [];
    const samples: JsonObject[] = [];
    if (t.type === 'generate') {
      const gen = items.filter((i): i is GenerateItem => i.kind === 'generate');
      const outputs = await inChunks(gen, this.chunkItems, ctx, this.name, (chunk) =>
        backend.generate(chunk.map((r) => ({ prompt: prefix + r.prompt, stop: t.stop, maxTokens: t.maxTokens })), ctx.signal),
      );
      gen.forEach((r, i) => {
        const output = outputs[i]?.text ?? '';
        const got = extractAnswer(output, t.answerRegex, t.regexMatch);
        const correct = got !== null && normalizeAnswer(got, t.normalize) === normalizeAnswer(r.answer, t.normalize);
        results.push({ id: r.id, correct, score: correct ? 1 : 0 });
        if (samples.length < 3) samples.push({ id: r.id, gold: r.answer, response: output, extracted: got });
      });
    } else {
      const mc = items.filter((i): i is ChoiceItem => i.kind === 'multiple_choice');
      const lls = await inChunks(mc, this.chunkItems, ctx, this.name, async (chunk) => {
        const requests = chunk.flatMap((r) => r.choices.map((c) => ({ context: prefix + r.question, continuation: t.targetDelimiter + c })));
        const out = await backend.loglikelihood(requests, ctx.signal);
        let at = 0;
        return chunk.map((r) => {
          const part = out.slice(at, at + r.choices.length);
          at += r.choices.length;
          return part;
        });
      });
      mc.forEach((r, i) => {
        const scores = choiceScores(lls[i] ?? [], r.choices.map((c) => t.targetDelimiter + c), t.lengthNormalization);
        let best = 0;
        scores.forEach((s, j) => {
          if (s > (scores[best] ?? -Infinity)) best = j;
        });
        const correct = best === r.answer;
        results.push({ id: r.id, correct, score: correct ? 1 : 0 });
        if (samples.length < 3) samples.push({ id: r.id, gold: r.answer, chosen: best, scores });
      });
    }
    return taskResult(results, started, { task: t.name, type: t.type, split, shots: t.shots, samples });
  }
}
