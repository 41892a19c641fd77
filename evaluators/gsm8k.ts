import { loadGsm8k } from '../src/eval/datasets.js';
import type { Gsm8kRecord, Gsm8kSplit } from '../src/eval/datasets.js';
import { summarizeItems } from '../src/eval/stats.js';
import { seededOrder } from '../src/eval/subset.js';
import { budgetSplit, DEFAULT_CHUNK_ITEMS, EvaluatorError, inChunks, intOption, pickItems, requireBackend } from '../src/eval/task-run.js';
import type { Candidate, EvalBudget, EvalContext, EvalSplit, EvaluationResult, Evaluator, ItemResult, JsonObject } from '../src/eval/types.js';

/**
 * GSM8K in lm-eval-harness's `gsm8k` format: k solved train problems as
 * "Question: <q>\nAnswer: <full solution>\n\n", then "Question: <q>\nAnswer:", greedy decoding
 * until "Question:" or a blank-line run, and exact match of the final number, extracted two
 * ways: strict (the number after "#### ") and flexible (the last number in the text).
 * Search split: train (the shots are drawn from it too and never scored); test split: test.
 */

export type Gsm8kMetric = 'strict' | 'flexible';

export interface Gsm8kOptions {
  /** Folder with gsm8k/{train,test}.jsonl (see src/eval/datasets.ts resolveDataDir). */
  readonly dataDir: string;
  /** Solved examples before each question. Default: 5. */
  readonly shots?: number;
  /** Seed that picks the shots (the same shots for every item and candidate). Default: 1234. */
  readonly fewshotSeed?: number;
  /** Most tokens generated per answer. Default: 256 (lm-eval's max_gen_toks). */
  readonly maxTokens?: number;
  /** The primary score. Default: 'strict'. */
  readonly metric?: Gsm8kMetric;
  /** Items per backend call. Default: 16. */
  readonly chunkItems?: number;
}

/** Generation stops at the next question or at a run of blank lines. */
export const GSM8K_STOP: readonly string[] = ['Question:', '\n\n\n'];

/** The few-shot block: each solved example followed by a blank line. */
export function gsm8kFewshotPrefix(shots: readonly Pick<Gsm8kRecord, 'question' | 'answer'>[]): string {
  return shots.map((s) => `Question: ${s.question}\nAnswer: ${s.answer}\n\n`).join('');
}

export function gsm8kPrompt(fewshotPrefix: string, question: string): string {
  return `${fewshotPrefix}Question: ${question}\nAnswer:`;
}

/** Removes what exact match ignores: thousands separators, dollar signs, a final period, outer spaces. */
export function normalizeNumber(text: string): string {
  return text.replace(/[,$]/g, '').trim().replace(/\.$/, '');
}

/** The number after the first "#### " (normalized), or null. */
export function extractStrict(text: string): string | null {
  const m = /#### (-?[0-9.,]+)/.exec(text);
  return m?.[1] === undefined ? null : normalizeNumber(m[1]);
}

/** The last number in the text (normalized; "$1,000.50" → "1000.50"), or null. */
export function extractFlexible(text: string): string | null {
  const all = text.match(/-?\$?[0-9][0-9,]*(?:\.[0-9]+)?/g);
  const last = all?.at(-1);
  return last === undefined ? null : normalizeNumber(last);
}

/** The gold answer of a GSM8K solution: the text after its last "#### ", normalized. */
export function gsm8kGold(solution: string): string {
  const at = solution.lastIndexOf('####');
  return normalizeNumber(solution.slice(at + 4));
}

function dataSplit(split: EvalSplit): Gsm8kSplit {
  return split === 'test' ? 'test' : 'train';
}

export class Gsm8kEvaluator implements Evaluator {
  readonly name = 'gsm8k';
  readonly needs = 'backend' as const;
  private readonly options: Required<Omit<Gsm8kOptions, 'dataDir'>> & { dataDir: string };
  private readonly data = new Map<Gsm8kSplit, Promise<Gsm8kRecord[]>>();

