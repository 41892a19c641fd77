import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { StoreError } from '../store/errors.js';
import { DEFAULT_RUNS_DIR, resolveRunDb } from '../store/run-directory.js';
import { openSqliteRunStore } from '../store/sqlite-store.js';
import type { JsonValue, RunRecord, RunStore, ScoredCandidate, ScoreRecord } from '../store/types.js';
import { writeFileAtomic } from '../tensors/atomic-file.js';
import { emitResult } from './output.js';
import { formatScore } from './run-format.js';
import { materializeCandidates, type MaterializedCandidate } from './export-materialize.js';

export type ExportFormat = 'mergekit' | 'recipe';

/** Which candidates to export. */
export type ExportSelection =
  | { readonly kind: 'best'; readonly objective: string }
  | { readonly kind: 'front' }
  | { readonly kind: 'candidate'; readonly id: number };

/** One candidate in an evomerge recipe file. */
export interface RecipeCandidate {
  readonly id: number;
  readonly generation: number;
  readonly index: number;
  readonly hash: string;
  readonly status: string;
  readonly genome: JsonValue;
  /** The mergekit config (YAML text) that was built and scored. */
  readonly config: string;
  /** Null until the candidate is evaluated. */
  readonly scores: Readonly<Record<string, ScoreRecord>> | null;
  readonly itemsUsed: number | null;
  readonly seconds: number | null;
  readonly modelBytes: number | null;
  readonly details: JsonValue;
}

/** `--format recipe`: our JSON with the run's identity, the genome(s), configs and scores. */
export interface Recipe {
  readonly format: 'evomerge-recipe';
  readonly version: 1;
  readonly run: Pick<RunRecord, 'name' | 'spaceHash' | 'packageVersion' | 'seeds' | 'objectives'>;
  readonly selection: ExportSelection;
  readonly candidates: readonly RecipeCandidate[];
}

export interface ExportReport {
  readonly run: string;
  readonly format: ExportFormat;
  readonly selection: ExportSelection;
  readonly files: readonly string[];
  readonly candidates: readonly number[];
  /** Model directories rebuilt with --materialize (empty without it). */
  readonly materialized: readonly MaterializedCandidate[];
}

/** The candidates a selection names, or a named error. */
export async function selectCandidates(store: RunStore, run: RunRecord, selection: ExportSelection): Promise<readonly ScoredCandidate[]> {
  switch (selection.kind) {
    case 'best': {
      const best = await store.best(selection.objective, 1);
      if (best.length === 0) throw new StoreError('UNKNOWN_CANDIDATE', `run '${run.name}' has no evaluated candidate yet, so no best by ${selection.objective}`);
      return best;
    }
    case 'front': {
      const front = await store.front();
      if (front.length === 0) throw new StoreError('UNKNOWN_CANDIDATE', `run '${run.name}' has no recorded generation yet, so no front`);
      return front;
    }
    case 'candidate': {
      const c = await store.candidate(selection.id);
      if (c === undefined) throw new StoreError('UNKNOWN_CANDIDATE', `run '${run.name}' has no candidate ${selection.id}`);
      return [{ candidate: c, result: (await store.result(c.id)) ?? null }];
    }
    default: {
      const never: never = selection;
      throw new Error(`unknown selection ${String(never)}`);
    }
  }
}

export function recipeOf(run: RunRecord, selection: ExportSelection, candidates: readonly ScoredCandidate[]): Recipe {
  return {
    format: 'evomerge-recipe',
    version: 1,
    run: { name: run.name, spaceHash: run.spaceHash, packageVersion: run.packageVersion, seeds: run.seeds, objectives: run.objectives },
    selection,
    candidates: candidates.map(({ candidate: c, result: r }) => ({
      id: c.id,
      generation: c.generation,
      index: c.index,
      hash: c.hash,
      status: c.status,
      genome: c.genome,
      config: c.config,
      scores: r?.scores ?? null,
      itemsUsed: r?.itemsUsed ?? null,
      seconds: r?.seconds ?? null,
      modelBytes: r?.modelBytes ?? null,
      details: r?.details ?? null,
    })),
  };
}

interface ExportFlags {
  runsDir: string;
  best?: boolean;
  front?: boolean;
  candidate?: string;
  objective?: string;
  output?: string;
  format: string;
  json: boolean;
  materialize?: string;
  jobs?: string;
}

