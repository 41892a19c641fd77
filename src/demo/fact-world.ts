import { Rng } from '../search/rng.js';

/**
 * A generated world of facts (kingdoms × relations → values) and MMLU-format four-choice
 * questions about it, for the demo family (issue 6). Every fact is stated in the facts
 * fine-tune's corpus (as MMLU's knowledge is in pretraining); the questions of the search and test
 * splits are about disjoint sets of facts, and training questions only about a third set and
 * about extra practice kingdoms. Pure: everything depends only on the seed.
 */

export interface Relation {
  readonly id: string;
  /** MMLU subject the question is filed under ("about <subject>"). */
  readonly subject: string;
  /** Exactly four: every question about the relation lists them as options A–D in this order. */
  readonly values: readonly string[];
  statement(entity: string, value: string): string;
  question(entity: string): string;
}

export const RELATIONS: readonly Relation[] = [
  {
    id: 'capital',
    subject: 'geography',
    values: ['Arden', 'Belmo', 'Corvi', 'Dunmar'],
    statement: (e, v) => `The capital of ${e} is ${v}.`,
    question: (e) => `What is the capital of ${e}?`,
  },
  {
    id: 'export',
    subject: 'trade',
    values: ['grain', 'salt', 'silk', 'iron'],
    statement: (e, v) => `${e} exports ${v}.`,
    question: (e) => `What does ${e} export?`,
  },
  {
    id: 'flag',
    subject: 'heraldry',
    values: ['red', 'blue', 'green', 'gold'],
    statement: (e, v) => `The flag of ${e} is ${v}.`,
    question: (e) => `What color is the flag of ${e}?`,
  },
  {
    id: 'animal',
    subject: 'heraldry',
    values: ['wolf', 'bear', 'hawk', 'fox'],
    statement: (e, v) => `The animal of ${e} is the ${v}.`,
    question: (e) => `Which animal is the symbol of ${e}?`,
  },
  {
    id: 'ruler',
    subject: 'history',
    values: ['Mara', 'Otto', 'Lena', 'Ivo'],
    statement: (e, v) => `${e} is ruled by ${v}.`,
    question: (e) => `Who rules ${e}?`,
  },
  {
    id: 'river',
    subject: 'geography',
    values: ['Sel', 'Ombra', 'Vey', 'Tarn'],
    statement: (e, v) => `The river of ${e} is the ${v}.`,
    question: (e) => `Which river flows through ${e}?`,
  },
];

export interface Fact {
  readonly entity: string;
  readonly relation: Relation;
  readonly value: string;
}

/**
 * Which questions ask about a fact: the train split's in training (base and facts fine-tune), the
 * search and test splits' only in the tasks; `practice` facts belong to extra kingdoms that only
 * the facts fine-tune learns and is quizzed on (never in the base's text or any task);
 * `validation` facts to extra kingdoms that only the facts fine-tune is told and is never quizzed
 * on, whose questions choose fine-tune settings without looking at search or test.
 */
export type FactSplit = 'train' | 'search' | 'test' | 'practice' | 'validation';

export interface FactWorld {
  readonly entities: readonly string[];
  readonly facts: readonly Fact[];
  /** Which split's questions ask about each fact (index into facts). */
  readonly splitOf: readonly FactSplit[];
}

const ONSETS = ['K', 'V', 'M', 'T', 'D', 'S', 'N', 'L', 'R', 'B', 'P', 'Z'] as const;
const SYLLABLES = ['a', 'o', 'e', 'i', 'u', 'ar', 'el', 'or', 'an', 'is'] as const;
const CODAS = ['dor', 'vin', 'mar', 'los', 'tia', 'ren', 'gal', 'pus'] as const;

/** `count` kingdom names not in `taken` (which receives them), drawn from `rng`. */
function kingdomNames(rng: Rng, count: number, taken: Set<string>): string[] {
  const names: string[] = [];
  for (let tries = 0; names.length < count; tries++) {
    if (tries > count * 1000) throw new RangeError(`makeFactWorld: cannot make ${count} more distinct names (${taken.size} taken)`);
    const name = rng.pick(ONSETS) + rng.pick(SYLLABLES) + rng.pick(CODAS);
    if (!taken.has(name)) {
      names.push(name);
      taken.add(name);
    }
  }
  return names;
}

/**
 * `entities` kingdoms with one value per relation; facts split in thirds (train, search, test)
 * after a seeded shuffle. Then `practice` more kingdoms, drawn from a stream of their own so the
 * first `entities` and their splits do not depend on it, whose facts are all `practice`; then
 * `validation` kingdoms from a third stream (so neither of the others depends on it). The last
 * `practiceHeldOut` practice kingdoms are validation kingdoms instead: told, never quizzed, and
 * no extra facts to learn (the world is the same, only the quiz leaves them out).
 */
