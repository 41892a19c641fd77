import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { GenericTaskEvaluator } from '../../evaluators/generic.js';
import { UsageError } from '../errors.js';
import { LlamaCppBackend, statsDelta } from '../eval/backend.js';
import { BUILTIN_DATASETS, downloadDatasets, resolveDataDir } from '../eval/datasets.js';
import type { BuiltinDataset } from '../eval/datasets.js';
import { OpenAiBackend } from '../eval/openai.js';
import type { OpenAiLogprobsMode } from '../eval/openai.js';
import { createEvaluator, loadUserEvaluator } from '../eval/registry.js';
import type { Candidate, EvalSplit, EvaluationResult, Evaluator, InferenceBackend, ItemResult, JsonObject } from '../eval/types.js';
import { emitResult } from './output.js';

interface EvalFlags {
  tasks: string;
  limit?: string;
  split: string;
  dataDir?: string;
  seed: string;
  shots?: string;
  maxTokens?: string;
  backend: string;
  baseUrl?: string;
  serverModel?: string;
  logprobs: string;
  threads?: string;
  cpu: boolean;
  context?: string;
  sequences?: string;
  download: boolean;
  json: boolean;
}

/** One task's figures in `evo eval --json`. */
export interface EvalTaskReport {
  readonly task: string;
  readonly evaluator: string;
  readonly split: EvalSplit;
  readonly score: number;
  readonly ci: readonly [number, number] | null;
  readonly stderr: number | null;
  readonly n: number;
  readonly seconds: number;
  readonly itemsPerSecond: number;
  readonly generatedTokens: number;
  readonly scoredTokens: number;
  /** (generated + scored continuation tokens) / seconds. */
  readonly tokensPerSecond: number;
  readonly truncatedPrompts: number;
  readonly details: JsonObject;
  readonly items: readonly ItemResult[];
}

/** `evo eval --json` output. */
export interface EvalReport {
  readonly model: string;
  readonly backend: string;
  readonly split: EvalSplit;
  readonly seed: number;
  readonly limit: number | null;
  /** Seconds spent converting an HF folder to GGUF (0 for a .gguf or a server). */
  readonly convertSeconds: number;
  readonly loadSeconds: number;
  readonly tasks: readonly EvalTaskReport[];
}

