import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTaskDefinition, loadTaskItems } from '../../evaluators/generic-task-file.js';
import { BpeEncoder, preTokenize, trainBpe } from '../../src/demo/byte-level-bpe.js';
import { encodeDocument, packedBatch } from '../../src/demo/corpus.js';
import { factTaskFiles, mathTaskFiles } from '../../src/demo/demo-tasks.js';
import { RELATIONS, inContextQuestions, makeFactWorld, splitQuestions } from '../../src/demo/fact-world.js';
import { DEFAULT_DATA_SETTINGS, demoData, learnDemoTokenizer } from '../../src/demo/family-data.js';
import { arithmeticDrills, mathDocument, mathSplits, trainingMathProblems } from '../../src/demo/math-problems.js';

/** The demo family's generated data: right answers, disjoint splits, determinism, and its tokenizer. */

const SMALL = { ...DEFAULT_DATA_SETTINGS, entities: 24, practiceEntities: 0, validationEntities: 8, mathSearchItems: 80, mathTestItems: 80, corpus: { baseMath: 200, baseQuestions: 200, baseFactRepeats: 2, baseEquations: 0, baseWorldRepeats: 0, mathDocuments: 400, factQuestions: 300, factRepeats: 2, practiceQuestions: 0, practiceInWords: 0, practiceInContext: 0 } };

/** Recomputes a solution's equations from its text: every step holds and the last result is the answer. */
function checkSolution(question: string, solution: string, answer: number): void {
  const steps = [...solution.matchAll(/(\d+) ([+\-*]) (\d+) = (\d+)\./g)];
  expect(steps.length).toBeGreaterThan(0);
  for (const [, a, op, b, c] of steps) {
    const x = Number(a);
    const y = Number(b);
    expect(op === '+' ? x + y : op === '-' ? x - y : x * y).toBe(Number(c));
  }
  expect(solution.endsWith(`#### ${answer}`)).toBe(true);
  expect(Number(steps.at(-1)?.[4])).toBe(answer);
  // The operands are the question's numbers, in order; all below 20.
  const given = [...question.matchAll(/\d+/g)].map((m) => Number(m[0]));
  for (const n of given) expect(n).toBeLessThan(20);
  const first = steps[0];
  expect([Number(first?.[1]), Number(first?.[3])]).toEqual(given.slice(0, 2));
  if (steps.length === 2) expect(Number(steps[1]?.[3])).toBe(given[2]);
}

