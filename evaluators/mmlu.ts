import { CHOICE_LETTERS, loadMmlu, mmluSubjects } from '../src/eval/datasets.js';
import type { MmluRecord, MmluSplit } from '../src/eval/datasets.js';
import { macroAverage, summarizeItems } from '../src/eval/stats.js';
import { stratifiedOrder } from '../src/eval/subset.js';
import { budgetSplit, DEFAULT_CHUNK_ITEMS, EvaluatorError, inChunks, intOption, pickItems, requireBackend } from '../src/eval/task-run.js';
import type { Candidate, EvalBudget, EvalContext, EvalSplit, EvaluationResult, Evaluator, ItemResult, JsonObject, LoglikelihoodResult } from '../src/eval/types.js';

/**
 * MMLU with the original paper's prompt (Hendrycks et al., evaluate.py): a header naming the
 * subject, the first k dev questions of that subject with their answers, then the question,
 * scored by the log-likelihood of " A", " B", " C" and " D" after "Answer:". Search split: val;
 * test split: test. Subsets are stratified by subject; the primary score is the micro average
 * (all items weigh the same), and the macro average (all subjects weigh the same) is reported.
 */

export type MmluAverage = 'micro' | 'macro';

export interface MmluOptions {
  /** Folder with mmlu/<subject>_{dev,val,test}.csv. */
  readonly dataDir: string;
  /** Dev examples before each question (at most 5 exist per subject). Default: 5. */
  readonly shots?: number;
  /** Subjects to use. Default: every subject with files in the data folder. */
  readonly subjects?: readonly string[];
  /** The primary score. Default: 'micro'. */
  readonly average?: MmluAverage;
  /** Items per backend call (4 requests each). Default: 16. */
  readonly chunkItems?: number;
}

/** "high_school_biology" → "high school biology" (as the paper prints subjects). */
export function formatSubject(subject: string): string {
  return subject.split('_').join(' ');
}

export function mmluHeader(subject: string): string {
  return `The following are multiple choice questions (with answers) about ${formatSubject(subject)}.\n\n`;
}

/** A question with its lettered choices and "Answer:"; with its answer (" X\n\n") when it is a shot. */
export function mmluQuestionBlock(record: Pick<MmluRecord, 'question' | 'choices' | 'answer'>, withAnswer: boolean): string {
  let text = record.question;
  record.choices.forEach((choice, i) => (text += `\n${CHOICE_LETTERS[i] ?? '?'}. ${choice}`));
  text += '\nAnswer:';
  return withAnswer ? `${text} ${record.answer}\n\n` : text;
}

export function mmluPrompt(subject: string, shots: readonly MmluRecord[], record: MmluRecord): string {
  return mmluHeader(subject) + shots.map((s) => mmluQuestionBlock(s, true)).join('') + mmluQuestionBlock(record, false);
}

/** The continuations scored for each item. */
export const MMLU_CONTINUATIONS: readonly string[] = CHOICE_LETTERS.map((l) => ` ${l}`);

/** Index of the highest log-likelihood (the first on ties). */
export function bestChoice(results: readonly Pick<LoglikelihoodResult, 'logprob'>[]): number {
  let best = 0;
  results.forEach((r, i) => {
    if (r.logprob > (results[best]?.logprob ?? -Infinity)) best = i;
  });
  return best;
}

function dataSplit(split: EvalSplit): MmluSplit {
  return split === 'test' ? 'test' : 'val';
}

export class MmluEvaluator implements Evaluator {
  readonly name = 'mmlu';
  readonly needs = 'backend' as const;
  private readonly dataDir: string;
  private readonly shots: number;
  private readonly subjects: readonly string[] | undefined;
  private readonly average: MmluAverage;
  private readonly chunkItems: number;
  private readonly data = new Map<MmluSplit, Promise<MmluRecord[]>>();

