import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeFromF32 } from '../../src/tensors/dtype.js';
import { writeSafetensors } from '../../src/tensors/safetensors-writer.js';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import type { RunStore } from '../../src/store/types.js';
import { writeTinyLlama, type TinyLlamaOptions } from '../fixtures/tiny-llama.js';

/**
 * A tiny real family for runner tests: a base, two fine-tunes of it, and a hidden target model
 * (task arithmetic of the fine-tunes with weights the search does not know, computed here in f32
 * independently of the merge engine). The test evaluator reads the merged model.safetensors and
 * scores minus the RMS distance to the target, so its score depends on the real merge.
 */

export const TARGET_WEIGHTS = [0.8, 0.3] as const;

export interface Family {
  readonly dir: string;
  readonly target: string;
  readonly evaluator: string;
  readonly numLayers: number;
}

/**
 * The test evaluator, a user module. Options: target (safetensors path), sleepMs (wait inside the
 * evaluation), markerDir (writes `eval-<id>` when an evaluation starts, so a test can kill the
 * process inside one), log (appends `start <hash>` and `end <hash>` lines: tests count
 * evaluations), failAbove (a candidate whose first weight gene exceeds it scores NaN: it fails),
 * throwOn (throws on the candidate with this id, as a broken evaluator would), metric: 'weightSum'
 * (scores the sum of the candidate's weight genes instead: a second, conflicting objective).
 */
const EVALUATOR = `import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function readF32Tensors(file) {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(name + ': expected F32, got ' + t.dtype);
    const [b, e] = t.data_offsets;
    const bytes = buf.subarray(8 + n + b, 8 + n + e);
    out.set(name, new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
  }
  return out;
}

export async function evaluate(candidate, options, context) {
  if (options.metric === 'weightSum') {
    return Object.entries(candidate.genome).filter(([k]) => k.includes('weight')).reduce((a, [, v]) => a + v, 0);
  }
  if (options.markerDir) writeFileSync(path.join(options.markerDir, 'eval-' + candidate.id), String(process.pid));
  if (options.log) appendFileSync(options.log, 'start ' + candidate.hash + '\\n');
  if (options.throwOn === Number(candidate.id)) throw new Error('evaluator broke on purpose');
  if (options.sleepMs) await new Promise((r) => setTimeout(r, options.sleepMs));
  const first = Object.entries(candidate.genome).find(([k]) => k.includes('weight'));
  if (options.failAbove !== undefined && first && first[1] > options.failAbove) {
    if (options.log) appendFileSync(options.log, 'end ' + candidate.hash + '\\n');
    return { score: Number.NaN, error: 'weight ' + first[1] + ' above ' + options.failAbove };
  }
  const got = readF32Tensors(path.join(candidate.dir, 'model.safetensors'));
  const want = readF32Tensors(options.target);
  let sq = 0;
  let count = 0;
  for (const [name, w] of want) {
    const g = got.get(name);
    if (!g || g.length !== w.length) throw new Error('candidate ' + candidate.id + ' lacks ' + name);
    for (let i = 0; i < w.length; i++) { const d = g[i] - w[i]; sq += d * d; }
    count += w.length;
  }
  if (options.log) appendFileSync(options.log, 'end ' + candidate.hash + '\\n');
  return { score: -Math.sqrt(sq / count), n: count, generation: context.generation };
}
`;

/**
 * A raceable test evaluator (objectives with `racing:`): `options.items` items q0..q(n-1) in a
 * seeded order (subsetOrder), each answered right with probability p, the candidate's true
 * accuracy, p = exp(sharpness × closeness) from the closeness evaluator above (so p depends on the
 * real merge). Whether an item is right is seeded by (genome, item id): the same candidate
 * answers the same item the same way in every run. It reports p in its details and logs
 * `start|end <hash> <first item> <count>` lines (tests count items); markerDir gets
 * `eval-<id>-<first item>` when an evaluation starts.
 */
