import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EvoError } from '../errors.js';
import { fillTemplate, placeholdersIn, shellQuote } from './placeholders.js';
import { Z_95 } from './stats.js';
import type { Candidate, EvalBudget, EvalContext, EvaluationResult, Evaluator, EvaluatorNeeds, JsonObject, JsonValue } from './types.js';

/**
 * The `command` evaluator: runs an external harness (lm-evaluation-harness, a script of yours)
 * on the candidate and reads its score from the JSON it writes. The template's placeholders:
 *   {model_dir}  the candidate's HF folder      {gguf}   a GGUF of it (converted first)
 *   {output}     where the command should write its JSON (a path in a fresh temporary folder;
 *                the command may write a file there or create a folder of JSON files)
 *   {limit} {seed} {split} {id}   the budget and the candidate's id
 * Values are shell-quoted. Without {output}, the JSON is read from standard output.
 * Example (lm-eval): `lm_eval --model hf --model_args pretrained={model_dir} --tasks gsm8k
 *   --limit {limit} --output_path {output}` with score_path `results.gsm8k.exact_match,strict-match`.
 */

export type CommandErrorCode = 'COMMAND_FAILED' | 'COMMAND_TIMEOUT' | 'COMMAND_OUTPUT' | 'SCORE_PATH' | 'BAD_COMMAND_OPTION';

export class CommandError extends EvoError {
  constructor(code: CommandErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'CommandError';
  }
}

export interface ShellResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