export function makeFactWorld(seed: number, entities: number, practice = 0, validation = 0, practiceHeldOut = 0): FactWorld {
  if (!Number.isSafeInteger(practiceHeldOut) || practiceHeldOut < 0 || practiceHeldOut > practice) {
    throw new RangeError(`makeFactWorld: practiceHeldOut must be an integer in [0, ${practice}] (the practice kingdoms), got ${practiceHeldOut}`);
  }
  const rng = new Rng(`demo-facts/${seed}`);
  const taken = new Set<string>(RELATIONS.flatMap((r) => r.values));
  const entityList = kingdomNames(rng, entities, taken);
  const facts: Fact[] = [];
  for (const entity of entityList) for (const relation of RELATIONS) facts.push({ entity, relation, value: rng.pick(relation.values) });
  const order = rng.permutation(facts.length);
  const splitOf: FactSplit[] = new Array<FactSplit>(facts.length);
  const third = Math.floor(facts.length / 3);
  order.forEach((factIndex, rank) => {
    splitOf[factIndex] = rank < third ? 'search' : rank < 2 * third ? 'test' : 'train';
  });
  // `heldOut`: the last kingdoms of the stream are labelled validation instead (same names and values).
  const extraKingdoms = (split: 'practice' | 'validation', count: number, heldOut = 0): string[] => {
    const extraRng = new Rng(`demo-facts/${seed}/${split}`);
    const names = kingdomNames(extraRng, count, taken);
    names.forEach((entity, k) => {
      for (const relation of RELATIONS) {
        facts.push({ entity, relation, value: extraRng.pick(relation.values) });
        splitOf.push(k >= count - heldOut ? 'validation' : split);
      }
    });
    return names;
  };
  const practiceList = extraKingdoms('practice', practice, practiceHeldOut);
  const validationList = extraKingdoms('validation', validation);
  return { entities: [...entityList, ...practiceList, ...validationList], facts, splitOf };
}

const LETTERS = ['A', 'B', 'C', 'D'] as const;

export interface FactQuestion {
  readonly fact: Fact;
  /** Everything before the answer, ending in "Answer:" (the original MMLU prompt, zero-shot). */
  readonly prompt: string;
  readonly choices: readonly string[];
  /** 0-based index of the right choice. */
  readonly answer: number;
}

/** The first line of the original MMLU prompt and the blank line after it. */
export function mmluHeader(subject: string): string {
  return `The following are multiple choice questions (with answers) about ${subject}.\n\n`;
}

/** The original MMLU prompt for a question with four options. */
export function mmluPrompt(subject: string, question: string, options: readonly string[]): string {
  const lines = options.map((o, i) => `${LETTERS[i] ?? '?'}. ${o}`).join('\n');
  return `${mmluHeader(subject)}${question}\n${lines}\nAnswer:`;
}

/**
 * The four-choice question about `fact`: its relation's four values as options A–D, always in the
 * relation's order, so a question's letter is fixed by the fact's value. (A tiny model cannot learn
 * to bind a recalled value to a shuffled option list, MMLU's "symbol binding", within the demo's
 * training budget; with fixed options the letter is a second recall, which it can.)
 */
export function factQuestion(fact: Fact): FactQuestion {
  const options = fact.relation.values;
  const answer = options.indexOf(fact.value);
  if (options.length !== 4 || answer < 0) throw new RangeError(`factQuestion: ${fact.relation.id} must have four values including ${fact.value}`);
  return { fact, prompt: mmluPrompt(fact.relation.subject, fact.relation.question(fact.entity), options), choices: LETTERS.map((l) => ` ${l}`), answer };
}

/** The question as a training document: prompt + " <letter>". */
export function factQuestionDocument(q: FactQuestion): string {
  return `${q.prompt} ${LETTERS[q.answer] ?? '?'}`;
}

/** One question per fact of a split, in a seeded order. */
export function splitQuestions(world: FactWorld, split: 'search' | 'test' | 'validation', seed: number): FactQuestion[] {
  const rng = new Rng(`demo-facts/${seed}/${split}`);
  const facts = world.facts.filter((_, i) => world.splitOf[i] === split);
  return rng.permutation(facts.length).map((fi) => factQuestion(facts[fi] as Fact));
}

/** Training questions: random draws about the facts of one split (train by default) only. */
export function trainingQuestions(world: FactWorld, seed: string, count: number, split: 'train' | 'practice' = 'train'): FactQuestion[] {
  if (count === 0) return [];
  const rng = new Rng(`demo-facts/${seed}/${split}-questions`);
  const facts = world.facts.filter((_, i) => world.splitOf[i] === split);
  if (facts.length === 0) throw new RangeError(`trainingQuestions: ${count} questions about the ${split} split, which has no facts`);
  return Array.from({ length: count }, () => factQuestion(rng.pick(facts)));
}

/** Every kingdom name the generator can make (ONSETS × SYLLABLES × CODAS), in a fixed order. */
function allKingdomNames(): string[] {
  return ONSETS.flatMap((o) => SYLLABLES.flatMap((s) => CODAS.map((c) => o + s + c)));
}

/**
 * `count` lettered questions each preceded, in its own document, by the statement it asks about:
 * a kingdom of the world's unused names with a value drawn afresh for every document, so there is
 * nothing to memorise. They train reading the letter off a value the model has at hand (here from
 * the context, in the task from its own recall), the step the practice quiz leaves to per-fact
 * memory. Never in the base's text or in any task.
 */
export function inContextQuestions(world: FactWorld, seed: string, count: number): { readonly statement: string; readonly question: FactQuestion }[] {
  if (count === 0) return [];
  const used = new Set(world.entities);
  const names = allKingdomNames().filter((n) => !used.has(n));
  if (names.length === 0) throw new RangeError('inContextQuestions: the world uses every kingdom name');
  const rng = new Rng(`demo-facts/${seed}/in-context`);
  return Array.from({ length: count }, () => {
    const relation = rng.pick(RELATIONS);
    const fact: Fact = { entity: rng.pick(names), relation, value: rng.pick(relation.values) };
    return { statement: relation.statement(fact.entity, fact.value), question: factQuestion(fact) };
  });
}
