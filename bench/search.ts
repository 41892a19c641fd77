import type { Genome } from '../src/search/genome-vector.js';
import { buildGenomeSchema, groupMethods, type GenomeSchema } from '../src/search/genome.js';
import { createOptimizer } from '../src/search/optimizer-factory.js';
import { RngStreams } from '../src/search/rng.js';
import { parseSpace, type OptimizerConfig } from '../src/search/space.js';
import type { MethodId } from '../src/merge/task.js';

/**
 * `npm run bench -- search [--cap N] [--seeds N]`: evaluations that ga, cmaes and random need to
 * reach 99% of a synthetic objective's known optimum, over a realistic genome (32 layers in groups
 * of 4, 3 source models, self_attn / mlp / other classes, 3 methods: 144 continuous genes and 8
 * categorical ones). Median over seeds; runs that hit the cap are reported as not reached.
 *
 * Objective (maximized, optimum 1): per layer group g, q_g = M_g · exp(−D_g), where M_g = 1 if
 * the group's method is the target's and 0.85 otherwise, and D_g is the mean squared distance of
 * the group's normalized weights and densities to their targets (a method without density counts
 * as density 1). f = mean_g q_g. Two targets: every group dare_ties (the method the cmaes baseline
 * is frozen to), and a mix of methods that cmaes cannot express (its ceiling is then 0.906).
 * 99% of the optimum needs every method right and an RMS gene error of about 0.1.
 *
 * Rows: the space defaults of each kind, plus `ga-m0.1` (mutation_rate 0.1, mutation_eta 10):
 * the default per-gene rate 1/n is slow on 144 genes. `regret@N / random` is (1 − best) at N
 * evaluations divided by random search's, measured in the same run (lower is better).
 */

const SPACE = `name: bench-search
base_model: base
models: [m1, m2, m3]
genome:
  methods: [dare_ties, ties, task_arithmetic]
  layer_granularity: 4
  filters: [self_attn, mlp]
  weight: {min: 0, max: 1}
  density: {min: 0.1, max: 1}
objectives: [{name: synthetic, evaluator: synthetic}]
optimizer: {kind: ga, population: 16, elitism: 2}
`;

const LAYERS = 32;
const TARGET_FRACTION = 0.99;
/** The optimizers compared: the space's defaults, plus a GA with stronger mutation. */
const VARIANTS = [
  { name: 'ga', config: { kind: 'ga' } },
  { name: 'ga-m0.1', config: { kind: 'ga', mutationRate: 0.1, mutationEta: 10 } },
  { name: 'cmaes', config: { kind: 'cmaes', population: null, method: 'dare_ties' } },
  { name: 'random', config: { kind: 'random' } },
] as const satisfies readonly { name: string; config: Partial<OptimizerConfig> }[];
type Variant = (typeof VARIANTS)[number];

interface Problem {
  readonly name: string;
  readonly methods: readonly MethodId[];
  /** Per continuous gene: its normalized target (density genes of a no-density target method: 1). */
  readonly target: readonly number[];
}

function makeProblem(schema: GenomeSchema, name: string, methods: readonly MethodId[], seed: number): Problem {
  const rng = new RngStreams(seed).stream('targets');
  const target = schema.continuous.map((gene) => {
    const x = 0.15 + 0.7 * rng.next();
    const group = typeof gene.depth === 'number' ? gene.depth : 0;
    return gene.param === 'density' && methods[group] === 'task_arithmetic' ? 1 : x;
  });
  return { name, methods, target };
}

function objective(schema: GenomeSchema, problem: Problem): (g: Genome) => number {
  const groups = schema.groups.length;
  return (g) => {
    const methods = groupMethods(schema, g);
    const sq = new Array<number>(groups).fill(0);
    const count = new Array<number>(groups).fill(0);
    for (const gene of schema.continuous) {
      if (typeof gene.depth !== 'number') continue;
      const m = methods[gene.depth];
      const x = gene.param === 'density' && m === 'task_arithmetic' ? 1 : (g.continuous[gene.index] ?? 0);
      sq[gene.depth] = (sq[gene.depth] ?? 0) + (x - (problem.target[gene.index] ?? 0)) ** 2;
      count[gene.depth] = (count[gene.depth] ?? 0) + 1;
    }
    let f = 0;
    for (let k = 0; k < groups; k++) {
      const match = methods[k] === problem.methods[k] ? 1 : 0.85;
      f += match * Math.exp(-(sq[k] ?? 0) / Math.max(1, count[k] ?? 1));
    }
    return f / groups;
  };
}

interface RunResult {
  /** Evaluations until the best value first reached the target, or null. */
  readonly reachedAt: number | null;
  /** Best value after each checkpoint budget. */
  readonly bestAt: ReadonlyMap<number, number>;
  readonly evaluations: number;
  readonly ms: number;
}

