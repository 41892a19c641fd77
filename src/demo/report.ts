/**
 * The demo's final measurement: every model of interest scored by llama.cpp on the sealed TEST
 * split of both demo tasks, with Wilson 95% intervals.
 *
 *   node dist/src/demo/report.js [--run demo] [--runs-dir runs] [--family demo/family]
 *       [--tasks demo/tasks] [--threads 1] [--limit N] [--json FILE]
 *
 * Rows: the base and both specialists; three merges with default parameters (linear 50/50 of the
 * specialists, ties and task_arithmetic with weight 1 each and the methods' default density /
 * normalize); and from the run's Pareto front the best on each objective and the best combined.
 * The evolved candidates are picked on the SEARCH scores the run stored (never on test).
 * "combined" weighs both tasks equally (the mean of the two accuracies, so the task with more test
 * items does not dominate), with a 95% interval from score-models.ts `combined`; on the search
 * scores the run stored, the same mean picks the best combined candidate.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../errors.js';
import { LlamaCppBackend } from '../eval/backend.js';
import { CandidateBuilder, CheckpointCache } from '../search/candidate-builder.js';
import { writeFileAtomic } from '../tensors/atomic-file.js';
import { resolveRunDb } from '../store/run-directory.js';
import { openSqliteRunStore } from '../store/sqlite-store.js';
import type { ScoredCandidate } from '../store/types.js';
import { type DemoScores, combined, formatCombined, formatCount, loadDemoTasks, scoreDemoModel } from './score-models.js';

export interface ReportOptions {
  readonly run: string;
  readonly runsDir: string;
  readonly familyDir: string;
  readonly tasksDir: string;
  /** llama.cpp threads. Default: 1 (fastest for these tiny models on a busy 2-core box). */
  readonly threads: number;
  /** Test items per task (a seeded subset); Infinity: the whole split. */
  readonly limit: number;
  readonly log: (line: string) => void;
}

export interface ReportRow extends DemoScores {
  readonly label: string;
  /** Store candidate id for evolved rows. */
  readonly candidateId: number | null;
}

/** Merges with default parameters, as mergekit YAML over the family folders. */
export function defaultMergeConfigs(familyDir: string): { label: string; yaml: string }[] {
  const m = (name: string): string => JSON.stringify(path.resolve(familyDir, name));
  return [
    { label: 'linear 50/50', yaml: `merge_method: linear\nmodels:\n  - model: ${m('math')}\n    parameters: {weight: 0.5}\n  - model: ${m('facts')}\n    parameters: {weight: 0.5}\ndtype: float32\n` },
    {
      label: 'ties (default)',
      yaml: `merge_method: ties\nbase_model: ${m('base')}\nmodels:\n  - model: ${m('math')}\n    parameters: {weight: 1.0}\n  - model: ${m('facts')}\n    parameters: {weight: 1.0}\ndtype: float32\n`,
    },
    {
      label: 'task_arithmetic (default)',
      yaml: `merge_method: task_arithmetic\nbase_model: ${m('base')}\nmodels:\n  - model: ${m('math')}\n    parameters: {weight: 1.0}\n  - model: ${m('facts')}\n    parameters: {weight: 1.0}\ndtype: float32\n`,
    },
  ];
}

function searchScore(c: ScoredCandidate, objective: 'math' | 'facts'): number {
  return c.result?.scores[objective]?.value ?? -Infinity;
}

/** Mean search accuracy of both objectives (each task weighted equally, as on the test table). */
function searchCombined(c: ScoredCandidate): number {
  const m = c.result?.scores.math;
  const f = c.result?.scores.facts;
  if (m === undefined || f === undefined) return -Infinity;
  return (m.value + f.value) / 2;
}

function bestBy(front: readonly ScoredCandidate[], score: (c: ScoredCandidate) => number): ScoredCandidate | undefined {
  let best: ScoredCandidate | undefined;
  for (const c of front) if (best === undefined || score(c) > score(best) || (score(c) === score(best) && c.candidate.id < best.candidate.id)) best = c;
  return best;
}

/** The table as text: one row per model, n per column in the header. */
export function formatReportTable(rows: readonly ReportRow[]): string {
  const first = rows[0];
  if (first === undefined) return '(no rows)';
  const width = Math.max(...rows.map((r) => r.label.length), 5);
  const head = `${'model'.padEnd(width)}  ${`math (n=${first.math.n})`.padEnd(24)}${`facts (n=${first.facts.n})`.padEnd(24)}combined (mean of both)`;
  const lines = rows.map((r) => `${r.label.padEnd(width)}  ${formatCount(r.math).padEnd(24)}${formatCount(r.facts).padEnd(24)}${formatCombined(combined(r))}`);
  return [head, '-'.repeat(head.length), ...lines, '', 'test split (sealed); accuracy with Wilson 95% intervals; combined = mean of both accuracies, normal 95% interval'].join('\n');
}