describe('math problems', () => {
  it('every solution is right and uses the question’s numbers', () => {
    const s = mathSplits(7, 200, 200);
    for (const p of [...s.search, ...s.test, ...trainingMathProblems('x', 500, s.held)]) checkSolution(p.question, p.solution, p.answer);
  });

  it('search, test and training are disjoint by question text, and seeded', () => {
    const s = mathSplits(3, 150, 150);
    const search = new Set(s.search.map((p) => p.question));
    expect(search.size).toBe(150);
    expect(s.test.filter((p) => search.has(p.question))).toEqual([]);
    expect(trainingMathProblems('t', 5000, s.held).filter((p) => s.held.has(p.question))).toEqual([]);
    expect(mathSplits(3, 150, 150)).toEqual(s);
    expect(mathSplits(4, 150, 150).search).not.toEqual(s.search);
    expect(mathDocument(s.search[0] ?? s.test[0]!)).toMatch(/^Question: .+\?\nAnswer: .+ #### \d+$/);
  });
});

describe('fact world', () => {
  it('splits the facts in thirds and asks about each search/test fact once, its relation\'s four values as options in a fixed order', () => {
    const w = makeFactWorld(5, 30);
    expect(w.facts.length).toBe(30 * RELATIONS.length);
    const count = (s: string): number => w.splitOf.filter((x) => x === s).length;
    expect([count('search'), count('test'), count('train')]).toEqual([60, 60, 60]);
    for (const split of ['search', 'test'] as const) {
      const qs = splitQuestions(w, split, 5);
      expect(qs.length).toBe(60);
      const letters = [0, 0, 0, 0];
      for (const q of qs) {
        letters[q.answer]! += 1;
        const options = [...q.prompt.matchAll(/^([ABCD])\. (.+)$/gm)].map((m) => m[2]);
        expect(options.length).toBe(4);
        expect(new Set(options).size).toBe(4);
        expect(options[q.answer]).toBe(q.fact.value);
        expect(options).toEqual(q.fact.relation.values);
        expect(q.prompt.startsWith(`The following are multiple choice questions (with answers) about ${q.fact.relation.subject}.\n\n`)).toBe(true);
        expect(q.prompt.endsWith('\nAnswer:')).toBe(true);
        expect(q.choices).toEqual([' A', ' B', ' C', ' D']);
      }
      // Values are drawn uniformly: every letter is the answer to some questions, none to most.
      for (const l of letters) expect(l).toBeGreaterThan(5);
      for (const l of letters) expect(l).toBeLessThan(30);
    }
    const ids = (split: 'search' | 'test'): Set<string> => new Set(splitQuestions(w, split, 5).map((q) => `${q.fact.entity}.${q.fact.relation.id}`));
    const search = ids('search');
    expect([...ids('test')].filter((f) => search.has(f))).toEqual([]);
    expect(makeFactWorld(5, 30)).toEqual(w);
    expect(makeFactWorld(6, 30).facts).not.toEqual(w.facts);
  });

  it('practice kingdoms come after the world, leave its facts and splits as they were, and have names of their own', () => {
    const w = makeFactWorld(5, 30);
    const p = makeFactWorld(5, 30, 20);
    expect(p.facts.slice(0, w.facts.length)).toEqual(w.facts);
    expect(p.splitOf.slice(0, w.facts.length)).toEqual(w.splitOf);
    expect(p.splitOf.slice(w.facts.length).every((s) => s === 'practice')).toBe(true);
    expect(p.facts.length - w.facts.length).toBe(20 * RELATIONS.length);
    expect(p.entities.slice(0, 30)).toEqual(w.entities);
    expect(new Set(p.entities).size).toBe(50);
    expect(splitQuestions(p, 'test', 5)).toEqual(splitQuestions(w, 'test', 5));
  });

  it('validation kingdoms come last, change neither the world nor the practice kingdoms, and get one question per fact', () => {
    const p = makeFactWorld(5, 30, 20);
    const v = makeFactWorld(5, 30, 20, 12);
    expect(v.facts.slice(0, p.facts.length)).toEqual(p.facts);
    expect(v.splitOf.slice(0, p.facts.length)).toEqual(p.splitOf);
    expect(v.splitOf.slice(p.facts.length).every((s) => s === 'validation')).toBe(true);
    expect(new Set(v.entities).size).toBe(62);
    for (const split of ['search', 'test'] as const) expect(splitQuestions(v, split, 5)).toEqual(splitQuestions(p, split, 5));
    const questions = splitQuestions(v, 'validation', 5);
    expect(questions.length).toBe(12 * RELATIONS.length);
    const validationEntities = new Set(v.entities.slice(50));
    expect(new Set(questions.map((q) => q.fact.entity))).toEqual(validationEntities);
    // No validation kingdom without validation facts: the split is empty.
    expect(splitQuestions(p, 'validation', 5)).toEqual([]);
  });

  it('practiceHeldOut relabels the last practice kingdoms as validation: the same facts, fewer quizzed', () => {
    const p = makeFactWorld(5, 30, 20);
    const h = makeFactWorld(5, 30, 20, 0, 6);
    expect(h.facts).toEqual(p.facts);
    expect(h.entities).toEqual(p.entities);
    const heldEntities = new Set(h.entities.slice(30 + 14));
    h.splitOf.forEach((s, i) => {
      const f = h.facts[i];
      if (f !== undefined && heldEntities.has(f.entity)) expect(s).toBe('validation');
      else expect(s).toBe(p.splitOf[i]);
    });
    expect(new Set(splitQuestions(h, 'validation', 5).map((q) => q.fact.entity))).toEqual(heldEntities);
    for (const split of ['search', 'test'] as const) expect(splitQuestions(h, split, 5)).toEqual(splitQuestions(p, split, 5));
    // The quiz asks only the other practice kingdoms; the held-out ones are still stated.
    const d = demoData({ ...SMALL, practiceEntities: 10, practiceHeldOut: 4, validationEntities: 0, corpus: { ...SMALL.corpus, practiceQuestions: 400 } });
    const held = new Set(d.world.entities.slice(24 + 6));
    const lettered = d.documents.facts.filter((x) => /\nAnswer:$/.test(x.prompt));
    for (const x of lettered) for (const e of held) expect(x.prompt.includes(`${e}?`)).toBe(false);
    const told = new Set(d.documents.facts.map((x) => x.prompt + x.completion));
    d.world.facts.forEach((f, i) => {
      if (held.has(f.entity)) {
        expect(d.world.splitOf[i]).toBe('validation');
        expect(told.has(f.relation.statement(f.entity, f.value))).toBe(true);
      }
    });
    expect(() => makeFactWorld(5, 30, 20, 0, 21)).toThrow(/practiceHeldOut must be an integer in \[0, 20\]/);
  });
});

describe('corpus', () => {
  const data = demoData(SMALL);
  const text = (stage: 'base' | 'math' | 'facts'): string[] => data.documents[stage].map((d) => d.prompt + d.completion);

  it('states every fact in the facts corpus, only train facts in the base’s, and never a search/test question verbatim', () => {
    const facts = new Set(text('facts'));
    const base = new Set(text('base'));
    data.world.facts.forEach((f, i) => {
      const statement = f.relation.statement(f.entity, f.value);
      expect(facts.has(statement)).toBe(true);
      expect(base.has(statement)).toBe(data.world.splitOf[i] === 'train');
    });
    const all = [...text('base'), ...text('math'), ...text('facts')];
    const held = [...splitQuestions(data.world, 'search', SMALL.seed), ...splitQuestions(data.world, 'test', SMALL.seed)].map((q) => q.prompt);
    const heldMath = [...data.math.search, ...data.math.test].map((p) => p.question);
    for (const doc of all) {
      for (const q of held) expect(doc.includes(q)).toBe(false);
      for (const q of heldMath) expect(doc.includes(q)).toBe(false);
    }
  });

  it('practice facts are stated and quizzed only in the facts fine-tune; its quiz asks about them and train facts only', () => {
    const d = demoData({ ...SMALL, practiceEntities: 10, corpus: { ...SMALL.corpus, practiceQuestions: 200, practiceInWords: 50 } });
    const facts = d.documents.facts.map((x) => x.prompt + x.completion);
    const base = new Set([...d.documents.base, ...d.documents.math].map((x) => x.prompt + x.completion));
    const practice = d.world.facts.filter((_, i) => d.world.splitOf[i] === 'practice');
    expect(practice.length).toBe(60);
    const practiceEntities = new Set(practice.map((f) => f.entity));
    for (const f of practice) {
      expect(facts).toContain(f.relation.statement(f.entity, f.value));
      expect(base.has(f.relation.statement(f.entity, f.value))).toBe(false);
    }
    const quizzed = d.documents.facts.filter((x) => x.completion.match(/^ [ABCD]$/));
    expect(quizzed.length).toBe(SMALL.corpus.factQuestions + 200);
    const entityOf = (prompt: string): string | undefined => d.world.entities.find((e) => new RegExp(`\\b${e}\\b`).test(prompt));
    const about = quizzed.map((x) => entityOf(x.prompt));
    expect(about.filter((e) => e !== undefined && practiceEntities.has(e)).length).toBe(200);
    // The rest ask about train facts only.
    const trainFacts = new Set(d.world.facts.filter((_, i) => d.world.splitOf[i] === 'train').map((f) => f.relation.question(f.entity)));
    for (const x of quizzed) if (!practiceEntities.has(entityOf(x.prompt) ?? '')) expect([...trainFacts].some((q) => x.prompt.includes(q))).toBe(true);
    // Validation kingdoms are told only to the facts fine-tune (stated, asked in words) and never quizzed.
    const validation = d.world.facts.filter((_, i) => d.world.splitOf[i] === 'validation');
    expect(validation.length).toBe(SMALL.validationEntities * RELATIONS.length);
    const validationEntities = new Set(validation.map((f) => f.entity));
    for (const f of validation) {
      expect(facts).toContain(f.relation.statement(f.entity, f.value));
      expect(base.has(f.relation.statement(f.entity, f.value))).toBe(false);
    }
    for (const x of [...quizzed, ...d.documents.base, ...d.documents.math]) for (const e of validationEntities) expect(x.prompt.includes(e) || x.completion.includes(e)).toBe(false);
    // practiceInWords: the lettered prompt of a practice question answered with the value in words.
    const inWords = d.documents.facts.filter((x) => x.prompt.endsWith('\nAnswer:') && !/^ [ABCD]$/.test(x.completion));
    expect(inWords.length).toBe(50);
    for (const x of inWords) {
      const f = practice.find((p) => x.prompt.includes(p.relation.question(p.entity)));
      expect(f).toBeDefined();
      expect(x.completion).toBe(` ${f?.value}.`);
    }
    expect(demoData(SMALL).documents.facts.length).toBe(d.documents.facts.length - 200 - 50 - SMALL.corpus.factRepeats * 3 * 60);
  });

  it('in-context questions follow their own statement, about kingdoms outside the world, and only in the facts corpus', () => {
    const d = demoData({ ...SMALL, practiceEntities: 10, corpus: { ...SMALL.corpus, practiceQuestions: 200, practiceInContext: 300 } });
    const plain = demoData({ ...SMALL, practiceEntities: 10, corpus: { ...SMALL.corpus, practiceQuestions: 200 } });
    const asked = inContextQuestions(d.world, `${SMALL.seed}/facts`, 300);
    const world = new Set(d.world.entities);
    for (const { statement, question } of asked) {
      const f = question.fact;
      expect(world.has(f.entity), f.entity).toBe(false);
      expect(statement).toBe(f.relation.statement(f.entity, f.value));
      expect(question.answer).toBe(f.relation.values.indexOf(f.value));
    }
    // Values are drawn afresh per document: some kingdom is stated with two values of one relation.
    const seen = new Map<string, string>();
    let clashes = 0;
    for (const { question: q } of asked) {
      const key = `${q.fact.entity}/${q.fact.relation.id}`;
      if (seen.has(key) && seen.get(key) !== q.fact.value) clashes++;
      seen.set(key, q.fact.value);
    }
    expect(clashes).toBeGreaterThan(0);
    // In the corpus: statement, blank line, the lettered prompt; the letter learned. Nothing else changes.
    const docs = asked.map(({ statement, question }) => ({ prompt: `${statement}\n\n${question.prompt}`, completion: ` ${'ABCD'[question.answer]}` }));
    const inContext = d.documents.facts.filter((x) => /\.\n\nThe following are multiple choice questions/.test(x.prompt));
    expect(inContext).toEqual(docs);
    expect(d.documents.facts.filter((x) => !inContext.includes(x))).toEqual(plain.documents.facts);
    expect(d.documents.base).toEqual(plain.documents.base);
    expect(d.documents.math).toEqual(plain.documents.math);
  });

  it('the base sees both task formats; math and facts fine-tunes only their own', () => {
    expect(text('base').some((t) => t.startsWith('Question: '))).toBe(true);
    expect(text('base').some((t) => t.startsWith('The following are multiple choice questions'))).toBe(true);
    expect(text('math').every((t) => t.startsWith('Question: '))).toBe(true);
    expect(text('facts').some((t) => t.startsWith('Question: '))).toBe(false);
  });

  it('packs whole documents; fine-tunes learn only completions; batches are seeded by step', () => {
    const enc = new BpeEncoder(learnDemoTokenizer(data));
    const docs = data.documents.math.slice(0, 50).map((d) => encodeDocument(d, enc, false));
    const d0 = docs[0]!;
    const promptLen = enc.encode(data.documents.math[0]!.prompt).length;
    expect(d0.tokens[0]).toBe(enc.vocabulary.bosId);
    expect(d0.tokens.at(-1)).toBe(enc.vocabulary.eosId);
    expect([...d0.learn.slice(0, promptLen + 1)].every((x) => x === 0)).toBe(true);
    expect([...d0.learn.slice(promptLen + 1)].every((x) => x === 1)).toBe(true);
    const b = packedBatch(docs, 3, 128, enc.vocabulary.eosId, 's', 4);
    expect(b.tokens.length).toBe(3 * 129);
    expect(b.lossMask.length).toBe(3 * 128);
    expect(b.tokens[0]).toBe(enc.vocabulary.bosId);
    // A learned target is never padding, and each row holds at least two documents.
    for (let r = 0; r < 3; r++) {
      for (let t = 0; t < 128; t++) if (b.lossMask[r * 128 + t] === 1) expect(b.tokens[r * 129 + t + 1]).not.toBe(-1);
      expect([...b.tokens.slice(r * 129, (r + 1) * 129)].filter((x) => x === enc.vocabulary.bosId).length).toBeGreaterThanOrEqual(2);
    }
    expect(packedBatch(docs, 3, 128, enc.vocabulary.eosId, 's', 4)).toEqual(b);
    expect(packedBatch(docs, 3, 128, enc.vocabulary.eosId, 's', 5).tokens).not.toEqual(b.tokens);
  });
});

describe('base corpus options', () => {
  const sizes = { ...SMALL.corpus, baseEquations: 50, baseWorldRepeats: 2 };
  const data = demoData({ ...SMALL, corpus: sizes });
  const base = data.documents.base.map((d) => d.prompt + d.completion);

  it('arithmetic drills hold: three true equations per document, in the tasks’ ranges, seeded', () => {
    const drills = arithmeticDrills('s', 200);
    expect(drills).toHaveLength(200);
    const ops = new Set<string>();
    for (const d of drills) {
      const eqs = [...d.matchAll(/(\d+) ([+\-*]) (\d+) = (\d+)\./g)];
      expect(eqs.map((m) => m[0]).join(' ')).toBe(d);
      expect(eqs).toHaveLength(3);
      for (const [, a, op, b, c] of eqs) {
        const x = Number(a);
        const y = Number(b);
        ops.add(op ?? '');
        expect(op === '+' ? x + y : op === '-' ? x - y : x * y).toBe(Number(c));
        if (op === '-') expect(Number(c)).toBeGreaterThan(0);
        expect(x).toBeLessThanOrEqual(28);
      }
    }
    expect([...ops].sort()).toEqual(['*', '+', '-']);
    expect(arithmeticDrills('s', 200)).toEqual(drills);
    expect(arithmeticDrills('t', 200)).not.toEqual(drills);
    expect(base.filter((t) => /^\d+ [+\-*] \d+ = \d+\./.test(t))).toHaveLength(50);
  });

  it('baseWorldRepeats states and asks every fact of the world (not the validation kingdoms) in the base, still never a search/test question verbatim', () => {
    expect(data.world.splitOf).toContain('validation');
    data.world.facts.forEach((f, i) => {
      const statement = f.relation.statement(f.entity, f.value);
      const times = base.filter((t) => t === statement).length;
      if (data.world.splitOf[i] === 'validation') expect(times).toBe(0);
      else expect(times).toBeGreaterThanOrEqual(2);
    });
    const held = [...splitQuestions(data.world, 'search', SMALL.seed), ...splitQuestions(data.world, 'test', SMALL.seed)].map((q) => q.prompt);
    for (const doc of base) for (const q of held) expect(doc.includes(q)).toBe(false);
  });
});

describe('demo tokenizer', () => {
  it('has at most 512 ids, never merges digits, round-trips, and is deterministic', () => {
    const data = demoData(SMALL);
    const v = learnDemoTokenizer(data);
    expect(v.tokens.length).toBeLessThanOrEqual(512);
    expect(new Set(v.tokens).size).toBe(v.tokens.length);
    for (const m of v.merges) expect(/\d/.test(m.replace(' ', ''))).toBe(false);
    const enc = new BpeEncoder(v);
    const t = 'Question: Eve has 13 cups.\nAnswer: 13 + 4 = 17. #### 17';
    expect(enc.decode(enc.encode(t))).toBe(t);
    // "13" is two tokens: the digits one by one.
    expect(enc.encode('13').map((id) => v.tokens[id])).toEqual(['1', '3']);
    expect(learnDemoTokenizer(demoData(SMALL))).toEqual(v);
    expect(preTokenize("ab's 12 x\n\ny")).toEqual(['ab', "'s", 'Ġ', '1', '2', 'Ġx', 'ĊĊ', 'y']);
  });

  it('merges the most frequent pair first', () => {
    // Pre-tokens "ab", "Ġab" ×2, "Ġcd" ×2: a·b occurs 3 times; then Ġ·ab, Ġ·c and c·d twice each,
    // and the tie goes to the smallest string ("c d" < "Ġ …").
    const v = trainBpe(['ab ab ab cd cd'], 260);
    expect(v.merges).toEqual(['a b', 'c d']);
    expect(v.tokens.slice(256)).toEqual(['ab', 'cd', '<|bos|>', '<|endoftext|>']);
  });
});

describe('demo task files', () => {
  it('load as generic tasks with the right answers', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'evo-demo-tasks-'));
    try {
      const data = demoData(SMALL);
      for (const [name, files] of [['math', mathTaskFiles(data.math)], ['facts', factTaskFiles(data.world, SMALL.seed)]] as const) {
        await mkdir(path.join(dir, name));
        for (const [f, body] of Object.entries(files)) await writeFile(path.join(dir, name, f), body);
      }
      const math = await loadTaskDefinition(path.join(dir, 'math'));
      expect(math.type).toBe('generate');
      const items = await loadTaskItems(math, math.splits.search, 'search');
      expect(items.length).toBe(80);
      const first = items[0];
      if (first?.kind !== 'generate') throw new Error('expected a generate item');
      expect(first.prompt).toBe(`Question: ${data.math.search[0]?.question}\nAnswer:`);
      expect(first.answer).toBe(String(data.math.search[0]?.answer));
      const m = [...first.target.matchAll(new RegExp(math.answerRegex?.source ?? 'x', 'g'))];
      expect(m[0]?.[1]).toBe(first.answer);
      const facts = await loadTaskDefinition(path.join(dir, 'facts'));
      expect(facts.type).toBe('multiple_choice');
      const q = (await loadTaskItems(facts, facts.splits.test, 'test'))[0];
      if (q?.kind !== 'multiple_choice') throw new Error('expected a multiple_choice item');
      const want = splitQuestions(data.world, 'test', SMALL.seed)[0];
      expect(q.question).toBe(want?.prompt);
      expect(q.answer).toBe(want?.answer);
      // The validation questions: a single-file task of their own, apart from search and test.
      const validation = await loadTaskDefinition(path.join(dir, 'facts', 'validation.jsonl'));
      expect(validation.type).toBe('multiple_choice');
      const vItems = await loadTaskItems(validation, validation.splits.search, 'validation');
      const vWant = splitQuestions(data.world, 'validation', SMALL.seed);
      expect(vItems.length).toBe(vWant.length);
      expect(vItems.length).toBe(SMALL.validationEntities * RELATIONS.length);
      const heldPrompts = new Set([...splitQuestions(data.world, 'search', SMALL.seed), ...splitQuestions(data.world, 'test', SMALL.seed)].map((x) => x.prompt));
      for (const [i, item] of vItems.entries()) {
        if (item.kind !== 'multiple_choice') throw new Error('expected a multiple_choice item');
        expect(item.question).toBe(vWant[i]?.prompt);
        expect(item.answer).toBe(vWant[i]?.answer);
        expect(heldPrompts.has(item.question)).toBe(false);
      }
      expect(factTaskFiles(makeFactWorld(SMALL.seed, 24), SMALL.seed)['validation.jsonl']).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
