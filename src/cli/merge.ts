import type { PermutationStats } from '../merge/vocab-permutation.js';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { formatConfigIssue } from '../merge/config-issue.js';
import { loadMergeConfig } from '../merge/config.js';
import { materializePlan } from '../merge/materialize.js';
import { resolvePlan } from '../merge/plan.js';
import type { MergePlan, ResolvedParams, TensorInput, TensorTask } from '../merge/task.js';
import { emitResult } from './output.js';
import { parseSizeBytes } from './size.js';

interface MergeFlags {
  out?: string;
  jobs?: string;
  seed: string;
  maxMemory?: string;
  shardSize?: string;
  intermediateDir?: string;
  dryRun: boolean;
  json: boolean;
  offline?: boolean;
}

/** One input of a task in the dry-run report. */
export interface DryRunInput {
  readonly model: string;
  /**
   * `file`: the stored tensor read; `stage`: the named stage's output tensor (computed in memory);
   * `permuted`: the stored tensor (or with `fromStage`, the stage's output tensor) re-indexed into
   * the tokenizer_source vocabulary.
   */
  readonly kind: 'file' | 'stage' | 'permuted';
  /** For `permuted` inputs: true when the rows come from a named stage's tensor (computed in memory). */
  readonly fromStage?: boolean;
  readonly tensor: string;
  readonly base: boolean;
  readonly params: ResolvedParams;
  /** For `permuted` inputs: how many rows are the model's own, borrowed, averaged and zero. */
  readonly permutation?: PermutationStats;
}

export interface DryRunTask {
  readonly output: string;
  readonly method: string;
  readonly outShape: readonly number[];
  readonly outDType: string;
  readonly computeDType: string;
  readonly params: ResolvedParams;
  readonly inputs: readonly DryRunInput[];
}

/** `evo merge --dry-run --json`: the resolved plan, without tensor data or file offsets. */
export interface DryRunReport {
  readonly tasks: readonly DryRunTask[];
  readonly stages: readonly { readonly name: string; readonly tasks: readonly DryRunTask[] }[];
  readonly outputConfig: Readonly<Record<string, unknown>>;
  readonly tokenizerDir: string | null;
  readonly tokenizerFiles: readonly string[];
  /** The tokenizer files written (vocabulary changed by tokenizer_source) instead of copied from tokenizerDir. */
  readonly tokenizerGenerated: readonly string[];
  readonly seed: number;
}

function inputTensor(input: TensorInput): string {
  return input.kind === 'stage' ? input.task.output : input.tensor;
}

function dryRunTask(t: TensorTask): DryRunTask {
  return {
    output: t.output,
    method: t.method,
    outShape: t.outShape,
    outDType: t.outDType,
    computeDType: t.computeDType,
    params: t.params,
    inputs: t.inputs.map((input, i) => ({
      model: input.model,
      kind: input.kind,
      tensor: inputTensor(input),
      base: i === t.baseIndex,
      params: t.modelParams[i] ?? {},
      ...(input.kind === 'permuted' ? { permutation: input.stats, ...(input.sources.some((s) => s.model === input.model && s.kind === 'stage') ? { fromStage: true } : {}) } : {}),
    })),
  };
}

/** The dry-run report of a plan (pure). */
export function dryRunReport(plan: MergePlan): DryRunReport {
  return {
    tasks: plan.tasks.map(dryRunTask),
    stages: plan.stages.map((s) => ({ name: s.name, tasks: s.tasks.map(dryRunTask) })),
    outputConfig: plan.outputConfig,
    tokenizerDir: plan.tokenizerDir,
    tokenizerFiles: plan.tokenizerFiles,
    tokenizerGenerated: Object.keys(plan.tokenizerGenerated ?? {}),
    seed: plan.seed,
  };
}

function formatParams(p: ResolvedParams): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

/**
 * One line per output tensor: name, method, dtypes, global parameters, then each input with its
 * own parameters (`*` marks the base; a stage input, permuted or not, reads `stage:tensor`).
 */
export function formatDryRunTask(t: DryRunTask): string {
  const inputs = t.inputs
    .map((i) => {
      const where = i.kind === 'stage' || i.fromStage === true || i.tensor !== t.output ? `${i.model}:${i.tensor}` : i.model;
      const params = formatParams(i.params);
      const p = i.permutation;
      // tokenizer_source: how the model's rows map into the output vocabulary (semantics §1.5).
      // tokenizer.tokens and pad_to_multiple_of rows are listed only when there are some.
      const extra = p === undefined ? '' : `${p.overridden > 0 ? `, ${p.overridden} overridden` : ''}${p.padded > 0 ? `, ${p.padded} padded` : ''}`;
      const perm = p === undefined ? '' : ` [permuted: ${p.own} own, ${p.borrowed} borrowed, ${p.averaged} averaged, ${p.zero} zero${extra}]`;
      return `${where}${i.base ? '*' : ''}${params ? ` (${params})` : ''}${perm}`;
    })
    .join(', ');
  const dtype = t.computeDType === t.outDType ? t.outDType : `${t.computeDType}→${t.outDType}`;
  const globals = formatParams(t.params);
  return `${t.output} [${t.outShape.join('×')}] ${dtype} ${t.method}${globals ? ` ${globals}` : ''} ← ${inputs}`;
}