const RACED_EVALUATOR = `import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { evaluate as closeness } from './closeness.mjs';

function unit(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) { h ^= text.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  // murmur3's finalizer: FNV alone leaves keys that differ in their last characters correlated.
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

export function subsetOrder(options, context) {
  const ids = Array.from({ length: options.items }, (_, i) => 'q' + i);
  let s = (context.seed >>> 0) || 1;
  for (let i = ids.length - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const j = s % (i + 1);
    const t = ids[i]; ids[i] = ids[j]; ids[j] = t;
  }
  return ids;
}

export async function evaluate(candidate, options, context) {
  const ids = context.itemIds ?? subsetOrder(options, context).slice(0, context.limit);
  const tag = candidate.hash + ' ' + ids[0] + ' ' + ids.length;
  if (options.markerDir) writeFileSync(path.join(options.markerDir, 'eval-' + candidate.id + '-' + ids[0]), String(process.pid));
  if (options.log) appendFileSync(options.log, 'start ' + tag + '\\n');
  if (options.sleepMs) await new Promise((r) => setTimeout(r, options.sleepMs));
  const close = await closeness(candidate, { target: options.target }, context);
  const p = Math.exp(options.sharpness * close.score);
  // Keyed by the genome, not the recipe hash: the hash covers model paths, which differ between test folders.
  const key = JSON.stringify(candidate.genome);
  const items = ids.map((id) => ({ id, correct: unit(key + ':' + id) < p }));
  if (options.log) appendFileSync(options.log, 'end ' + tag + '\\n');
  return { score: items.filter((i) => i.correct).length / items.length, n: items.length, items, p };
}
`;

export async function writeFamily(dir: string, opts: { layers?: number; hidden?: number; intermediate?: number } = {}): Promise<Family> {
  const dims: TinyLlamaOptions = { layers: opts.layers ?? 4, hidden: opts.hidden ?? 16, intermediate: opts.intermediate ?? 32, vocab: 32 };
  const base = await writeTinyLlama(path.join(dir, 'base'), { ...dims, seed: 0 });
  const ft1 = await writeTinyLlama(path.join(dir, 'ft1'), { ...dims, seed: 1, perturbFrom: { seed: 0, scale: 0.5 } });
  const ft2 = await writeTinyLlama(path.join(dir, 'ft2'), { ...dims, seed: 2, perturbFrom: { seed: 0, scale: 0.5 } });
  const tensors = base.tensorNames.map((name) => {
    const b = base.values.get(name) ?? new Float32Array();
    const a1 = ft1.values.get(name) ?? new Float32Array();
    const a2 = ft2.values.get(name) ?? new Float32Array();
    const t = new Float32Array(b.length);
    for (let i = 0; i < b.length; i++) t[i] = (b[i] ?? 0) + TARGET_WEIGHTS[0] * ((a1[i] ?? 0) - (b[i] ?? 0)) + TARGET_WEIGHTS[1] * ((a2[i] ?? 0) - (b[i] ?? 0));
    return { name, dtype: 'F32' as const, shape: base.shapes.get(name) ?? [], data: encodeFromF32('F32', t) };
  });
  const target = path.join(dir, 'target.safetensors');
  await writeSafetensors(target, tensors, { format: 'pt' });
  const evaluator = path.join(dir, 'closeness.mjs');
  await writeFile(evaluator, EVALUATOR);
  await writeFile(path.join(dir, 'raced.mjs'), RACED_EVALUATOR);
  return { dir, target, evaluator, numLayers: dims.layers ?? 4 };
}

export interface SpaceOptions {
  readonly name: string;
  readonly methods?: readonly string[];
  readonly granularity?: number;
  readonly population?: number;
  readonly generations?: number;
  readonly seed?: number;
  readonly kind?: 'ga' | 'nsga2' | 'cmaes' | 'random';
  readonly elitism?: number;
  readonly mergeSeed?: number;
  /** Extra evaluator options (sleepMs, markerDir, log). */
  readonly evaluatorOptions?: Readonly<Record<string, unknown>>;
  /** genome.weight range. Default: [0, 1]. */
  readonly weight?: readonly [number, number];
  /** genome.density range. Default: the space's default. */
  readonly density?: readonly [number, number];
  /** Add a second objective, minimized: the sum of the weight genes (the test evaluator's weightSum). */
  readonly heft?: boolean;
  /** optimizer.initial entries. Default: none. */
  readonly initial?: readonly string[];
  /** optimizer.max_evaluations. Default: none. */
  readonly maxEvaluations?: number;
  /**
   * Score `acc` with the raceable evaluator (raced.mjs) instead of closeness: `items` items,
   * `limit` per full evaluation, p = exp(sharpness × closeness), and the objective's `racing:`
   * mapping as YAML flow text (null: no racing, every candidate gets `limit` items).
   */
  readonly raced?: { readonly items: number; readonly limit: number; readonly sharpness: number; readonly racing: string | null };
}

