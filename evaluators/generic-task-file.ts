import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseCsv } from '../src/eval/csv.js';
import { DatasetError, readJsonl } from '../src/eval/datasets.js';

/**
 * User benchmarks from JSONL or CSV files: how users add their own tasks.
 *
 * A task is a folder:
 *   task.yaml (or task.json)   optional settings, below
 *   search.jsonl | search.csv  the split searches score on
 *   test.jsonl   | test.csv    the sealed split (evo eval --split test)
 *   train.jsonl  | train.csv   optional few-shot examples
 * or a single .jsonl/.csv file, used for whichever split is asked.
 *
 * Records (JSONL: one object per line; CSV: a header row naming these columns):
 *   generate:        {"id", "prompt", "answer"}          optional "target" (the full answer shown in few-shot examples; default: answer)
 *   multiple_choice: {"id", "question", "choices", "answer"}   "question" may be called "context" or "prompt";
 *                    "choices" is a list of continuations; "answer" is the right choice's 0-based index or its letter (A, B, ...).
 *                    In CSV the choices are columns named A, B, C, ... in order.
 * "id" is optional (default "<split>/<0-based row>"). Choices are scored exactly as written after
 * the question (plus `target_delimiter`), so write " A" for a continuation " A". Files with other
 * key names map them with `fields:` in task.yaml, e.g. {prompt: input, answer: output}.
 */

export type GenericTaskType = 'generate' | 'multiple_choice';
export type AnswerNormalizer = 'trim' | 'lowercase' | 'no_commas' | 'no_dollar' | 'no_trailing_period' | 'collapse_spaces';
export type LengthNormalization = 'none' | 'bytes' | 'tokens';

const NORMALIZERS = ['trim', 'lowercase', 'no_commas', 'no_dollar', 'no_trailing_period', 'collapse_spaces'] as const;

/** task.yaml keys (snake_case, as written in the file). Unknown keys are errors. */
const TaskFileSchema = z
  .object({
    /** Default: the folder's name. */
    name: z.string().min(1).optional(),
    /** Free text for readers. */
    description: z.string().optional(),
    /** Default: multiple_choice when the first search record has "choices", else generate. */
    type: z.enum(['generate', 'multiple_choice']).optional(),
    /** Split files relative to the task folder. Default: search.jsonl|csv, test.jsonl|csv, train.jsonl|csv (few-shot, optional). */
    splits: z.object({ search: z.string().min(1).optional(), test: z.string().min(1).optional(), fewshot: z.string().min(1).optional() }).strict().optional(),
    /** Few-shot examples before each item (from the fewshot split). Default: 0. */
    shots: z.number().int().min(0).optional(),
    /** Text after each few-shot example. Default: "\n\n". */
    fewshot_separator: z.string().optional(),
    /** Seed that picks the few-shot examples (the same ones for every item). Default: 1234. */
    fewshot_seed: z.number().int().optional(),
    /** Record keys when a file uses other names, e.g. {prompt: input, answer: output}. Default: the names above. */
    fields: z
      .object({ id: z.string().min(1).optional(), prompt: z.string().min(1).optional(), answer: z.string().min(1).optional(), target: z.string().min(1).optional(), question: z.string().min(1).optional(), choices: z.string().min(1).optional() })
      .strict()
      .optional(),
    /** The metric, stated for readers and checked against the type: exact_match (generate) or accuracy (multiple_choice). */
    metric: z.enum(['exact_match', 'accuracy']).optional(),
    /** Text between a prompt and its answer (few-shot) or a question and each choice. Default: "". */
    target_delimiter: z.string().optional(),
    /** generate: generation stops before any of these. Default: ["\n\n"]. */
    stop: z.array(z.string().min(1)).optional(),
    /** generate: most tokens generated. Default: 128. */
    max_tokens: z.number().int().min(1).optional(),
    /** generate: the answer is the first capture group (or the whole match) of this regex in the output. Default: none (the whole output). */
    answer_regex: z.string().min(1).optional(),
    /** generate: which regex match counts. Default: first. */
    regex_match: z.enum(['first', 'last']).optional(),
    /** generate: applied to the extracted answer and the gold answer before comparing. Default: [trim]. */
    normalize: z.array(z.enum(NORMALIZERS)).optional(),
    /** multiple_choice: divide each choice's log-likelihood by its length in bytes or tokens (true = bytes, lm-eval's acc_norm). Default: false. */
    length_normalize: z.union([z.boolean(), z.enum(['bytes', 'tokens'])]).optional(),
  })
  .strict();