  constructor(options: Gsm8kOptions) {
    const metric = options.metric ?? 'strict';
    if (metric !== 'strict' && metric !== 'flexible') throw new EvaluatorError('BAD_EVALUATOR_OPTION', `gsm8k: option metric must be strict or flexible, got ${JSON.stringify(metric)}`);
    this.options = {
      dataDir: options.dataDir,
      shots: intOption('gsm8k', 'shots', options.shots, 5),
      fewshotSeed: intOption('gsm8k', 'fewshotSeed', options.fewshotSeed, 1234),
      maxTokens: intOption('gsm8k', 'maxTokens', options.maxTokens, 256, 1),
      metric,
      chunkItems: intOption('gsm8k', 'chunkItems', options.chunkItems, DEFAULT_CHUNK_ITEMS, 1),
    };
  }

  private load(split: Gsm8kSplit): Promise<Gsm8kRecord[]> {
    let p = this.data.get(split);
    if (p === undefined) {
      p = loadGsm8k(this.options.dataDir, split);
      this.data.set(split, p);
      p.catch(() => this.data.delete(split));
    }
    return p;
  }

  /** The few-shot examples (fixed by fewshotSeed) and the prompt prefix they make. */
  async fewshot(): Promise<{ shots: Gsm8kRecord[]; prefix: string }> {
    const train = await this.load('train');
    const shots = seededOrder(train, this.options.fewshotSeed, 'gsm8k-fewshot').slice(0, this.options.shots);
    return { shots, prefix: gsm8kFewshotPrefix(shots) };
  }

  /** The items a split offers for scoring: the shots are never scored. */
  private async pool(split: EvalSplit): Promise<Gsm8kRecord[]> {
    const records = await this.load(dataSplit(split));
    if (split === 'test') return records;
    const shotIds = new Set((await this.fewshot()).shots.map((s) => s.id));
    return records.filter((r) => !shotIds.has(r.id));
  }

  async subsetOrder(split: EvalSplit, seed: number): Promise<readonly string[]> {
    return seededOrder((await this.pool(split)).map((r) => r.id), seed, 'gsm8k');
  }

  async evaluate(_candidate: Candidate, budget: EvalBudget, ctx: EvalContext): Promise<EvaluationResult> {
    const started = performance.now();
    const backend = requireBackend(ctx, this.name);
    const split = budgetSplit(budget);
    const pool = await this.pool(split);
    const items = pickItems(pool, budget.itemIds ?? (await this.subsetOrder(split, budget.seed)), budget, this.name);
    const { shots, prefix } = await this.fewshot();
    const outputs = await inChunks(items, this.options.chunkItems, ctx, this.name, (chunk) =>
      backend.generate(
        chunk.map((r) => ({ prompt: gsm8kPrompt(prefix, r.question), stop: GSM8K_STOP, maxTokens: this.options.maxTokens })),
        ctx.signal,
      ),
    );
    const strict: ItemResult[] = [];
    const flexible: ItemResult[] = [];
    const samples: JsonObject[] = [];
    let generated = 0;
    items.forEach((r, i) => {
      const text = outputs[i]?.text ?? '';
      generated += outputs[i]?.tokens ?? 0;
      const gold = gsm8kGold(r.answer);
      const s = extractStrict(text);
      const f = extractFlexible(text);
      strict.push({ id: r.id, correct: s === gold, score: s === gold ? 1 : 0 });
      flexible.push({ id: r.id, correct: f === gold, score: f === gold ? 1 : 0 });
      if (samples.length < 3) samples.push({ id: r.id, gold, response: text, strict: s, flexible: f });
    });
    const primary = this.options.metric === 'strict' ? strict : flexible;
    const ps = summarizeItems(primary);
    const ss = summarizeItems(strict);
    const fs = summarizeItems(flexible);
    return {
      score: ps.score,
      ci: ps.ci,
      stderr: ps.stderr,
      itemsUsed: ps.n,
      seconds: (performance.now() - started) / 1000,
      items: primary,
      details: {
        metric: this.options.metric,
        split: dataSplit(split),
        shots: shots.length,
        fewshotIds: shots.map((s) => s.id),
        maxTokens: this.options.maxTokens,
        strict: { score: ss.score, ciLow: ss.ci[0], ciHigh: ss.ci[1], n: ss.n },
        flexible: { score: fs.score, ciLow: fs.ci[0], ciHigh: fs.ci[1], n: fs.n },
        generatedTokens: generated,
        samples,
      },
    };
  }
}
