import { z } from 'zod';
import type { SpaceIssueCode } from './space-issue.js';

/** The zod schema of a search space file and the mapping of zod's issues to ours (space.ts). */

export const DTYPES = ['float32', 'float16', 'bfloat16'] as const;
export const KINDS = ['ga', 'nsga2', 'cmaes', 'random'] as const;
/** optimizer.initial entries (initial-genomes.ts builds them). */
export const INITIAL_KINDS = ['sources', 'uniform', 'ablations', 'source-ablations'] as const;
export type InitialKind = (typeof INITIAL_KINDS)[number];
export const RACING_RULES = ['halving', 'race'] as const;

const rangeSchema = z.strictObject({ min: z.number(), max: z.number() });
const nonEmpty = z.string().min(1);

export const SCHEMA = z.strictObject({
  name: nonEmpty,
  description: z.string().optional(),
  base_model: nonEmpty,
  models: z.array(nonEmpty).min(1),
  num_layers: z.int().min(1).optional(),
  genome: z.strictObject({
    methods: z.array(nonEmpty).min(1),
    layer_granularity: z.int().min(1).default(4),
    filters: z.array(nonEmpty).default([]),
    embeddings: z.boolean().default(false),
    embedding_filters: z
      .strictObject({ pre: z.array(nonEmpty).min(1), post: z.array(nonEmpty).min(1) })
      .default({ pre: ['embed_tokens'], post: ['lm_head', 'model.norm'] }),
    weight: rangeSchema.optional(),
    density: rangeSchema.optional(),
    t: rangeSchema.optional(),
    t_ranges: z.record(z.string(), rangeSchema).optional(),
    smooth: z.boolean().default(false),
    parameters: z.record(z.string(), z.record(z.string(), z.union([z.number(), z.boolean()]))).default({}),
  }),
  objectives: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_.-]+$/),
        evaluator: z.unknown(),
        limit: z.int().min(1).optional(),
        maximize: z.boolean().default(true),
        weight: z.number().default(1),
        options: z.record(z.string(), z.unknown()).optional(),
        // Defaults are src/eval/racing.ts's (resolveRacingOptions), filled in by space.ts.
        racing: z
          .strictObject({
            eta: z.number().gt(1).optional(),
            rule: z.enum(RACING_RULES).optional(),
            min_first_rung_items: z.int().min(1).optional(),
            min_survivors: z.int().min(1).optional(),
            confidence: z.number().gt(0).lt(1).optional(),
          })
          .optional(),
      }),
    )
    .min(1),
  optimizer: z
    .strictObject({
      kind: z.enum(KINDS).default('ga'),
      seed: z.int().default(0),
      population: z.int().min(2).optional(),
      generations: z.int().min(1).default(20),
      max_evaluations: z.int().min(1).optional(),
      elitism: z.int().min(0).default(2),
      tournament_size: z.int().min(2).default(3),
      crossover_rate: z.number().min(0).max(1).default(0.9),
      mutation_rate: z.number().gt(0).max(1).optional(),
      categorical_mutation_rate: z.number().gt(0).max(1).optional(),
      sbx_eta: z.number().min(0).default(15),
      mutation_eta: z.number().min(0).default(20),
      sigma0: z.number().gt(0).default(0.3),
      method: nonEmpty.optional(),
      initial: z.array(z.enum(INITIAL_KINDS)).default([]),
    })
    .default({
      kind: 'ga',
      seed: 0,
      generations: 20,
      elitism: 2,
      tournament_size: 3,
      crossover_rate: 0.9,
      sbx_eta: 15,
      mutation_eta: 20,
      sigma0: 0.3,
      initial: [],
    }),
  dtype: z.enum(DTYPES).default('bfloat16'),
  out_dtype: z.enum(DTYPES).optional(),
  tokenizer_source: nonEmpty.optional(),
  merge_seed: z.int().min(0).default(0),
});

export type RawSpace = z.infer<typeof SCHEMA>;
export type PathSeg = string | number;

export function pathString(path: readonly PathSeg[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? 'a list' : 'a mapping';
}

export function valueAt(data: unknown, path: readonly PathSeg[]): unknown {
  let v = data;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PathSeg, unknown>)[seg];
  }
  return v;
}

/** The keys the schema allows at `path` (for unknown-key messages). */
function allowedKeys(schema: z.ZodType, path: readonly PathSeg[]): string[] {
  let s: z.ZodType = schema;
  for (const seg of [...path, null]) {
    for (;;) {
      if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
      else break;
    }
    if (seg === null) break;
    if (s instanceof z.ZodObject && typeof seg === 'string') s = (s.shape as Record<string, z.ZodType>)[seg] ?? z.never();
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else return [];
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  int: 'a whole number',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

export function zodIssues(error: z.ZodError, data: unknown): RawIssue[] {
  const out: RawIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((p): p is PathSeg => typeof p !== 'symbol');
    const got = valueAt(data, path);
    switch (issue.code) {
      case 'invalid_type':
        if (got === undefined) out.push({ code: 'MISSING_KEY', path, message: 'is required' });
        else out.push({ code: 'WRONG_TYPE', path, message: `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}, got ${describe(got)}` });
        break;
      case 'too_big':
        if (issue.origin === 'array') out.push({ code: 'OUT_OF_RANGE', path, message: `must have at most ${issue.maximum} entries` });
        else out.push({ code: 'OUT_OF_RANGE', path, message: `must be ${issue.inclusive ? '≤' : '<'} ${issue.maximum}, got ${describe(got)}` });
        break;
      case 'too_small':
        if (issue.origin === 'array') out.push({ code: 'OUT_OF_RANGE', path, message: `must have at least ${issue.minimum} entr${issue.minimum === 1 ? 'y' : 'ies'}` });
        else if (issue.origin === 'string') out.push({ code: 'INVALID_VALUE', path, message: 'must not be empty' });
        else out.push({ code: 'OUT_OF_RANGE', path, message: `must be ${issue.inclusive ? '≥' : '>'} ${issue.minimum}, got ${describe(got)}` });
        break;
      case 'invalid_value':
        out.push({ code: 'INVALID_VALUE', path, message: `must be one of ${issue.values.map(String).join(', ')}, got ${describe(got)}` });
        break;
      case 'unrecognized_keys': {
        const allowed = allowedKeys(SCHEMA, path);
        for (const key of issue.keys) out.push({ code: 'UNKNOWN_KEY', path: [...path, key], message: `unknown key; allowed: ${allowed.join(', ')}`, atKey: true });
        break;
      }
      case 'invalid_format':
        out.push({ code: 'INVALID_VALUE', path, message: `must contain only letters, digits, '_', '.' and '-', got ${describe(got)}` });
        break;
      default:
        out.push({ code: 'INVALID_VALUE', path, message: issue.message });
    }
  }
  return out;
}

export interface RawIssue {
  readonly code: SpaceIssueCode;
  readonly path: readonly PathSeg[];
  readonly message: string;
  /** Point at the key rather than its value (unknown keys). */
  readonly atKey?: boolean;
}

