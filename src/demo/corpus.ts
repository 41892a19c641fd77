/**
 * The demo family's training text and its batches. A document is a prompt and a completion; the
 * base learns every token (pretraining), the fine-tunes only the completions (the answers), so
 * each fine-tune moves the weights toward its skill and little else. Batches pack whole
 * documents (BOS … EOS) into rows and depend only on (seed, stage, step).
 */
import { Rng } from '../search/rng.js';
import type { BpeEncoder } from './byte-level-bpe.js';
import { type FactQuestion, type FactWorld, factQuestionDocument, inContextQuestions, mmluHeader, trainingQuestions } from './fact-world.js';
import { type MathSplits, arithmeticDrills, mathPrompt, trainingMathProblems } from './math-problems.js';

export interface Document {
  readonly prompt: string;
  readonly completion: string;
}

export type Stage = 'base' | 'math' | 'facts';

export interface CorpusSizes {
  /** Math documents in the base's corpus. */
  readonly baseMath: number;
  /** Training-fact questions in the base's corpus. */
  readonly baseQuestions: number;
  /** Times each train-split fact is stated in the base's corpus. */
  readonly baseFactRepeats: number;
  /** Documents of bare equations in the base's corpus (the tables without the task's format). */
  readonly baseEquations: number;
  /** Times every fact (all splits) is stated, asked in words and asked in words under MMLU's header in the base's corpus. */
  readonly baseWorldRepeats: number;
  readonly mathDocuments: number;
  /** Questions about train-split facts in the facts fine-tune's corpus. */
  readonly factQuestions: number;
  /** Times each fact (all splits) is stated in the facts fine-tune's corpus. */
  readonly factRepeats: number;
  /**
   * Questions about practice facts (kingdoms only the facts fine-tune learns) in its corpus. The
   * base already answers the train split's questions, so those teach the fine-tune little; these
   * make it answer letters from facts it learned itself, as the search and test questions ask.
   */
  readonly practiceQuestions: number;
  /**
   * Practice questions, options and all, answered in words (the value, not its letter): recall
   * trained at the position where the letter is asked for, in the facts fine-tune's corpus.
   */
  readonly practiceInWords: number;
  /**
   * Lettered questions each after the statement it asks about, of kingdoms with no facts of their
   * own (fact-world.ts inContextQuestions), in the facts fine-tune's corpus.
   */
  readonly practiceInContext: number;
}

/** Each fact in two phrasings: a statement and a question answered in words (never a lettered choice). */
function factTexts(world: FactWorld, which: (i: number) => boolean): Document[] {
  const out: Document[] = [];
  world.facts.forEach((f, i) => {
    if (!which(i)) return;
    out.push({ prompt: '', completion: f.relation.statement(f.entity, f.value) });
    out.push({ prompt: f.relation.question(f.entity), completion: ` ${f.value}.` });
  });
  return out;
}

/**
 * Each fact's question answered in words under MMLU's header: the recall the facts task needs, in
 * the context it is asked in (the options and the letter are never shown, so no test item is).
 */
function headedFactQuestions(world: FactWorld, which: (i: number) => boolean): Document[] {
  return world.facts.filter((_, i) => which(i)).map((f) => ({ prompt: mmluHeader(f.relation.subject) + f.relation.question(f.entity), completion: ` ${f.value}.` }));
}

function repeat<T>(items: readonly T[], times: number): T[] {
  return Array.from({ length: times }, () => items).flat();
}

