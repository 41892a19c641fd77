import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { StoreError } from '../store/errors.js';
import { DEFAULT_RUNS_DIR, resolveRunDb } from '../store/run-directory.js';
import { openSqliteRunStore } from '../store/sqlite-store.js';
import type { GenerationSummary, ObjectiveSpec, RunOverview, RunRecord, RunStore, ScoredCandidate, ScoreRecord } from '../store/types.js';
import { emitResult } from './output.js';
import { formatBests, formatNumber, formatScore, formatSize, formatTable } from './run-format.js';

/** A candidate as `evo show` reports it. */
export interface ShownCandidate {
  readonly id: number;
  readonly generation: number;
  readonly index: number;
  readonly hash: string;
  readonly status: string;
  /** Empty until the candidate is done. */
  readonly scores: Readonly<Record<string, ScoreRecord>>;
  readonly itemsUsed: number | null;
  readonly seconds: number | null;
  readonly modelBytes: number | null;
}

/** `evo show --json` output. */
export interface ShowReport {
  readonly file: string;
  readonly run: Pick<RunRecord, 'name' | 'status' | 'spaceHash' | 'seeds' | 'packageVersion' | 'objectives' | 'createdAt' | 'updatedAt'>;
  readonly overview: RunOverview;
  /** The generation whose front is shown (the last recorded), or null before the first. */
  readonly frontGeneration: number | null;
  readonly front: readonly ShownCandidate[];
  /** Per objective, the `top` best done candidates, best first. */
  readonly best: Readonly<Record<string, readonly ShownCandidate[]>>;
  readonly generations: readonly GenerationSummary[];
}

function shown(s: ScoredCandidate): ShownCandidate {
  return {
    id: s.candidate.id,
    generation: s.candidate.generation,
    index: s.candidate.index,
    hash: s.candidate.hash,
    status: s.candidate.status,
    scores: s.result?.scores ?? {},
    itemsUsed: s.result?.itemsUsed ?? null,
    seconds: s.result?.seconds ?? null,
    modelBytes: s.result?.modelBytes ?? null,
  };
}

/** Gathers what `evo show` prints from any RunStore. */
export async function showReport(store: RunStore, top: number): Promise<ShowReport> {
  const run = await store.getRun();
  const overview = await store.overview();
  if (run === undefined || overview === undefined) throw new StoreError('RUN_MISSING', `${store.location}: no run was created in this store`);
  const generations = await store.generationSummaries();
  const best: Record<string, readonly ShownCandidate[]> = {};
  for (const o of run.objectives) best[o.name] = (await store.best(o.name, top)).map(shown);
  return {
    file: store.location,
    run: {
      name: run.name,
      status: run.status,
      spaceHash: run.spaceHash,
      seeds: run.seeds,
      packageVersion: run.packageVersion,
      objectives: run.objectives,
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
    },
    overview,
    frontGeneration: generations.at(-1)?.generation ?? null,
    front: (await store.front()).map(shown),
    best,
    generations,
  };
}

function candidateTable(objectives: readonly ObjectiveSpec[], candidates: readonly ShownCandidate[]): string {
  const header = ['ID', 'GEN', ...objectives.map((o) => `${o.name} (${o.direction === 'maximize' ? 'max' : 'min'})`), 'SIZE', 'SECONDS', 'RECIPE'];
  const rows = candidates.map((c) => [
    `#${c.id}`,
    String(c.generation),
    ...objectives.map((o) => {
      const s = c.scores[o.name];
      return s === undefined ? '-' : formatScore(s);
    }),
    formatSize(c.modelBytes),
    c.seconds === null ? '-' : formatNumber(c.seconds),
    c.hash.length > 12 ? c.hash.slice(0, 12) : c.hash,
  ]);
  return formatTable([header, ...rows])
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

export function formatShowReport(r: ShowReport): string {
  const o = r.overview;
  const lines: string[] = [];
  const row = (label: string, value: string): void => {
    lines.push(`${label.padEnd(13)}${value}`);
  };
  row('run', `${r.run.name} (${r.file})`);
  row('status', `${r.run.status}; ${o.generationsDone} of ${o.generationsTarget} generations; updated ${r.run.updatedAt}`);
  row('candidates', `${o.candidates}: ${o.evaluations} evaluated, ${o.failures} failed, ${o.unfinished} unfinished`);
  row('objectives', r.run.objectives.map((x) => `${x.name} (${x.direction})`).join(', '));
  row('best', formatBests(r.run.objectives, o.best));
  row('space', r.run.spaceHash);
  row('seeds', Object.entries(r.run.seeds).map(([k, v]) => `${k}=${v}`).join(' ') || '-');
  row('created', `${r.run.createdAt} by evomerge ${r.run.packageVersion}`);
  lines.push('');
  if (r.frontGeneration === null) lines.push('front: no generation recorded yet');
  else {
    lines.push(`front after generation ${r.frontGeneration} (${r.front.length} candidates)`);
    lines.push(candidateTable(r.run.objectives, r.front));
  }
  for (const obj of r.run.objectives) {
    const best = r.best[obj.name] ?? [];
    lines.push('');
    lines.push(`best by ${obj.name} (${obj.direction})`);
    lines.push(best.length === 0 ? '  no results yet' : candidateTable(r.run.objectives, best));
  }
  if (r.generations.length > 0) {
    lines.push('');
    lines.push('generations');
    const header = ['GEN', 'SLOTS', 'NEW', 'FAILED', 'REUSED', 'FRONT', ...r.run.objectives.flatMap((x) => [`BEST ${x.name}`, `MEDIAN ${x.name}`]), 'SECONDS'];
    const rows = r.generations.map((g) => [
      String(g.generation),
      String(g.slots),
      String(g.evaluations),
      String(g.failures),
      String(g.reused),
      String(g.frontSize),
      ...r.run.objectives.flatMap((x) => {
        const b = g.best[x.name];
        const m = g.median[x.name];
        return [b === null || b === undefined ? '-' : `${formatScore(b)} (#${b.candidateId})`, m === null || m === undefined ? '-' : formatNumber(m)];
      }),
      formatNumber(g.seconds),
    ]);
    lines.push(
      formatTable([header, ...rows])
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  }
  return lines.join('\n');
}

interface ShowFlags {
  runsDir: string;
  json: boolean;
  top: string;
}

/** Registers `evo show <run> [--runs-dir DIR] [--top N] [--json]`. */
export function registerShow(program: Command): void {
  program
    .command('show')
    .description("show a run: status, the Pareto front and the best candidates per objective with scores, CIs, sample and model sizes")
    .argument('<run>', 'run name (under --runs-dir), run directory, or run.db file')
    .option('--runs-dir <dir>', 'directory holding one folder per run', DEFAULT_RUNS_DIR)
    .option('--top <n>', 'best candidates to list per objective', '3')
    .option('--json', 'print one JSON document instead of text', false)
    .action(async (runArg: string, flags: ShowFlags) => {
      const top = Number(flags.top);
      if (!Number.isSafeInteger(top) || top < 1) throw new UsageError(`--top must be a positive integer, got ${flags.top}`);
      const store = openSqliteRunStore(resolveRunDb(flags.runsDir, runArg), { readonly: true });
      try {
        const report = await showReport(store, top);
        emitResult(flags.json, report, () => formatShowReport(report));
      } finally {
        await store.close();
      }
    });
}