/** Record keys of each field. */
export interface TaskFields {
  readonly id: string;
  readonly prompt: string;
  readonly answer: string;
  readonly target: string;
  /** undefined: the first of question, context, prompt that a record has. */
  readonly question: string | undefined;
  readonly choices: string;
}

const DEFAULT_FIELDS: TaskFields = { id: 'id', prompt: 'prompt', answer: 'answer', target: 'target', question: undefined, choices: 'choices' };

/** A task, resolved: absolute split files and every setting with its default filled in. */
export interface TaskDefinition {
  readonly name: string;
  readonly fields: TaskFields;
  /** The task.yaml / task.json read, or null. */
  readonly file: string | null;
  readonly type: GenericTaskType;
  readonly splits: { readonly search: string; readonly test: string; readonly fewshot: string | null };
  readonly shots: number;
  readonly fewshotSeparator: string;
  readonly fewshotSeed: number;
  readonly targetDelimiter: string;
  readonly stop: readonly string[];
  readonly maxTokens: number;
  readonly answerRegex: RegExp | null;
  readonly regexMatch: 'first' | 'last';
  readonly normalize: readonly AnswerNormalizer[];
  readonly lengthNormalization: LengthNormalization;
}

export interface GenerateItem {
  readonly kind: 'generate';
  readonly id: string;
  readonly prompt: string;
  readonly answer: string;
  /** Shown after the prompt in few-shot examples. */
  readonly target: string;
}

export interface ChoiceItem {
  readonly kind: 'multiple_choice';
  readonly id: string;
  readonly question: string;
  readonly choices: readonly string[];
  /** 0-based index of the right choice. */
  readonly answer: number;
}

export type TaskItem = GenerateItem | ChoiceItem;

function firstExisting(dir: string, stem: string): string | null {
  for (const ext of ['jsonl', 'csv']) {
    const f = path.join(dir, `${stem}.${ext}`);
    if (existsSync(f)) return f;
  }
  return null;
}

function taskError(file: string, message: string): DatasetError {
  return new DatasetError('DATASET_MALFORMED', file, message);
}

/**
 * Reads a task: a folder (with an optional task.yaml / task.json), a task.yaml / task.json file,
 * or a single .jsonl / .csv file. Relative paths resolve against `baseDir` (default: cwd).
 */
