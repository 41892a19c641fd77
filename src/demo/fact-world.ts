import { Rng } from '../search/rng.js';

/**
 * A generated world of facts (kingdoms × relations → values) and MMLU-format four-choice
 * questions about it, for the demo family (issue 6). Every fact is stated in the facts
 * fine-tune's corpus (as MMLU's knowledge is in pretraining); the questions of the search and test
 * splits are about disjoint sets of facts, and training questions only about a third set. Pure:
 * everything depends only on the seed.
 */

export interface Relation {
  readonly id: string;
  /** MMLU subject the question is filed under ("about <subject>"). */
  readonly subject: string;
  readonly values: readonly string[];
  statement(entity: string, value: string): string;
  question(entity: string): string;
}

export const RELATIONS: readonly Relation[] = [
  {
    id: 'capital',
    subject: 'geography',
    values: ['Arden', 'Belmo', 'Corvi', 'Dunmar', 'Elsin', 'Farro', 'Gelda', 'Hollis'],
    statement: (e, v) => `The capital of ${e} is ${v}.`,
    question: (e) => `What is the capital of ${e}?`,
  },
  {
    id: 'export',
    subject: 'trade',
    values: ['grain', 'salt', 'silk', 'iron', 'tea', 'wool', 'glass', 'wine'],
    statement: (e, v) => `${e} exports ${v}.`,
    question: (e) => `What does ${e} export?`,
  },
  {
    id: 'flag',
    subject: 'heraldry',
    values: ['red', 'blue', 'green', 'gold', 'white', 'black', 'purple', 'orange'],
    statement: (e, v) => `The flag of ${e} is ${v}.`,
    question: (e) => `What color is the flag of ${e}?`,
  },
  {
    id: 'animal',
    subject: 'heraldry',
    values: ['wolf', 'bear', 'hawk', 'fox', 'lion', 'owl', 'deer', 'snake'],
    statement: (e, v) => `The animal of ${e} is the ${v}.`,
    question: (e) => `Which animal is the symbol of ${e}?`,
  },
  {
    id: 'ruler',
    subject: 'history',
    values: ['Mara', 'Otto', 'Lena', 'Ivo', 'Rhea', 'Tomas', 'Nia', 'Oren'],
    statement: (e, v) => `${e} is ruled by ${v}.`,
    question: (e) => `Who rules ${e}?`,
  },
  {
    id: 'river',
    subject: 'geography',
    values: ['Sel', 'Ombra', 'Vey', 'Tarn', 'Lim', 'Quell', 'Aster', 'Brin'],
    statement: (e, v) => `The river of ${e} is the ${v}.`,
    question: (e) => `Which river flows through ${e}?`,
  },
];

export interface Fact {
  readonly entity: string;
  readonly relation: Relation;
  readonly value: string;
}

export type FactSplit = 'train' | 'search' | 'test';

export interface FactWorld {
  readonly entities: readonly string[];
  readonly facts: readonly Fact[];
  /** Which split's questions ask about each fact (index into facts). */
  readonly splitOf: readonly FactSplit[];
}

const ONSETS = ['K', 'V', 'M', 'T', 'D', 'S', 'N', 'L', 'R', 'B', 'P', 'Z'] as const;
const SYLLABLES = ['a', 'o', 'e', 'i', 'u', 'ar', 'el', 'or', 'an', 'is'] as const;
const CODAS = ['dor', 'vin', 'mar', 'los', 'tia', 'ren', 'gal', 'pus'] as const;

/**
 * `entities` kingdoms with one value per relation; facts split in thirds (train, search, test)
 * after a seeded shuffle.
 */
export function makeFactWorld(seed: number, entities: number): FactWorld {
  const rng = new Rng(`demo-facts/${seed}`);
  const names = new Set<string>();
  const taken = new Set<string>(RELATIONS.flatMap((r) => r.values));
  for (let tries = 0; names.size < entities; tries++) {
    if (tries > entities * 1000) throw new RangeError(`makeFactWorld: cannot make ${entities} distinct names`);
    const name = rng.pick(ONSETS) + rng.pick(SYLLABLES) + rng.pick(CODAS);
    if (!taken.has(name)) {
      names.add(name);
      taken.add(name);
    }
  }
  const entityList = [...names];
  const facts: Fact[] = [];
  for (const entity of entityList) for (const relation of RELATIONS) facts.push({ entity, relation, value: rng.pick(relation.values) });
  const order = rng.permutation(facts.length);
  const splitOf: FactSplit[] = new Array<FactSplit>(facts.length);
  const third = Math.floor(facts.length / 3);
  order.forEach((factIndex, rank) => {
    splitOf[factIndex] = rank < third ? 'search' : rank < 2 * third ? 'test' : 'train';
  });
  return { entities: entityList, facts, splitOf };
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

/** The original MMLU prompt for a question with four options. */
export function mmluPrompt(subject: string, question: string, options: readonly string[]): string {
  const lines = options.map((o, i) => `${LETTERS[i] ?? '?'}. ${o}`).join('\n');
  return `The following are multiple choice questions (with answers) about ${subject}.\n\n${question}\n${lines}\nAnswer:`;
}

/** A four-choice question about `fact` with the right value at `position` and three distinct wrong values. */
export function factQuestion(fact: Fact, position: number, rng: Rng): FactQuestion {
  const wrong = fact.relation.values.filter((v) => v !== fact.value);
  const picked = rng.permutation(wrong.length).slice(0, 3).map((i) => wrong[i] ?? '');
  const options = [...picked];
  options.splice(position, 0, fact.value);
  return { fact, prompt: mmluPrompt(fact.relation.subject, fact.relation.question(fact.entity), options), choices: LETTERS.map((l) => ` ${l}`), answer: position };
}

/** The question as a training document: prompt + " <letter>". */
export function factQuestionDocument(q: FactQuestion): string {
  return `${q.prompt} ${LETTERS[q.answer] ?? '?'}`;
}

/**
 * One question per fact of a split, right answers spread evenly over A–D (so a letter bias
 * cannot beat 25%), in a seeded order.
 */
export function splitQuestions(world: FactWorld, split: 'search' | 'test', seed: number): FactQuestion[] {
  const rng = new Rng(`demo-facts/${seed}/${split}`);
  const facts = world.facts.filter((_, i) => world.splitOf[i] === split);
  const order = rng.permutation(facts.length);
  return order.map((fi, rank) => factQuestion(facts[fi] as Fact, rank % 4, rng));
}

/** Training questions: random draws about the train split's facts only. */
export function trainingQuestions(world: FactWorld, seed: string, count: number): FactQuestion[] {
  const rng = new Rng(`demo-facts/${seed}/train-questions`);
  const facts = world.facts.filter((_, i) => world.splitOf[i] === 'train');
  return Array.from({ length: count }, () => factQuestion(rng.pick(facts), rng.int(4), rng));
}