function runOnce(schema: GenomeSchema, variant: Variant, f: (g: Genome) => number, seed: number, cap: number, checkpoints: readonly number[]): RunResult {
  const space = { ...schema.space, optimizer: { ...schema.space.optimizer, ...variant.config, seed } };
  const opt = createOptimizer({ ...schema, space }, new RngStreams(seed).child('optimizer'));
  const t0 = performance.now();
  let best = Number.NEGATIVE_INFINITY;
  let evaluations = 0;
  let reachedAt: number | null = null;
  const bestAt = new Map<number, number>();
  while (evaluations < cap) {
    const batch = opt.ask(Math.min(opt.nextBatchSize(), cap - evaluations));
    if (batch.length === 0) break;
    const results = batch.map((genome) => {
      const v = f(genome);
      evaluations++;
      if (v > best) best = v;
      for (const c of checkpoints) if (evaluations === c) bestAt.set(c, best);
      if (reachedAt === null && best >= TARGET_FRACTION) reachedAt = evaluations;
      return { genome, objectives: [v] };
    });
    opt.tell(results);
  }
  for (const c of checkpoints) if (!bestAt.has(c)) bestAt.set(c, best);
  return { reachedAt, bestAt, evaluations, ms: performance.now() - t0 };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? Number.NaN) + (s[m] ?? Number.NaN)) / 2;
}

function option(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export async function run(args: readonly string[]): Promise<void> {
  const cap = option(args, '--cap', 3000);
  const seeds = option(args, '--seeds', 5);
  const checkpoints = [250, 1000, cap].filter((c, i, a) => c <= cap && a.indexOf(c) === i);
  const schema = buildGenomeSchema(parseSpace(SPACE, 'bench-search.yaml'), LAYERS);
  process.stdout.write(
    `genome: ${LAYERS} layers / ${schema.groups.length} groups, ${schema.space.models.length} sources, classes ${schema.classes.join(' ')}: ` +
      `${schema.shape.continuous} continuous + ${schema.shape.categorical.length} categorical genes\n` +
      `target: ${TARGET_FRACTION * 100}% of the optimum (1.0); cap ${cap} evaluations; median over ${seeds} seeds; ` +
      `ga population 16 elitism 2, cmaes λ=${4 + Math.floor(3 * Math.log(schema.shape.continuous))} σ0=0.3 frozen to dare_ties, random population 16; duplicates by recipe hash\n\n`,
  );
  const problems = [
    makeProblem(schema, 'single method (dare_ties everywhere)', schema.groups.map(() => 'dare_ties'), 0),
    makeProblem(schema, 'mixed methods per group', ['ties', 'ties', 'dare_ties', 'dare_ties', 'task_arithmetic', 'ties', 'dare_ties', 'task_arithmetic'], 0),
  ];
  for (const problem of problems) {
    const f = objective(schema, problem);
    process.stdout.write(`== ${problem.name}\n`);
    const header = `${pad('optimizer', 10)}${pad('evals to 99% (median)', 24)}${pad('reached', 9)}${checkpoints.map((c) => pad(`best@${c}`, 12)).join('')}${pad(`regret@${checkpoints[1] ?? cap} / random`, 22)}ms/run\n`;
    process.stdout.write(header);
    const rows = new Map<string, RunResult[]>();
    for (const v of VARIANTS) rows.set(v.name, Array.from({ length: seeds }, (_, s) => runOnce(schema, v, f, s + 1, cap, checkpoints)));
    const regretOf = (name: string, c: number): number => median((rows.get(name) ?? []).map((r) => 1 - (r.bestAt.get(c) ?? 0)));
    const mid = checkpoints[1] ?? cap;
    for (const { name: kind } of VARIANTS) {
      const results = rows.get(kind) ?? [];
      const reached = results.filter((r) => r.reachedAt !== null);
      // The median counts unreached runs as +∞: it exists only when more than half reached.
      const sorted = results.map((r) => r.reachedAt ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b);
      const med = median(sorted);
      const evals = Number.isFinite(med) ? String(Math.round(med)) : `not reached (cap ${cap})`;
      const best = checkpoints.map((c) => pad(median(results.map((r) => r.bestAt.get(c) ?? 0)).toFixed(4), 12)).join('');
      const ratio = (regretOf(kind, mid) / regretOf('random', mid)).toFixed(3);
      const ms = median(results.map((r) => r.ms)).toFixed(0);
      process.stdout.write(`${pad(kind, 10)}${pad(evals, 24)}${pad(`${reached.length}/${results.length}`, 9)}${best}${pad(ratio, 22)}${ms}\n`);
    }
    process.stdout.write('\n');
  }
}
