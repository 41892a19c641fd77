import type { Command } from 'commander';
import { DEFAULT_RUNS_DIR, listRuns, type RunListing } from '../store/run-directory.js';
import { emitResult } from './output.js';
import { formatBests, formatTable } from './run-format.js';

/** `evo runs --json` output. */
export interface RunsReport {
  readonly runsDir: string;
  readonly runs: readonly RunListing[];
}

export function formatRunsReport(report: RunsReport): string {
  if (report.runs.length === 0) return `no runs in ${report.runsDir}`;
  const rows: string[][] = [['NAME', 'STATUS', 'GENERATIONS', 'EVALUATIONS', 'FAILED', 'UNFINISHED', 'UPDATED', 'BEST']];
  const broken: string[] = [];
  for (const r of report.runs) {
    if (!r.ok) {
      rows.push([r.dir, 'unreadable', '-', '-', '-', '-', '-', r.code]);
      broken.push(`  ${r.dir}: ${r.error}`);
      continue;
    }
    const o = r.overview;
    rows.push([
      // The directory is what `evo show` takes; the run's own name only when it differs.
      o.name === r.dir ? r.dir : `${r.dir} (${o.name})`,
      o.status,
      `${o.generationsDone}/${o.generationsTarget}`,
      String(o.evaluations),
      String(o.failures),
      String(o.unfinished),
      o.updatedAt.replace(/\.\d+Z$/, 'Z'),
      formatBests(o.objectives, o.best),
    ]);
  }
  const table = formatTable(rows);
  return broken.length === 0 ? table : `${table}\n\nunreadable runs:\n${broken.join('\n')}`;
}

interface RunsFlags {
  runsDir: string;
  json: boolean;
}

/** Registers `evo runs [--runs-dir DIR] [--json]`. */
export function registerRuns(program: Command): void {
  program
    .command('runs')
    .description('list the runs in a runs directory: status, generations, evaluations and the best score per objective')
    .option('--runs-dir <dir>', 'directory holding one folder per run', DEFAULT_RUNS_DIR)
    .option('--json', 'print one JSON document instead of text', false)
    .action(async (flags: RunsFlags) => {
      const report: RunsReport = { runsDir: flags.runsDir, runs: await listRuns(flags.runsDir) };
      emitResult(flags.json, report, () => formatRunsReport(report));
    });
}
