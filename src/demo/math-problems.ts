import { Rng } from '../search/rng.js';

/**
 * GSM8K-format word problems with small-number arithmetic, for the demo family (issue 6). A
 * problem reads as lm-eval's gsm8k items do ("Question: …\nAnswer: <reasoning> #### N"), but its
 * numbers are below 20 and its reasoning is one or two equations, so a model of half a million
 * parameters can learn it. Pure: the problems depend only on the seed.
 */

export type MathOperation = 'add' | 'sub' | 'mul' | 'add_sub';

export interface MathProblem {
  /** The question text, without "Question: ". */
  readonly question: string;
  /** Reasoning and final answer, without the leading space: "5 + 7 = 12. #### 12". */
  readonly solution: string;
  /** The final number. */
  readonly answer: number;
  readonly operation: MathOperation;
}

const NAMES = ['Ann', 'Ben', 'Cal', 'Dot', 'Eve', 'Fay', 'Gus', 'Hal', 'Ivy', 'Jim'] as const;
const ITEMS = ['apples', 'pens', 'cards', 'shells', 'books', 'coins', 'eggs', 'cups'] as const;
const OPERATIONS: readonly MathOperation[] = ['add', 'sub', 'mul', 'add_sub'];

/** A uniform integer in [lo, hi]. */
function between(rng: Rng, [lo, hi]: readonly [number, number]): number {
  return lo + rng.int(hi - lo + 1);
}

/** Operand ranges shared by the word problems and the drills: numbers below 20 (issue 6). */
const ADDEND: readonly [number, number] = [1, 19];
const MUL_GROUPS: readonly [number, number] = [2, 5];
const MUL_EACH: readonly [number, number] = [2, 9];

/** The value of an equation chain, computed independently of the text (tests check the text against it). */
function problem(rng: Rng, op: MathOperation): MathProblem {
  const name = rng.pick(NAMES);
  const item = rng.pick(ITEMS);
  const small = (lo: number, hi: number): number => between(rng, [lo, hi]);
  switch (op) {
    case 'add': {
      const a = between(rng, ADDEND);
      const b = between(rng, ADDEND);
      return { operation: op, answer: a + b, question: `${name} has ${a} ${item}. ${name} gets ${b} more. How many ${item} does ${name} have now?`, solution: `${a} + ${b} = ${a + b}. #### ${a + b}` };
    }
    case 'sub': {
      const a = small(2, 19);
      const b = small(1, a - 1);
      return { operation: op, answer: a - b, question: `${name} has ${a} ${item}. ${name} gives away ${b}. How many ${item} does ${name} have left?`, solution: `${a} - ${b} = ${a - b}. #### ${a - b}` };
    }
    case 'mul': {
      const a = between(rng, MUL_GROUPS);
      const b = between(rng, MUL_EACH);
      return { operation: op, answer: a * b, question: `${name} has ${a} bags with ${b} ${item} in each bag. How many ${item} does ${name} have?`, solution: `${a} * ${b} = ${a * b}. #### ${a * b}` };
    }
    case 'add_sub': {
      const a = small(1, 12);
      const b = small(1, 9);
      const c = small(1, a + b - 1);
      const s = a + b;
      return {
        operation: op,
        answer: s - c,
        question: `${name} has ${a} ${item}. ${name} gets ${b} more and then gives away ${c}. How many ${item} does ${name} have left?`,
        solution: `${a} + ${b} = ${s}. ${s} - ${c} = ${s - c}. #### ${s - c}`,
      };
    }
    default: {
      const never: never = op;
      throw new RangeError(`unknown operation ${String(never)}`);
    }
  }
}

/** The lm-eval gsm8k prompt of a problem (zero-shot). */
export function mathPrompt(p: MathProblem): string {
  return `Question: ${p.question}\nAnswer:`;
}

/** The problem as one training document: prompt + " " + solution. */
export function mathDocument(p: MathProblem): string {
  return `${mathPrompt(p)} ${p.solution}`;
}

export interface MathSplits {
  readonly search: readonly MathProblem[];
  readonly test: readonly MathProblem[];
  /** Question texts of search and test: training problems never use one of them. */
  readonly held: ReadonlySet<string>;
}

/** Distinct problems for the search and test splits, disjoint by question text. */
export function mathSplits(seed: number, searchCount: number, testCount: number): MathSplits {
  const rng = new Rng(`demo-math/${seed}/eval`);
  const seen = new Set<string>();
  const take = (n: number): MathProblem[] => {
    const out: MathProblem[] = [];
    for (let tries = 0; out.length < n; tries++) {
      if (tries > n * 100) throw new RangeError(`mathSplits: could not draw ${n} distinct problems`);
      const p = problem(rng, OPERATIONS[out.length % OPERATIONS.length] ?? 'add');
      if (seen.has(p.question)) continue;
      seen.add(p.question);
      out.push(p);
    }
    return out;
  };
  const search = take(searchCount);
  const test = take(testCount);
  return { search, test, held: seen };
}

/** Training problems: seeded draws that skip every held-out question. */
export function trainingMathProblems(seed: string, count: number, held: ReadonlySet<string>): MathProblem[] {
  const rng = new Rng(`demo-math/${seed}/train`);
  const out: MathProblem[] = [];
  while (out.length < count) {
    const p = problem(rng, rng.pick(OPERATIONS));
    if (!held.has(p.question)) out.push(p);
  }
  return out;
}

/**
 * Bare equations of the tasks' arithmetic ("7 + 5 = 12. 3 * 4 = 12. 15 - 6 = 9."), three per
 * document: the sums, differences and products the word problems use, with no question text, so
 * a base can know its tables (as a pretrained model knows arithmetic) without the task's format.
 */
export function arithmeticDrills(seed: string, count: number): string[] {
  const rng = new Rng(`demo-math/${seed}/drills`);
  const equation = (): string => {
    switch (rng.int(3)) {
      case 0: {
        const a = between(rng, ADDEND);
        const b = between(rng, ADDEND);
        return `${a} + ${b} = ${a + b}.`;
      }
      case 1: {
        // From up to 28: more than the tasks need (add_sub's sums reach 12 + 9 = 21), kept so
        // that the drilled bases measured in the README train on the same text.
        const a = between(rng, [2, 28]);
        const b = between(rng, [1, a - 1]);
        return `${a} - ${b} = ${a - b}.`;
      }
      default: {
        const a = between(rng, MUL_GROUPS);
        const b = between(rng, MUL_EACH);
        return `${a} * ${b} = ${a * b}.`;
      }
    }
  };
  return Array.from({ length: count }, () => `${equation()} ${equation()} ${equation()}`);
}