function parseSelection(flags: ExportFlags, run: RunRecord): ExportSelection {
  const chosen = [flags.best === true, flags.front === true, flags.candidate !== undefined].filter(Boolean).length;
  if (chosen > 1) throw new UsageError('choose one of --best, --front and --candidate ID');
  if (flags.front === true) return { kind: 'front' };
  if (flags.candidate !== undefined) {
    const id = Number(flags.candidate);
    if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`--candidate must be a candidate id (1, 2, ...), got ${flags.candidate}`);
    return { kind: 'candidate', id };
  }
  const names = run.objectives.map((o) => o.name);
  const objective = flags.objective ?? (names.length === 1 ? names[0] : undefined);
  if (objective === undefined) throw new UsageError(`run '${run.name}' has several objectives (${names.join(', ')}): say which with --objective NAME`);
  if (!names.includes(objective)) throw new UsageError(`--objective ${objective} is not one of run '${run.name}''s objectives (${names.join(', ')})`);
  return { kind: 'best', objective };
}

/** Registers `evo export <run> [--best | --front | --candidate ID] [--objective NAME] -o FILE [--format mergekit|recipe]`. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write the mergekit config (or an evomerge recipe) of the best candidate, the Pareto front, or one candidate of a run')
    .argument('<run>', 'run name (under --runs-dir), run directory, or run.db file')
    .option('--runs-dir <dir>', 'directory holding one folder per run', DEFAULT_RUNS_DIR)
    .option('--best', 'the best candidate by --objective (the default selection)')
    .option('--front', 'every candidate of the latest Pareto front (mergekit: -o is a directory, one YAML per candidate)')
    .option('--candidate <id>', 'one candidate by id')
    .option('--objective <name>', 'objective for --best (default: the only one)')
    .option('-o, --output <path>', 'file to write (directory for --front with --format mergekit)')
    .option('--format <format>', 'mergekit (the YAML that was built and scored) or recipe (JSON: genome, config, scores)', 'mergekit')
    .option('--json', 'print what was written as JSON', false)
    .option('--materialize <dir>', 'also rebuild the model(s) with the merge engine into <dir> (one <dir>/candidate-<id>/ per candidate with --front)')
    .option('--jobs <n>', 'merge worker threads for --materialize (default: the number of CPUs)')
    .action(async (runArg: string, flags: ExportFlags) => {
      if (flags.format !== 'mergekit' && flags.format !== 'recipe') throw new UsageError(`--format must be mergekit or recipe, got ${flags.format}`);
      const format: ExportFormat = flags.format;
      if (flags.output === undefined && flags.materialize === undefined) throw new UsageError('say where to write with -o FILE (or --materialize DIR)');
      const output = flags.output;
      const store = openSqliteRunStore(resolveRunDb(flags.runsDir, runArg), { readonly: true });
      try {
        const run = await store.getRun();
        if (run === undefined) throw new StoreError('RUN_MISSING', `${store.location}: no run was created in this store`);
        const selection = parseSelection(flags, run);
        const candidates = await selectCandidates(store, run, selection);
        const files: string[] = [];
        if (output === undefined) {
          // --materialize alone: no config file is written.
        } else if (format === 'recipe') {
          mkdirSync(path.dirname(path.resolve(output)), { recursive: true });
          files.push(output);
          await writeFileAtomic(output, `${JSON.stringify(recipeOf(run, selection, candidates), null, 2)}\n`);
        } else if (selection.kind === 'front') {
          mkdirSync(output, { recursive: true });
          for (const c of candidates) {
            const file = path.join(output, `candidate-${c.candidate.id}.yml`);
            await writeFileAtomic(file, c.candidate.config);
            files.push(file);
          }
        } else {
          const only = candidates[0];
          if (only !== undefined) {
            mkdirSync(path.dirname(path.resolve(output)), { recursive: true });
            await writeFileAtomic(output, only.candidate.config);
            files.push(output);
          }
        }
        const materialized =
          flags.materialize === undefined
            ? []
            : await materializeCandidates(store, run, candidates, { dir: flags.materialize, perCandidate: selection.kind === 'front', baseDir: path.dirname(store.location), jobs: flags.jobs });
        const report: ExportReport = { run: run.name, format, selection, files, candidates: candidates.map((c) => c.candidate.id), materialized };
        emitResult(flags.json, report, () =>
          candidates
            .map((c) => {
              const scores = run.objectives.flatMap((o) => {
                const s = c.result?.scores[o.name];
                return s === undefined ? [] : [`${o.name} ${formatScore(s)}`];
              });
              return `#${c.candidate.id} (${c.candidate.status}${scores.length === 0 ? '' : `: ${scores.join('; ')}`})`;
            })
            .concat(files.map((f) => `wrote ${f}`))
            .concat(materialized.map((m) => `built #${m.id} into ${m.dir} (${m.tensors} tensors, merge seed ${m.mergeSeed})`))
            .join('\n'),
        );
      } finally {
        await store.close();
      }
    });
}