export interface ShellOptions {
  /** Kill the command (and its process group) after this many milliseconds. Default: 3600000 (1 h). */
  readonly timeoutMs?: number;
  /** Default: the current directory. */
  readonly cwd?: string;
  /** Added to the environment. Default: {}. */
  readonly env?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

const TAIL_CHARS = 2000;

function tail(text: string, lines = 5): string {
  return text.trimEnd().split('\n').slice(-lines).join(' | ').slice(-TAIL_CHARS);
}

/**
 * Runs `command` with /bin/sh in its own process group; rejects with COMMAND_FAILED (non-zero
 * exit, naming the command and the end of stderr) or COMMAND_TIMEOUT.
 */
export function runShellCommand(command: string, options: ShellOptions = {}): Promise<ShellResult> {
  const timeoutMs = options.timeoutMs ?? 3_600_000;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let why: 'timeout' | 'abort' | undefined;
    const kill = (reason: 'timeout' | 'abort'): void => {
      why = reason;
      const pid = child.pid;
      if (pid === undefined) return;
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 5000).unref();
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    const onAbort = (): void => kill('abort');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError('COMMAND_FAILED', `cannot run ${JSON.stringify(command)}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      const seconds = (performance.now() - started) / 1000;
      if (why === 'timeout') return reject(new CommandError('COMMAND_TIMEOUT', `${JSON.stringify(command)} ran longer than ${timeoutMs} ms and was killed`));
      if (why === 'abort') return reject(new CommandError('COMMAND_FAILED', `${JSON.stringify(command)} was aborted`));
      if (code !== 0) {
        const what = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        return reject(new CommandError('COMMAND_FAILED', `${JSON.stringify(command)} ${what}${stderr.trim() ? `: ${tail(stderr)}` : ''}`));
      }
      resolve({ stdout, stderr, seconds });
    });
  });
}

/**
 * Splits a path expression into keys: dots separate keys; `[n]` indexes arrays; `["k.e.y"]`
 * quotes a key with dots; `\.` escapes a dot. `results.gsm8k.exact_match,strict-match` →
 * ['results', 'gsm8k', 'exact_match,strict-match'].
 */
export function parseJsonPath(expr: string): (string | number)[] {
  const keys: (string | number)[] = [];
  let key = '';
  let pending = false;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '\\' && expr[i + 1] === '.') {
      key += '.';
      pending = true;
      i++;
    } else if (c === '.') {
      if (pending) keys.push(key);
      else if (i === 0 || expr[i - 1] !== ']') throw new CommandError('BAD_COMMAND_OPTION', `path ${JSON.stringify(expr)}: empty key at character ${i + 1}`);
      key = '';
      pending = false;
    } else if (c === '[') {
      if (pending) keys.push(key);
      key = '';
      pending = false;
      const close = expr.indexOf(']', i);
      if (close < 0) throw new CommandError('BAD_COMMAND_OPTION', `path ${JSON.stringify(expr)}: "[" without "]"`);
      const inner = expr.slice(i + 1, close);
      if (/^\d+$/.test(inner)) keys.push(Number(inner));
      else if (/^"(?:[^"\\]|\\.)*"$/.test(inner)) keys.push(JSON.parse(inner) as string);
      else throw new CommandError('BAD_COMMAND_OPTION', `path ${JSON.stringify(expr)}: [${inner}] must be an index or a "quoted key"`);
      i = close;
    } else {
      key += c;
      pending = true;
    }
  }
  if (pending) keys.push(key);
  if (keys.length === 0) throw new CommandError('BAD_COMMAND_OPTION', `path ${JSON.stringify(expr)} is empty`);
  return keys;
}

/** The value at a path; SCORE_PATH names the path, the key that failed and the keys that were there. */
export function valueAtPath(doc: unknown, expr: string, source: string): unknown {
  let v: unknown = doc;
  const keys = parseJsonPath(expr);
  keys.forEach((k, depth) => {
    const at = keys.slice(0, depth).map(String).join('.') || '(top level)';
    if (typeof k === 'number') {
      if (!Array.isArray(v) || k >= v.length) throw new CommandError('SCORE_PATH', `${source}: path ${JSON.stringify(expr)}: ${at} is not an array with an element ${k}`);
      v = v[k] as unknown;
    } else {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !(k in v)) {
        const have = typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.keys(v).slice(0, 12).join(', ') : typeof v;
        throw new CommandError('SCORE_PATH', `${source}: path ${JSON.stringify(expr)}: no key ${JSON.stringify(k)} under ${at} (found: ${have})`);
      }
      v = (v as Record<string, unknown>)[k];
    }
  });
  return v;
}

function numberAt(doc: unknown, expr: string, source: string): number {
  const v = valueAtPath(doc, expr, source);
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CommandError('SCORE_PATH', `${source}: path ${JSON.stringify(expr)} holds ${JSON.stringify(v)}, not a finite number`);
  return v;
}

/** The newest *.json file under a folder (lm-eval writes <output>/<model>/results_<time>.json). */
async function newestJson(dir: string): Promise<string | undefined> {
  let best: { file: string; mtime: number } | undefined;
  for (const entry of await readdir(dir, { recursive: true })) {
    const file = path.join(dir, entry);
    if (!file.endsWith('.json')) continue;
    const s = await stat(file);
    if (s.isFile() && (best === undefined || s.mtimeMs > best.mtime)) best = { file, mtime: s.mtimeMs };
  }
  return best?.file;
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // A harness may log before its JSON: take the last line that parses.
    for (const line of text.trim().split('\n').reverse()) {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        /* keep looking */
      }
    }
    throw new CommandError('COMMAND_OUTPUT', `${source} is not JSON (starts with ${JSON.stringify(text.slice(0, 80))})`);
  }
}

export interface CommandEvaluatorOptions {
  /** The shell command template (placeholders above). */
  readonly command: string;
  /** Path of the score in the JSON, e.g. `results.gsm8k.exact_match,strict-match`. */
  readonly scorePath: string;
  /** Path of the score's standard error; gives a normal 95% interval. Default: none (no interval). */
  readonly stderrPath?: string;
  /** Path of the number of items scored. Default: none (then `items`). */
  readonly itemsPath?: string;
  /** Items the score rests on, when the JSON does not say. Default: budget.limit when the template uses {limit}, else 0 (unknown). */
  readonly items?: number;
  /** Default: 3600000 (1 h). */
  readonly timeoutMs?: number;
  /** Working directory. Default: the current directory. */
  readonly cwd?: string;
  /** Added environment variables. Default: {}. */
  readonly env?: Readonly<Record<string, string>>;
  /** Reported name. Default: 'command'. */
  readonly name?: string;
}

const KNOWN = ['model_dir', 'gguf', 'output', 'limit', 'seed', 'split', 'id'];

export class CommandEvaluator implements Evaluator {
  readonly name: string;
  readonly needs: EvaluatorNeeds;
  private readonly options: CommandEvaluatorOptions;

  constructor(options: CommandEvaluatorOptions) {
    if (typeof options.command !== 'string' || options.command.trim() === '') throw new CommandError('BAD_COMMAND_OPTION', 'command: option command must be a non-empty command template');
    const unknown = placeholdersIn(options.command).filter((p) => !KNOWN.includes(p));
    if (unknown.length > 0) throw new CommandError('BAD_COMMAND_OPTION', `command: unknown placeholder {${unknown[0] ?? ''}} in ${JSON.stringify(options.command)}; known: ${KNOWN.map((k) => `{${k}}`).join(', ')}`);
    parseJsonPath(options.scorePath);
    if (options.stderrPath !== undefined) parseJsonPath(options.stderrPath);
    if (options.itemsPath !== undefined) parseJsonPath(options.itemsPath);
    this.options = options;
    this.name = options.name ?? 'command';
    this.needs = placeholdersIn(options.command).includes('gguf') ? 'gguf' : 'hf-dir';
  }

  async evaluate(candidate: Candidate, budget: EvalBudget, ctx: EvalContext): Promise<EvaluationResult> {
    const o = this.options;
    const uses = new Set(placeholdersIn(o.command));
    if (uses.has('gguf') && candidate.gguf === undefined) throw new CommandError('BAD_COMMAND_OPTION', `${this.name}: the command uses {gguf} but candidate ${candidate.id} has no GGUF`);
    const temp = await mkdtemp(path.join(os.tmpdir(), 'evo-command-'));
    try {
      const output = path.join(temp, 'output');
      const values: Record<string, string> = {
        model_dir: candidate.dir,
        gguf: candidate.gguf ?? '',
        output,
        limit: Number.isFinite(budget.limit) ? String(budget.limit) : '',
        seed: String(budget.seed),
        split: budget.split ?? 'search',
        id: candidate.id,
      };
      const command = fillTemplate(o.command, values, `${this.name}: command`, shellQuote);
      const run = await runShellCommand(command, {
        ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
        ...(o.cwd === undefined ? {} : { cwd: o.cwd }),
        ...(o.env === undefined ? {} : { env: o.env }),
        ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
      });
      let source: string;
      let text: string;
      if (uses.has('output')) {
        const file = existsSync(output) && statSync(output).isDirectory() ? await newestJson(output) : existsSync(output) ? output : undefined;
        if (file === undefined) throw new CommandError('COMMAND_OUTPUT', `${JSON.stringify(command)} wrote no JSON at {output} (${output}, a file or a folder of .json files)`);
        source = `${JSON.stringify(command)} output ${path.relative(temp, file)}`;
        text = await readFile(file, 'utf8');
      } else {
        source = `${JSON.stringify(command)} stdout`;
        text = run.stdout;
      }
      const doc = parseJson(text, source);
      const score = numberAt(doc, o.scorePath, source);
      const stderr = o.stderrPath === undefined ? null : numberAt(doc, o.stderrPath, source);
      const items = o.itemsPath !== undefined ? numberAt(doc, o.itemsPath, source) : (o.items ?? (uses.has('limit') && Number.isFinite(budget.limit) ? budget.limit : 0));
      const details: JsonObject = { command: o.command, scorePath: o.scorePath, ...(o.stderrPath === undefined ? {} : { stderrPath: o.stderrPath }), commandSeconds: run.seconds };
      return {
        score,
        ci: stderr === null ? null : [score - Z_95 * stderr, score + Z_95 * stderr],
        stderr,
        itemsUsed: items,
        seconds: run.seconds,
        items: [],
        details: details as { readonly [key: string]: JsonValue },
      };
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }
}