function intFlag(text: string | undefined, flag: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be an integer ≥ ${min}, got '${text}'`);
  return n;
}

const BUILTIN_TASKS = ['gsm8k', 'mmlu'] as const;

function isBuiltinTask(name: string): name is (typeof BUILTIN_TASKS)[number] {
  return (BUILTIN_TASKS as readonly string[]).includes(name);
}

/** Formats one task's line: score, interval, n, split, speed. */
export function formatTaskLine(r: EvalTaskReport): string {
  const ci = r.ci === null ? 'no CI' : `95% CI [${r.ci[0].toFixed(3)}, ${r.ci[1].toFixed(3)}]`;
  const extra: string[] = [];
  const d = r.details as Record<string, unknown>;
  const fmt = (label: string, v: unknown): void => {
    const x = v as { score?: unknown; ciLow?: unknown; ciHigh?: unknown } | undefined;
    if (typeof x?.score === 'number' && typeof x.ciLow === 'number' && typeof x.ciHigh === 'number') extra.push(`${label} ${x.score.toFixed(3)} [${x.ciLow.toFixed(3)}, ${x.ciHigh.toFixed(3)}]`);
  };
  if (r.evaluator === 'gsm8k') {
    fmt('strict', d.strict);
    fmt('flexible', d.flexible);
  } else if (r.evaluator === 'mmlu') {
    fmt('micro', d.micro);
    fmt('macro', d.macro);
  }
  const work =
    r.generatedTokens > 0 || r.scoredTokens === 0
      ? `${r.generatedTokens} tokens generated, ${r.tokensPerSecond.toFixed(1)} tokens/s`
      : `${r.scoredTokens} continuation tokens scored, ${r.tokensPerSecond.toFixed(1)} tokens/s`;
  return [
    `${r.task}: accuracy ${r.score.toFixed(3)}, ${ci}, n=${r.n} (${r.split} split)`,
    ...(extra.length > 0 ? [`  ${extra.join('; ')}`] : []),
    `  ${r.seconds.toFixed(1)} s, ${r.itemsPerSecond.toFixed(2)} items/s, ${work}${r.truncatedPrompts > 0 ? `; ${r.truncatedPrompts} requests cut on the left to fit the context` : ''}`,
  ].join('\n');
}

export function formatEvalReport(report: EvalReport): string {
  const head = `${report.model} on ${report.backend}${report.convertSeconds > 0 ? ` (converted to GGUF in ${report.convertSeconds.toFixed(2)} s)` : ''}, seed ${report.seed}`;
  return [head, ...report.tasks.map(formatTaskLine)].join('\n');
}

async function openBackend(flags: EvalFlags, logprobs: OpenAiLogprobsMode): Promise<InferenceBackend> {
  if (flags.backend === 'openai') {
    if (flags.baseUrl === undefined) throw new UsageError('eval: --backend openai needs --base-url (e.g. http://127.0.0.1:8000)');
    return new OpenAiBackend({ baseUrl: flags.baseUrl, logprobs, ...(flags.serverModel === undefined ? {} : { model: flags.serverModel }) });
  }
  if (flags.backend !== 'llamacpp') throw new UsageError(`eval: --backend must be llamacpp or openai, got '${flags.backend}'`);
  const threads = intFlag(flags.threads, '--threads', 1);
  const contextSize = intFlag(flags.context, '--context', 16);
  const sequences = intFlag(flags.sequences, '--sequences', 1);
  return LlamaCppBackend.open({
    ...(threads === undefined ? {} : { threads }),
    ...(contextSize === undefined ? {} : { contextSize }),
    ...(sequences === undefined ? {} : { sequences }),
    ...(flags.cpu ? { gpu: false as const } : {}),
  });
}

/** Progress on a terminal's stderr: "task 16/50", rewritten in place. */
function progressWriter(enabled: boolean, task: string): ((done: number, total: number) => void) | undefined {
  if (!enabled) return undefined;
  return (done, total) => {
    process.stderr.write(`\r${task} ${done}/${total}${done === total ? '\r\x1b[K' : ''}`);
  };
}

/**
 * Registers `evo eval <model> --tasks gsm8k,mmlu --limit 50`: scores an HF model folder (converted
 * to GGUF first) or a .gguf with llama.cpp, or a model behind an OpenAI-compatible server, and
 * prints each task's accuracy with its 95% interval, items, tokens/s and seconds.
 */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('score a model on benchmarks (GSM8K, MMLU, your own JSONL/CSV tasks) with 95% confidence intervals')
    .argument('<model>', 'HF model folder, .gguf file, or (with --backend openai) the folder the server serves')
    .option('--tasks <list>', 'comma-separated: gsm8k, mmlu, paths of generic task folders / files, or evaluator modules (.mjs)', 'gsm8k,mmlu')
    .option('--limit <n>', 'items per task: a seeded subset (default: the whole split)')
    .option('--split <split>', "'search' (GSM8K train, MMLU val, a task's search file) or 'test' (the sealed split)", 'search')
    .option('--data-dir <dir>', 'folder with gsm8k/ and mmlu/ (default: $EVOMERGE_DATA_DIR, else ~/.cache/evomerge/datasets)')
    .option('--seed <n>', 'seed of the item subset', '0')
    .option('--shots <k>', 'few-shot examples for gsm8k and mmlu (default: 5)')
    .option('--max-tokens <n>', 'gsm8k: most tokens generated per answer (default: 256)')
    .option('--backend <name>', 'llamacpp or openai', 'llamacpp')
    .option('--base-url <url>', 'openai: the server, e.g. http://127.0.0.1:8000')
    .option('--server-model <name>', 'openai: model name to request (default: the first the server lists)')
    .option('--logprobs <mode>', 'openai: echo, prompt_logprobs (vLLM) or none', 'echo')
    .option('--threads <n>', 'llamacpp: CPU threads (default: the cores the current load leaves idle, at least 1)')
    .option('--cpu', 'llamacpp: do not use a GPU', false)
    .option('--context <n>', "llamacpp: tokens per sequence (default: min(2048, the model's training context))")
    .option('--sequences <n>', 'llamacpp: requests decoded in parallel (default: 4)')
    .option('--download', 'first download missing GSM8K / MMLU files (pinned URLs, SHA-256 checked) into the data folder', false)
    .option('--json', 'print one JSON document instead of text', false)
    .action(async (model: string, flags: EvalFlags) => {
      const split = flags.split;
      if (split !== 'search' && split !== 'test') throw new UsageError(`eval: --split must be search or test, got '${split}'`);
      const limit = intFlag(flags.limit, '--limit', 1);
      const seed = intFlag(flags.seed, '--seed', 0) ?? 0;
      const shots = intFlag(flags.shots, '--shots', 0);
      const maxTokens = intFlag(flags.maxTokens, '--max-tokens', 1);
      const logprobs = flags.logprobs;
      if (logprobs !== 'echo' && logprobs !== 'prompt_logprobs' && logprobs !== 'none') throw new UsageError(`eval: --logprobs must be echo, prompt_logprobs or none, got '${logprobs}'`);
      const names = flags.tasks.split(',').map((t) => t.trim()).filter((t) => t !== '');
      if (names.length === 0) throw new UsageError('eval: --tasks is empty');

      const isGguf = /\.gguf$/i.test(model);
      if (isGguf && !(existsSync(model) && statSync(model).isFile())) throw new UsageError(`eval: ${model} does not exist`);
      if (!isGguf && flags.backend === 'llamacpp' && existsSync(model) && !statSync(model).isDirectory()) throw new UsageError(`eval: ${model} is neither an HF model folder nor a .gguf file`);
      const candidate: Candidate = {
        id: path.basename(model).replace(/\.gguf$/i, '') || 'model',
        dir: isGguf ? path.dirname(path.resolve(model)) : path.resolve(model),
        gguf: isGguf ? path.resolve(model) : undefined,
        config: null,
        genome: {},
      };

      // Evaluators first: a wrong task name or missing data fails before a model is loaded.
      const evaluators: { task: string; evaluator: Evaluator }[] = [];
      const builtins = names.filter(isBuiltinTask);
      if (flags.download) {
        const wanted = builtins.filter((n): n is BuiltinDataset => (BUILTIN_DATASETS as readonly string[]).includes(n));
        const dir = resolveDataDir({ flag: flags.dataDir }).dir;
        const summary = await downloadDatasets(wanted, dir, {
          onFile: (f, status) => {
            if (status === 'downloaded' && !flags.json) process.stderr.write(`downloaded ${f.path}\n`);
          },
        });
        if (!flags.json) process.stderr.write(`data in ${dir}: ${summary.downloaded.length} files downloaded, ${summary.present.length} already present\n`);
      }
      for (const name of names) {
        if (!isBuiltinTask(name)) {
          if (!existsSync(name)) throw new UsageError(`eval: unknown task '${name}'; use gsm8k, mmlu, the path of a task folder / task.yaml / .jsonl / .csv, or an evaluator module (.mjs / .js)`);
          const evaluator = /\.(mjs|js)$/i.test(name) ? await loadUserEvaluator(path.resolve(name), {}) : await GenericTaskEvaluator.fromPath(name);
          evaluators.push({ task: name, evaluator });
          continue;
        }
        const options: Record<string, unknown> = {
          ...(shots === undefined ? {} : { shots }),
          ...(maxTokens !== undefined && name === 'gsm8k' ? { max_tokens: maxTokens } : {}),
        };
        evaluators.push({ task: name, evaluator: await createEvaluator({ kind: 'builtin', name }, options, { dataDirFlag: flags.dataDir }) });
      }
      // Load each dataset now, so that missing files are reported before the model loads.
      for (const { evaluator } of evaluators) await evaluator.subsetOrder?.(split, seed);

      const controller = new AbortController();
      const onSigint = (): void => controller.abort(new Error('interrupted'));
      process.once('SIGINT', onSigint);
      const backend = await openBackend(flags, logprobs);
      try {
        await backend.useModel({ id: candidate.id, dir: candidate.dir, gguf: candidate.gguf }, controller.signal);
        const times = backend instanceof LlamaCppBackend ? backend.lastLoadTimes : { convertSeconds: 0, loadSeconds: 0 };
        const tasks: EvalTaskReport[] = [];
        for (const { task, evaluator } of evaluators) {
          const before = backend.stats();
          const result: EvaluationResult = await evaluator.evaluate(
            candidate,
            { limit: limit ?? Infinity, seed, split },
            { backend, signal: controller.signal, onProgress: progressWriter(!flags.json && process.stderr.isTTY === true, task) },
          );
          const used = statsDelta(backend.stats(), before);
          const seconds = Math.max(result.seconds, 1e-9);
          tasks.push({
            task,
            evaluator: evaluator.name,
            split,
            score: result.score,
            ci: result.ci,
            stderr: result.stderr,
            n: result.itemsUsed,
            seconds: result.seconds,
            itemsPerSecond: result.itemsUsed / seconds,
            generatedTokens: used.generatedTokens,
            scoredTokens: used.scoredTokens,
            tokensPerSecond: (used.generatedTokens + used.scoredTokens) / seconds,
            truncatedPrompts: used.truncatedPrompts,
            details: result.details,
            items: result.items,
          });
        }
        const report: EvalReport = {
          model,
          backend: backend.name,
          split,
          seed,
          limit: limit ?? null,
          convertSeconds: times.convertSeconds,
          loadSeconds: times.loadSeconds,
          tasks,
        };
        emitResult(flags.json, report, () => formatEvalReport(report));
      } finally {
        process.off('SIGINT', onSigint);
        await backend.close();
      }
    });
}
