/**
 * The demo family's data, fixed by one seed: the fact world, the math splits, each stage's
 * documents and the tokenizer learned from them. train-family.ts trains on it, tests check it.
 */
import { type BpeVocabulary, trainBpe } from './byte-level-bpe.js';
import { type CorpusSizes, type Document, type Stage, stageDocuments } from './corpus.js';
import { type FactWorld, makeFactWorld } from './fact-world.js';
import { type MathSplits, mathSplits } from './math-problems.js';

export interface DemoDataSettings {
  readonly seed: number;
  /** Kingdoms in the fact world (× 6 relations = facts; a third each for train, search, test questions). */
  readonly entities: number;
  /** Extra kingdoms only the facts fine-tune learns and is quizzed on (fact-world.ts). */
  readonly practiceEntities: number;
  /** Extra kingdoms only the facts fine-tune is told and never quizzed on: the validation questions (fact-world.ts). */
  readonly validationEntities: number;
  /** The last this many practice kingdoms are not quizzed: their questions join the validation questions (fact-world.ts). */
  readonly practiceHeldOut: number;
  readonly mathSearchItems: number;
  readonly mathTestItems: number;
  readonly corpus: CorpusSizes;
  /** Token ids, BOS and EOS included (≤ 512). */
  readonly vocabSize: number;
}

export const DEFAULT_DATA_SETTINGS: DemoDataSettings = {
  seed: 1,
  entities: 64,
  practiceEntities: 64,
  validationEntities: 0,
  practiceHeldOut: 0,
  mathSearchItems: 300,
  mathTestItems: 400,
  corpus: { baseMath: 400, baseQuestions: 3000, baseFactRepeats: 8, baseEquations: 0, baseWorldRepeats: 0, mathDocuments: 20000, factQuestions: 2000, factRepeats: 8, practiceQuestions: 12000, practiceInWords: 0, practiceInContext: 0 },
  vocabSize: 512,
};

export interface DemoData {
  readonly settings: DemoDataSettings;
  readonly world: FactWorld;
  readonly math: MathSplits;
  readonly documents: Readonly<Record<Stage, readonly Document[]>>;
}

export function demoData(settings: DemoDataSettings = DEFAULT_DATA_SETTINGS): DemoData {
  const world = makeFactWorld(settings.seed, settings.entities, settings.practiceEntities, settings.validationEntities, settings.practiceHeldOut);
  const math = mathSplits(settings.seed, settings.mathSearchItems, settings.mathTestItems);
  const docs = (stage: Stage): Document[] => stageDocuments(stage, settings.seed, world, math, settings.corpus);
  return { settings, world, math, documents: { base: docs('base'), math: docs('math'), facts: docs('facts') } };
}

/**
 * The tokenizer, learned from every 2nd document of the base's corpus (never from the task splits).
 * The base's text has every format and word of both tasks, and fine-tune settings can change
 * without changing the tokenizer, so the fine-tunes can be retrained from a saved base.
 */
export function learnDemoTokenizer(data: DemoData): BpeVocabulary {
  const texts: string[] = [];
  data.documents.base.forEach((d, i) => i % 2 === 0 && texts.push(d.prompt + d.completion));
  return trainBpe(texts, data.settings.vocabSize);
}