export async function loadTaskDefinition(taskPath: string, baseDir = process.cwd()): Promise<TaskDefinition> {
  const target = path.resolve(baseDir, taskPath);
  if (!existsSync(target)) throw new DatasetError('DATASET_MISSING', target, 'task not found (expected a task folder, a task.yaml/task.json, or a .jsonl/.csv file)');
  if (statSync(target).isFile() && /\.(jsonl|csv)$/i.test(target)) {
    const type = await inferType(target, DEFAULT_FIELDS);
    return withDefaults({ name: path.basename(target).replace(/\.(jsonl|csv)$/i, ''), file: null, type, fields: DEFAULT_FIELDS, splits: { search: target, test: target, fewshot: null } }, {});
  }
  const dir = statSync(target).isDirectory() ? target : path.dirname(target);
  const file = statSync(target).isFile() ? target : (['task.yaml', 'task.yml', 'task.json'].map((f) => path.join(dir, f)).find((f) => existsSync(f)) ?? null);
  let raw: z.infer<typeof TaskFileSchema> = {};
  if (file !== null) {
    let parsed: unknown;
    try {
      parsed = parseYaml(await readFile(file, 'utf8')) ?? {};
    } catch (err) {
      throw taskError(file, `not valid YAML/JSON (${(err as Error).message.split('\n')[0] ?? ''})`);
    }
    const res = TaskFileSchema.safeParse(parsed);
    if (!res.success) {
      const issue = res.error.issues[0];
      const key = issue === undefined ? '' : issue.path.join('.');
      const extra = issue?.code === 'unrecognized_keys' ? `unknown key ${issue.keys.join(', ')}` : (issue?.message ?? 'invalid');
      throw taskError(file, `${key === '' ? '' : `${key}: `}${extra}`);
    }
    raw = res.data;
  }
  const split = (which: 'search' | 'test' | 'fewshot', stem: string): string | null => {
    const given = raw.splits?.[which];
    if (given !== undefined) {
      const f = path.resolve(dir, given);
      if (!existsSync(f)) throw new DatasetError('DATASET_MISSING', f, `the ${which} split named in ${file ?? dir} does not exist`);
      return f;
    }
    return firstExisting(dir, stem);
  };
  const search = split('search', 'search');
  const test = split('test', 'test');
  if (search === null) throw new DatasetError('DATASET_MISSING', path.join(dir, 'search.jsonl'), 'a task folder needs a search split (search.jsonl or search.csv, or splits.search in task.yaml)');
  if (test === null) throw new DatasetError('DATASET_MISSING', path.join(dir, 'test.jsonl'), 'a task folder needs a test split (test.jsonl or test.csv, or splits.test in task.yaml)');
  const fewshot = split('fewshot', 'train');
  if ((raw.shots ?? 0) > 0 && fewshot === null) throw taskError(file ?? dir, `shots: ${raw.shots} needs a fewshot split (train.jsonl, or splits.fewshot)`);
  const fields: TaskFields = { ...DEFAULT_FIELDS, ...raw.fields, question: raw.fields?.question };
  const type = raw.type ?? (await inferType(search, fields));
  const metricFor: Record<GenericTaskType, 'exact_match' | 'accuracy'> = { generate: 'exact_match', multiple_choice: 'accuracy' };
  if (raw.metric !== undefined && raw.metric !== metricFor[type]) throw taskError(file ?? dir, `metric: a ${type} task is scored by ${metricFor[type]}, not ${raw.metric}`);
  return withDefaults({ name: raw.name ?? path.basename(dir), file, type, fields, splits: { search, test, fewshot } }, raw);
}

async function inferType(file: string, fields: TaskFields): Promise<GenericTaskType> {
  const [first] = await readRecords(file);
  if (first === undefined) return 'generate';
  return fields.choices in first.record || Object.keys(first.record).some((k) => /^[A-Z]$/.test(k)) ? 'multiple_choice' : 'generate';
}

function withDefaults(base: Pick<TaskDefinition, 'name' | 'file' | 'type' | 'fields' | 'splits'>, raw: z.infer<typeof TaskFileSchema>): TaskDefinition {
  let answerRegex: RegExp | null = null;
  if (raw.answer_regex !== undefined) {
    try {
      answerRegex = new RegExp(raw.answer_regex, 'g');
    } catch (err) {
      throw taskError(base.file ?? base.name, `answer_regex: ${(err as Error).message}`);
    }
  }
  return {
    ...base,
    shots: raw.shots ?? 0,
    fewshotSeparator: raw.fewshot_separator ?? '\n\n',
    fewshotSeed: raw.fewshot_seed ?? 1234,
    targetDelimiter: raw.target_delimiter ?? '',
    stop: raw.stop ?? ['\n\n'],
    maxTokens: raw.max_tokens ?? 128,
    answerRegex,
    regexMatch: raw.regex_match ?? 'first',
    normalize: raw.normalize ?? ['trim'],
    lengthNormalization: raw.length_normalize === true ? 'bytes' : raw.length_normalize === false || raw.length_normalize === undefined ? 'none' : raw.length_normalize,
  };
}