export function formatDryRun(report: DryRunReport): string {
  const lines: string[] = [];
  for (const s of report.stages) {
    lines.push(`# stage ${s.name} (${s.tasks.length} tensors, computed in memory unless --intermediate-dir)`);
    for (const t of s.tasks) lines.push(formatDryRunTask(t));
  }
  if (report.stages.length > 0) lines.push('# final model');
  for (const t of report.tasks) lines.push(formatDryRunTask(t));
  const layers = report.outputConfig['num_hidden_layers'];
  const generated = report.tokenizerGenerated.length > 0 ? ` (${report.tokenizerGenerated.join(', ')} generated)` : '';
  lines.push(`${report.tasks.length} tensors, ${String(layers ?? '?')} layers; tokenizer from ${report.tokenizerDir ?? '(none)'}${generated}`);
  return lines.join('\n');
}

function positiveInt(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${option} must be a positive integer, got '${text}'`);
  return n;
}

function seedOf(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n > 0xffffffff) {
    throw new UsageError(`--seed must be an integer in [0, 4294967295], got '${text}'`);
  }
  return n;
}

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('build a model from a mergekit config (one or several YAML documents), with evomerge\'s kernels')
    .argument('<config>', 'mergekit YAML; model paths are relative to its folder')
    .option('--out <dir>', 'output model directory (required unless --dry-run)')
    .option('--jobs <n>', 'worker threads (default: the number of CPUs)')
    .option('--seed <n>', 'seed of the DARE / DELLA random masks', '0')
    .option('--max-memory <size>', 'working-memory budget, e.g. 4GB or 512MiB (default: min(25% of free RAM, 4 GiB))')
    .option('--shard-size <size>', 'largest weight file before sharding, e.g. 5GB (default: 5GB)')
    .option('--intermediate-dir <dir>', 'also write each named stage of a multi-document config to <dir>/<name>')
    .option('--dry-run', 'resolve and print the plan (one line per output tensor); write nothing', false)
    .option('--json', 'print JSON instead of text', false)
    .option('--offline', 'use only the Hugging Face cache for hub ids (default: $HF_HUB_OFFLINE)')
    .action(async (configFile: string, flags: MergeFlags) => {
      const seed = seedOf(flags.seed);
      const jobs = positiveInt(flags.jobs, '--jobs');
      const maxMemoryBytes = flags.maxMemory === undefined ? undefined : parseSizeBytes(flags.maxMemory, '--max-memory');
      const shardBytes = flags.shardSize === undefined ? undefined : parseSizeBytes(flags.shardSize, '--shard-size');
      if (!flags.dryRun && flags.out === undefined) throw new UsageError('merge: give --out <dir> (or --dry-run)');

      const parsed = await loadMergeConfig(configFile);
      const warn = (m: string): void => {
        process.stderr.write(`evo: warning: ${m}\n`);
      };
      for (const w of parsed.warnings) process.stderr.write(`evo: ${formatConfigIssue(configFile, w)}\n`);
      const plan = await resolvePlan(parsed.config, {
        configFile,
        seed,
        configText: parsed.text,
        ...(flags.offline === true ? { offline: true } : {}),
        onWarning: warn,
      });
      if (flags.dryRun) {
        const report = dryRunReport(plan);
        emitResult(flags.json, report, () => formatDryRun(report));
        return;
      }
      const summary = await materializePlan(plan, {
        outDir: flags.out ?? '',
        ...(jobs !== undefined ? { jobs } : {}),
        ...(maxMemoryBytes !== undefined ? { maxMemoryBytes } : {}),
        ...(shardBytes !== undefined ? { shardBytes } : {}),
        ...(flags.intermediateDir !== undefined ? { intermediateDir: flags.intermediateDir } : {}),
        progress: flags.json ? 'json' : 'auto',
      });
      emitResult(flags.json, summary, () => `wrote ${summary.tensors} tensors to ${summary.outDir} (${summary.files.join(', ')}) in ${summary.seconds.toFixed(1)} s`);
    });
}
