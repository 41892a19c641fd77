import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { LlamaCppBackend } from '../eval/backend.js';
import type { RunEvent, SearchEvent } from '../search/run-events.js';
import { runSearch, type SearchOptions } from '../search/runner.js';
import { DEFAULT_RUNS_DIR } from '../store/run-directory.js';
import type { ObjectiveBest } from '../store/types.js';
import { formatNumber, formatScore } from './run-format.js';
import { parseSizeBytes } from './size.js';
import { packageVersion } from './version.js';

interface SearchFlags {
  generations?: string;
  runsDir: string;
  resume?: boolean;
  force?: boolean;
  jobs?: string;
  maxMemory?: string;
  threads?: string;
  context?: string;
  json?: boolean;
  keepCandidates?: boolean;
}

function positiveInt(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${option} must be a positive integer, got '${text}'`);
  return n;
}

/** `1h02m`, `4m05s`, `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function bests(best: Readonly<Record<string, ObjectiveBest | null>>): string {
  const parts = Object.entries(best).flatMap(([name, b]) => (b === null ? [] : [`${name} ${formatScore(b)} (#${b.candidateId})`]));
  return parts.length === 0 ? '-' : parts.join('; ');
}

/** One line of text per generation / run / note event (stderr); null for the per-candidate ones. */
export function formatSearchEvent(e: SearchEvent): string | null {
  switch (e.event) {
    case 'note':
      return `evo: ${e.message}`;
    case 'generation': {
      const median = Object.entries(e.median)
        .map(([k, v]) => `${k} ${v === null ? '-' : formatNumber(v)}`)
        .join('; ');
      const race = e.race === null ? '' : `${e.race.itemsEvaluated}/${e.race.fullPassItems} ${e.race.objective} items raced (${((100 * e.race.itemsEvaluated) / Math.max(1, e.race.fullPassItems)).toFixed(1)}% of a full pass)`;
      const extra = [e.reused > 0 ? `${e.reused} reused` : '', e.failures > 0 ? `${e.failures} failed` : '', race].filter((x) => x !== '').join(', ');
      return (
        `gen ${e.generation + 1}/${e.lastGeneration + 1}: best ${bests(e.best)} | median ${median === '' ? '-' : median} | front ${e.front.length}` +
        ` | ${e.evaluations} evaluated${extra === '' ? '' : ` (${extra})`} in ${formatDuration(e.seconds)}, ${formatNumber(e.evaluationsPerSecond)} eval/s, ETA ${formatDuration(e.etaSeconds)}`
      );
    }
    case 'run':
      return null;
    case 'build':
    case 'evaluate':
    case 'candidate':
      return null;
    default: {
      const never: never = e;
      return String(never);
    }
  }
}

/** The final report of a search (stdout in text mode). */
export function formatRunSummary(e: RunEvent): string {
  const t = e.timing;
  const lines = [
    `run '${e.run}' ${e.status} (${e.reason}): ${e.generations} generations, ${e.candidates} candidates (${e.evaluations} evaluated, ${e.failures} failed)`,
    `best: ${bests(e.best)}`,
    `front: ${e.front.length === 0 ? '-' : e.front.map((id) => `#${id}`).join(' ')}`,
  ];
  if (t.candidates > 0) {
    lines.push(
      `this session: ${t.candidates} candidates in ${formatDuration(e.seconds)}; per candidate build ${formatNumber(t.buildSeconds / t.candidates)} s, ` +
        `evaluate ${formatNumber(t.evaluateSeconds / t.candidates)} s; evaluator idle ${formatNumber(100 * t.evaluatorIdleFraction)}% (overlap ×${formatNumber(t.overlapSpeedup)})`,
    );
  }
  lines.push(`store: ${e.store}`);
  return lines.join('\n');
}

async function execute(options: Omit<SearchOptions, 'signal' | 'onEvent' | 'packageVersion'>, json: boolean): Promise<void> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) process.exit(1);
    process.stderr.write(`evo: ${sig}: stopping after the work in flight is dropped (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await runSearch({
      ...options,
      signal: controller.signal,
      packageVersion: packageVersion(),
      onEvent: (e) => {
        if (json) process.stdout.write(`${JSON.stringify(e)}\n`);
        const line = formatSearchEvent(e);
        if (line !== null) process.stderr.write(`${line}\n`);
      },
    });
    if (!json) process.stdout.write(`${formatRunSummary(summary)}\n`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function commonOptions(flags: SearchFlags): Omit<SearchOptions, 'signal' | 'onEvent' | 'packageVersion' | 'spaceFile' | 'run'> {
  const generations = positiveInt(flags.generations, '--generations');
  const jobs = positiveInt(flags.jobs, '--jobs');
  const maxMemoryBytes = flags.maxMemory === undefined ? undefined : parseSizeBytes(flags.maxMemory, '--max-memory');
  const threads = positiveInt(flags.threads, '--threads');
  const contextSize = positiveInt(flags.context, '--context');
  return {
    runsDir: flags.runsDir,
    keepCandidates: flags.keepCandidates === true,
    ...(generations !== undefined ? { generations } : {}),
    ...(jobs !== undefined ? { jobs } : {}),
    ...(maxMemoryBytes !== undefined ? { maxMemoryBytes } : {}),
    ...(threads !== undefined || contextSize !== undefined
      ? { openBackend: () => LlamaCppBackend.open({ ...(threads !== undefined ? { threads } : {}), ...(contextSize !== undefined ? { contextSize } : {}) }) }
      : {}),
  };
}

function withRunOptions(cmd: Command): Command {
  return cmd
    .option('--generations <n>', 'generations to reach (default: the run\'s target, else the space\'s optimizer.generations)')
    .option('--runs-dir <dir>', 'directory holding one folder per run', DEFAULT_RUNS_DIR)
    .option('--jobs <n>', 'merge worker threads per candidate (default: the number of CPUs)')
    .option('--threads <n>', 'llama.cpp CPU threads for built-in task evaluators (default: the cores the current load leaves idle, at least 1)')
    .option('--max-memory <size>', 'working-memory budget of one merge, e.g. 4GB (default: min(25% of free RAM, 4 GiB))')
    .option('--context <n>', "llama.cpp tokens per sequence (default: min(2048, the model's training context))")
    .option('--keep-candidates', 'keep every candidate model in <run>/candidates/<id>/ (default: deleted after evaluation)')
    .option('--json', 'print one JSON object per event on stdout (candidate, generation, run)');
}

/** Registers `evo search SPACE.yaml [...]`. */
export function registerSearch(program: Command): void {
  withRunOptions(
    program
      .command('search')
      .description('start or continue the evolutionary search a space file describes (runs/<name>/run.db)')
      .argument('<space>', 'search space YAML; model and module paths are relative to its folder'),
  )
    .option('--resume', 'the run must exist already: continue it (a stopped or killed run continues where it was)')
    .option('--force', 'continue the run although the space file changed since it was created')
    .action(async (spaceFile: string, flags: SearchFlags) => {
      await execute({ ...commonOptions(flags), spaceFile, resume: flags.resume === true, force: flags.force === true }, flags.json === true);
    });
}

/** Registers `evo resume <run> [...]`. */
export function registerResume(program: Command): void {
  withRunOptions(
    program
      .command('resume')
      .description('continue a stopped or killed run from its store, with the space it was created (or last continued --force) with')
      .argument('<run>', 'run name (under --runs-dir), run directory, or run.db file'),
  ).action(async (run: string, flags: SearchFlags) => {
    await execute({ ...commonOptions(flags), run, resume: true, force: false }, flags.json === true);
  });
}