interface RawRecord {
  readonly where: string;
  readonly record: Readonly<Record<string, unknown>>;
}

/** JSONL objects or CSV rows keyed by the header. */
async function readRecords(file: string): Promise<RawRecord[]> {
  if (/\.csv$/i.test(file)) {
    const rows = parseCsv(await readFile(file, 'utf8'), file);
    const [header, ...body] = rows;
    if (header === undefined) return [];
    return body.map((row, i) => {
      if (row.length !== header.length) throw taskError(`${file} row ${i + 2}`, `has ${row.length} fields, the header has ${header.length}`);
      return { where: `${file} row ${i + 2}`, record: Object.fromEntries(header.map((h, j) => [h.trim(), row[j]])) };
    });
  }
  return (await readJsonl(file)).map(({ line, value }) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw taskError(`${file}:${line}`, 'expected a JSON object');
    return { where: `${file}:${line}`, record: value as Record<string, unknown> };
  });
}

function text(where: string, key: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw taskError(where, `${key} must be a string, got ${JSON.stringify(v) ?? 'nothing'}`);
}

function parseItem(type: GenericTaskType, fields: TaskFields, raw: RawRecord, fallbackId: string): TaskItem {
  const r = raw.record;
  const rawId = r[fields.id];
  const id = rawId === undefined || rawId === '' ? fallbackId : text(raw.where, fields.id, rawId);
  if (type === 'generate') {
    const prompt = text(raw.where, fields.prompt, r[fields.prompt]);
    const answer = text(raw.where, fields.answer, r[fields.answer]);
    const target = r[fields.target];
    return { kind: 'generate', id, prompt, answer, target: target === undefined ? answer : text(raw.where, fields.target, target) };
  }
  const qKey = fields.question ?? ['question', 'context', 'prompt'].find((k) => r[k] !== undefined);
  if (qKey === undefined) throw taskError(raw.where, 'a multiple_choice record needs "question" (or "context" / "prompt")');
  const question = text(raw.where, qKey, r[qKey]);
  const answerValue = r[fields.answer];
  const choiceList = r[fields.choices];
  let choices: string[];
  if (Array.isArray(choiceList)) choices = choiceList.map((c, i) => text(raw.where, `${fields.choices}[${i}]`, c));
  else {
    const letters = Object.keys(r).filter((k) => /^[A-Z]$/.test(k)).sort();
    if (letters.length === 0) throw taskError(raw.where, 'a multiple_choice record needs "choices" (a list) or choice columns A, B, ...');
    choices = letters.map((k) => text(raw.where, k, r[k]));
  }
  if (choices.length < 2) throw taskError(raw.where, `needs at least 2 choices, got ${choices.length}`);
  const a = answerValue;
  let answer: number;
  if (typeof a === 'number') answer = a;
  else if (typeof a === 'string' && /^\d+$/.test(a.trim())) answer = Number(a.trim());
  else if (typeof a === 'string' && /^[A-Z]$/.test(a.trim())) answer = a.trim().charCodeAt(0) - 65;
  else throw taskError(raw.where, `answer must be a choice index or letter, got ${JSON.stringify(a) ?? 'nothing'}`);
  if (!Number.isInteger(answer) || answer < 0 || answer >= choices.length) throw taskError(raw.where, `answer ${JSON.stringify(a)} is not one of the ${choices.length} choices`);
  return { kind: 'multiple_choice', id, question, choices, answer };
}

/** Loads the items of one split file; ids must be unique. */
export async function loadTaskItems(def: TaskDefinition, file: string, splitLabel: string): Promise<TaskItem[]> {
  const seen = new Set<string>();
  return (await readRecords(file)).map((raw, i) => {
    const item = parseItem(def.type, def.fields, raw, `${splitLabel}/${i}`);
    if (seen.has(item.id)) throw taskError(raw.where, `duplicate id ${JSON.stringify(item.id)}`);
    seen.add(item.id);
    return item;
  });
}