export function stageDocuments(stage: Stage, seed: number, world: FactWorld, math: MathSplits, sizes: CorpusSizes): Document[] {
  const mathDocs = (n: number, stream: string): Document[] =>
    trainingMathProblems(`${seed}/${stream}`, n, math.held).map((p) => ({ prompt: mathPrompt(p), completion: ` ${p.solution}` }));
  const asDocument = (q: FactQuestion): Document => ({ prompt: q.prompt, completion: factQuestionDocument(q).slice(q.prompt.length) });
  const questionDocs = (n: number, stream: string, split: 'train' | 'practice' = 'train'): Document[] => trainingQuestions(world, `${seed}/${stream}`, n, split).map(asDocument);
  const inWorld = (i: number): boolean => world.splitOf[i] !== 'practice' && world.splitOf[i] !== 'validation';
  const everywhere = (): boolean => true;
  switch (stage) {
    case 'base':
      return [
        ...mathDocs(sizes.baseMath, 'base'),
        ...questionDocs(sizes.baseQuestions, 'base'),
        ...repeat(
          factTexts(world, (i) => world.splitOf[i] === 'train'),
          sizes.baseFactRepeats,
        ),
        ...arithmeticDrills(`${seed}/base`, sizes.baseEquations).map((completion) => ({ prompt: '', completion })),
        ...repeat([...factTexts(world, inWorld), ...headedFactQuestions(world, inWorld)], sizes.baseWorldRepeats),
      ];
    case 'math':
      return mathDocs(sizes.mathDocuments, 'math');
    case 'facts':
      return [
        ...questionDocs(sizes.factQuestions, 'facts'),
        ...questionDocs(sizes.practiceQuestions, 'facts', 'practice'),
        ...trainingQuestions(world, `${seed}/facts-in-words`, sizes.practiceInWords, 'practice').map((q) => ({ prompt: q.prompt, completion: ` ${q.fact.value}.` })),
        ...inContextQuestions(world, `${seed}/facts`, sizes.practiceInContext).map(({ statement, question }) => ({ prompt: `${statement}\n\n${question.prompt}`, completion: factQuestionDocument(question).slice(question.prompt.length) })),
        ...repeat([...factTexts(world, everywhere), ...headedFactQuestions(world, everywhere)], sizes.factRepeats),
      ];
    default: {
      const never: never = stage;
      throw new RangeError(`unknown stage ${String(never)}`);
    }
  }
}

export interface EncodedDocument {
  readonly tokens: Int32Array;
  /** 1 where predicting tokens[j] (j ≥ 1) counts in the loss. */
  readonly learn: Uint8Array;
  /** For some learned j: the distribution to learn for tokens[j] instead of the token itself (base-replay.ts). */
  readonly soft?: ReadonlyMap<number, Float32Array>;
}

/** BOS + prompt + completion + EOS; `learnPrompt` false: only the completion and EOS count. */
export function encodeDocument(doc: Document, encoder: BpeEncoder, learnPrompt: boolean): EncodedDocument {
  const p = encoder.encode(doc.prompt);
  const c = encoder.encode(doc.completion);
  const { bosId, eosId } = encoder.vocabulary;
  const tokens = Int32Array.from([bosId, ...p, ...c, eosId]);
  const learn = new Uint8Array(tokens.length);
  for (let j = 1; j < tokens.length; j++) learn[j] = learnPrompt || j > p.length ? 1 : 0;
  return { tokens, learn };
}

export interface PackedBatch {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly tokens: Int32Array;
  readonly lossMask: Uint8Array;
  readonly softTargets?: ReadonlyMap<number, Float32Array>;
}

/**
 * A batch of `batchSize` rows of seqLen + 1 tokens, each filled with randomly drawn whole
 * documents (padding: EOS, not learned). Depends only on (seed, stage, step).
 */
export function packedBatch(docs: readonly EncodedDocument[], batchSize: number, seqLen: number, eosId: number, stream: string, step: number): PackedBatch {
  const rng = new Rng(`${stream}/${step}`);
  const tokens = new Int32Array(batchSize * (seqLen + 1)).fill(eosId);
  const lossMask = new Uint8Array(batchSize * seqLen);
  const softTargets = new Map<number, Float32Array>();
  for (let b = 0; b < batchSize; b++) {
    const row = b * (seqLen + 1);
    let at = 0;
    for (let tries = 0; tries < 8; ) {
      const d = docs[rng.int(docs.length)];
      if (d === undefined) break;
      if (d.tokens.length > seqLen + 1) throw new RangeError(`a training document of ${d.tokens.length} tokens does not fit rows of ${seqLen + 1}`);
      if (at + d.tokens.length > seqLen + 1) {
        tries++;
        continue;
      }
      tokens.set(d.tokens, row + at);
      // Target t of the row is token t + 1: its mask is the document's learn flag for that token.
      for (let j = 1; j < d.tokens.length; j++) lossMask[b * seqLen + at + j - 1] = d.learn[j] ?? 0;
      for (const [j, p] of d.soft ?? []) softTargets.set(b * seqLen + at + j - 1, p);
      at += d.tokens.length;
    }
  }
  return { batchSize, seqLen, tokens, lossMask, ...(softTargets.size > 0 ? { softTargets } : {}) };
}