  constructor(options: MmluOptions) {
    this.dataDir = options.dataDir;
    this.shots = intOption('mmlu', 'shots', options.shots, 5);
    this.subjects = options.subjects;
    this.average = options.average ?? 'micro';
    if (this.average !== 'micro' && this.average !== 'macro') throw new EvaluatorError('BAD_EVALUATOR_OPTION', `mmlu: option average must be micro or macro, got ${JSON.stringify(this.average)}`);
    this.chunkItems = intOption('mmlu', 'chunkItems', options.chunkItems, DEFAULT_CHUNK_ITEMS, 1);
  }

  private load(split: MmluSplit): Promise<MmluRecord[]> {
    let p = this.data.get(split);
    if (p === undefined) {
      p = (async () => loadMmlu(this.dataDir, split, this.subjects ?? (await mmluSubjects(this.dataDir, split))))();
      this.data.set(split, p);
      p.catch(() => this.data.delete(split));
    }
    return p;
  }

  /** The first `shots` dev rows of each subject (the paper's choice). */
  private async shotsBySubject(): Promise<Map<string, MmluRecord[]>> {
    const bySubject = new Map<string, MmluRecord[]>();
    for (const r of await this.load('dev')) {
      const list = bySubject.get(r.subject) ?? [];
      if (list.length < this.shots) list.push(r);
      bySubject.set(r.subject, list);
    }
    return bySubject;
  }

  async subsetOrder(split: EvalSplit, seed: number): Promise<readonly string[]> {
    return stratifiedOrder(await this.load(dataSplit(split)), (r) => r.subject, seed).map((r) => r.id);
  }

  async evaluate(_candidate: Candidate, budget: EvalBudget, ctx: EvalContext): Promise<EvaluationResult> {
    const started = performance.now();
    const backend = requireBackend(ctx, this.name);
    const split = budgetSplit(budget);
    const records = await this.load(dataSplit(split));
    const items = pickItems(records, budget.itemIds ?? (await this.subsetOrder(split, budget.seed)), budget, this.name);
    const shots = this.shots > 0 ? await this.shotsBySubject() : new Map<string, MmluRecord[]>();
    const lls = await inChunks(items, this.chunkItems, ctx, this.name, async (chunk) => {
      const requests = chunk.flatMap((r) => {
        const context = mmluPrompt(r.subject, shots.get(r.subject) ?? [], r);
        return MMLU_CONTINUATIONS.map((continuation) => ({ context, continuation }));
      });
      const out = await backend.loglikelihood(requests, ctx.signal);
      if (out.length !== requests.length) throw new EvaluatorError('BACKEND_REPLY', `mmlu: the backend answered ${out.length} of ${requests.length} requests`);
      return chunk.map((_, i) => out.slice(i * 4, i * 4 + 4));
    });
    const results: ItemResult[] = [];
    const perSubject = new Map<string, { correct: number; n: number }>();
    items.forEach((r, i) => {
      const choice = bestChoice(lls[i] ?? []);
      const correct = CHOICE_LETTERS[choice] === r.answer;
      results.push({ id: r.id, correct, score: correct ? 1 : 0 });
      const s = perSubject.get(r.subject) ?? { correct: 0, n: 0 };
      perSubject.set(r.subject, { correct: s.correct + (correct ? 1 : 0), n: s.n + 1 });
    });
    const micro = summarizeItems(results);
    const macro = macroAverage([...perSubject.values()]);
    const primary = this.average === 'micro' ? { score: micro.score, ci: micro.ci, stderr: micro.stderr } : macro;
    const subjects: Record<string, JsonObject> = {};
    for (const [name, s] of [...perSubject.entries()].sort(([a], [b]) => a.localeCompare(b))) subjects[name] = { correct: s.correct, n: s.n, accuracy: s.correct / s.n };
    return {
      score: primary.score,
      ci: primary.ci,
      stderr: primary.stderr,
      itemsUsed: results.length,
      seconds: (performance.now() - started) / 1000,
      items: results,
      details: {
        average: this.average,
        split: dataSplit(split),
        shots: this.shots,
        micro: { score: micro.score, ciLow: micro.ci[0], ciHigh: micro.ci[1], n: micro.n },
        macro: { score: macro.score, ciLow: macro.ci[0], ciHigh: macro.ci[1], subjects: macro.groups },
        subjects,
      },
    };
  }
}