/** Writes `<family>/<name>.yaml` and returns its path. Model paths are relative to it. */
export async function writeSpace(family: Family, o: SpaceOptions): Promise<string> {
  const options = { target: family.target, ...(o.evaluatorOptions ?? {}) };
  const kind = o.kind ?? 'ga';
  const text = [
    `name: ${o.name}`,
    'base_model: ./base',
    'models: [./ft1, ./ft2]',
    'genome:',
    `  methods: [${(o.methods ?? ['task_arithmetic']).join(', ')}]`,
    `  layer_granularity: ${o.granularity ?? 4}`,
    `  weight: {min: ${o.weight?.[0] ?? 0}, max: ${o.weight?.[1] ?? 1}}`,
    ...(o.density !== undefined ? [`  density: {min: ${o.density[0]}, max: ${o.density[1]}}`] : []),
    'objectives:',
    o.raced === undefined
      ? `  - {name: closeness, evaluator: {module: ./closeness.mjs, options: ${JSON.stringify(options)}}}`
      : `  - {name: acc, evaluator: {module: ./raced.mjs, options: ${JSON.stringify({ ...options, items: o.raced.items, sharpness: o.raced.sharpness })}}, limit: ${o.raced.limit}` +
        `${o.raced.racing === null ? '' : `, racing: ${o.raced.racing}`}}`,
    ...(o.heft === true ? ['  - {name: heft, evaluator: {module: ./closeness.mjs, options: {metric: weightSum}}, maximize: false}'] : []),
    'optimizer:',
    `  kind: ${kind}`,
    `  population: ${o.population ?? 6}`,
    `  generations: ${o.generations ?? 4}`,
    ...(kind === 'ga' ? [`  elitism: ${o.elitism ?? 2}`] : []),
    ...(o.maxEvaluations !== undefined ? [`  max_evaluations: ${o.maxEvaluations}`] : []),
    ...(o.initial !== undefined ? [`  initial: [${o.initial.join(', ')}]`] : []),
    `  seed: ${o.seed ?? 3}`,
    'dtype: float32',
    `merge_seed: ${o.mergeSeed ?? 0}`,
    '',
  ].join('\n');
  const file = path.join(family.dir, `${o.name}.yaml`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
  return file;
}

/**
 * Everything a deterministic run must reproduce, without times, attempts or events: candidates
 * (genome, config, hash, status), slots, scores, per-generation summaries and fronts, and the
 * optimizer's final state.
 */
export async function runSnapshot(store: RunStore): Promise<unknown> {
  const summaries = await store.generationSummaries();
  return {
    candidates: (await store.candidates()).map((c) => ({ id: c.id, generation: c.generation, index: c.index, genome: c.genome, config: c.config, hash: c.hash, status: c.status, error: c.error })),
    slots: await Promise.all(summaries.map(async (s) => (await store.candidatesOfGeneration(s.generation)).map((x) => [x.index, x.candidate.id, x.genome]))),
    results: (await store.results()).map((r) => ({ id: r.candidateId, scores: r.scores, itemsUsed: r.itemsUsed, modelBytes: r.modelBytes, evaluators: (r.details as { evaluators?: unknown } | null)?.evaluators ?? null })),
    fronts: await Promise.all(summaries.map(async (s) => (await store.front(s.generation)).map((x) => x.candidate.id))),
    summaries: summaries.map(({ recordedAt: _r, seconds: _s, ...rest }) => rest),
    optimizer: (await store.latestOptimizerState())?.optimizerState ?? null,
  };
}

/** Runs `fn` on a read-only store of run `name` under `runsDir`, closing it after. */
export async function withRunStore<T>(runsDir: string, name: string, fn: (store: RunStore) => Promise<T>): Promise<T> {
  const store = openSqliteRunStore(path.join(runsDir, name, 'run.db'), { readonly: true });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