export async function demoReport(options: ReportOptions): Promise<ReportRow[]> {
  const file = resolveRunDb(options.runsDir, options.run);
  const store = openSqliteRunStore(file, { readonly: true });
  let front: readonly ScoredCandidate[];
  let mergeSeed = 0;
  try {
    front = (await store.front()).filter((c) => c.result !== null);
    const run = await store.getRun();
    mergeSeed = typeof run?.seeds.merge === 'number' ? run.seeds.merge : 0;
  } finally {
    await store.close();
  }
  if (front.length === 0) throw new UsageError(`${file}: the run has no evaluated Pareto front yet`);
  const picks: { label: string; c: ScoredCandidate | undefined }[] = [
    { label: 'evolved: best math', c: bestBy(front, (c) => searchScore(c, 'math')) },
    { label: 'evolved: best facts', c: bestBy(front, (c) => searchScore(c, 'facts')) },
    { label: 'evolved: best combined', c: bestBy(front, searchCombined) },
  ];

  const work = await mkdtemp(path.join(os.tmpdir(), 'evo-demo-report-'));
  const backend = await LlamaCppBackend.open({ threads: options.threads, contextSize: 256, gpu: false });
  try {
    const tasks = await loadDemoTasks(options.tasksDir);
    const builder = new CandidateBuilder({ mergeSeed, checkpoints: new CheckpointCache(process.cwd()) });
    const models: { label: string; candidateId: number | null; dir: () => Promise<string> }[] = [
      ...['base', 'math', 'facts'].map((m) => ({ label: m === 'base' ? 'base' : `${m} specialist`, candidateId: null, dir: async () => path.resolve(options.familyDir, m) })),
      ...defaultMergeConfigs(options.familyDir).map((d, i) => ({
        label: d.label,
        candidateId: null,
        dir: async () => (await builder.build(d.yaml, path.join(work, `default-${i}`), `${d.label} merge`)).dir,
      })),
      ...picks.flatMap((p) => {
        const c = p.c;
        if (c === undefined) return [];
        return [{ label: `${p.label} (#${c.candidate.id})`, candidateId: c.candidate.id, dir: async () => (await builder.build(c.candidate.config, path.join(work, `candidate-${c.candidate.id}`), `candidate ${c.candidate.id}`)).dir }];
      }),
    ];
    const rows: ReportRow[] = [];
    for (const m of models) {
      const t0 = performance.now();
      const row = { label: m.label, candidateId: m.candidateId, ...(await scoreDemoModel(backend, tasks, m.label, await m.dir(), 'test', options.limit)) };
      rows.push(row);
      options.log(`  ${m.label}: math ${formatCount(row.math)}, facts ${formatCount(row.facts)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    return rows;
  } finally {
    await backend.close();
    await rm(work, { recursive: true, force: true });
  }
}

function parseArgs(argv: readonly string[]): ReportOptions & { json: string | undefined } {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const known = new Set(['--run', '--runs-dir', '--family', '--tasks', '--threads', '--limit', '--json']);
  argv.forEach((a, i) => {
    if (a.startsWith('--') && !known.has(a)) throw new UsageError(`unknown option ${a}; options: ${[...known].join(', ')}`);
    if (!a.startsWith('--') && !(i > 0 && known.has(argv[i - 1] ?? ''))) throw new UsageError(`unexpected argument ${a}`);
  });
  const int = (flag: string, fallback: number): number => {
    const v = get(flag);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${v}'`);
    return n;
  };
  return {
    run: get('--run') ?? 'demo',
    runsDir: get('--runs-dir') ?? 'runs',
    familyDir: get('--family') ?? 'demo/family',
    tasksDir: get('--tasks') ?? 'demo/tasks',
    threads: int('--threads', 1),
    limit: int('--limit', Number.POSITIVE_INFINITY),
    json: get('--json'),
    log: (line) => process.stderr.write(`${line}\n`),
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  options.log(`scoring on the sealed test split (llama.cpp, ${options.threads} thread${options.threads === 1 ? '' : 's'}):`);
  const rows = await demoReport(options);
  process.stdout.write(`\n${formatReportTable(rows)}\n`);
  if (options.json !== undefined) await writeFileAtomic(options.json, `${JSON.stringify({ split: 'test', combined: 'mean of both tasks\' accuracies', rows: rows.map((r) => ({ ...r, combined: combined(r) })) }, null, 2)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`demo report: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
