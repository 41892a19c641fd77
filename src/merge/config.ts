import { readFile } from 'node:fs/promises';
import { isScalar, LineCounter, parseAllDocuments, visit, Document as YamlDocument, type ScalarTag } from 'yaml';
import type { MergekitDType } from '../tensors/dtype.js';
import { ConfigError, type ConfigIssue } from './config-issue.js';
import { DOCUMENT_KEYS, readDocument } from './config-read.js';
import { deref, posOf, type Ctx } from './config-yaml-node.js';
import { stageGraph, validateDocument } from './config-validate.js';
import type { ParameterMap } from './resolve.js';
import type { MethodId } from './task.js';

/**
 * The mergekit YAML schema (docs/mergekit-semantics.md §2) as TypeScript types, spelled with
 * mergekit's keys so that a config built in code (genome.ts) stringifies to a mergekit config.
 */

export interface InputModelDefinition {
  /** Model reference: a local path (relative to the config file), `org/name`, or `name@revision`. */
  readonly model: string;
  readonly parameters?: ParameterMap;
}

export interface InputSliceDefinition {
  readonly model: string;
  /** Half-open [start, end) layer range of the source model. */
  readonly layer_range: readonly [number, number];
  readonly parameters?: ParameterMap;
}

export interface OutputSliceDefinition {
  readonly sources: readonly InputSliceDefinition[];
  /** Overrides the document's base_model for this slice. */
  readonly base_model?: string;
  /** Parsed for compatibility; unused by mergekit at the pinned commit. */
  readonly residual_weight?: number;
  readonly parameters?: ParameterMap;
}

export interface OutputModuleDefinition {
  readonly models?: readonly InputModelDefinition[];
  readonly slices?: readonly OutputSliceDefinition[];
  readonly parameters?: ParameterMap;
}

/**
 * Where a `tokenizer.tokens` entry takes its embedding row from (mergekit's
 * TokenEmbeddingConfig.source): `model`: that model's row for the same token; `model_token`: the
 * row of another token (by string, or by raw row index `token_id`) of that model; `zero`: zeros.
 */
export type TokenEmbeddingSource =
  | { readonly kind: 'model'; readonly model: string }
  | { readonly kind: 'model_token'; readonly model: string; readonly token: string }
  | { readonly kind: 'model_token'; readonly model: string; readonly token_id: number }
  | { readonly kind: 'zero' };

/** One `tokenizer.tokens` entry (semantics §1.5). */
export interface TokenEmbeddingOverride {
  readonly token: string;
  readonly source: TokenEmbeddingSource;
  /** Default false: the override applies only to models lacking the token; true: to every model. */
  readonly force: boolean;
}

/** The key path of an entry's `source` in messages: the token is quoted, as tokens hold dots and spaces. */
export function tokenSourcePath(token: string): string {
  return `tokenizer.tokens.${JSON.stringify(token)}.source`;
}

/** The token whose row an entry's source reads from its model's vocabulary: the entry's own, a `model_token`'s `token`, or none (`token_id`, `zero`). */
export function overrideSourceToken(o: TokenEmbeddingOverride): string | undefined {
  const { source } = o;
  return source.kind === 'model' ? o.token : source.kind === 'model_token' && 'token' in source ? source.token : undefined;
}

/** The `tokenizer:` block. mergekit's `source` defaults to `union` when the block is given. */
export interface TokenizerDefinition {
  readonly source?: string;
  /** In the YAML mapping's order (the order mergekit adds missing tokens to the vocabulary). */
  readonly tokens?: readonly TokenEmbeddingOverride[];
  /** The output vocabulary is padded up to a multiple of this (rows: each model's mean row). */
  readonly pad_to_multiple_of?: number;
}

/** One YAML document: one mergekit merge. */
export interface MergeDocument {
  /** Names an intermediate of a multi-document config; later documents use it as a model reference. */
  readonly name?: string;
  readonly merge_method: MethodId;
  readonly base_model?: string;
  /** Cast on load, i.e. the compute dtype (§0.3). A `torch.` prefix is accepted and dropped. */
  readonly dtype?: MergekitDType;
  /** Cast on save. */
  readonly out_dtype?: MergekitDType;
  /** `base`, `union`, or a model reference. */
  readonly tokenizer_source?: string;
  readonly tokenizer?: TokenizerDefinition;
  readonly chat_template?: string;
  readonly parameters?: ParameterMap;
  readonly models?: readonly InputModelDefinition[];
  readonly slices?: readonly OutputSliceDefinition[];
  readonly modules?: Readonly<Record<string, OutputModuleDefinition>>;
}

/** A whole config file: one document, or several for a mergekit-multi recipe. */
export interface MergeConfig {
  readonly documents: readonly MergeDocument[];
}

/** A config parsed from text, with its non-fatal findings. */
export interface ParsedMergeConfig {
  readonly config: MergeConfig;
  /** The file name used in messages (as the user gave it). */
  readonly file: string;
  readonly text: string;
  /** Warnings: unknown keys and parameters, repeated models, ... (mergekit ignores them silently). */
  readonly warnings: readonly ConfigIssue[];
}

/**
 * Parses mergekit YAML (one or several `---`-separated documents) into a typed MergeConfig.
 * YAML 1.1 scalars are used, as mergekit's PyYAML does (`yes` is a boolean). Every problem is
 * collected, with its line and column; if any is an error, one ConfigError listing all of them
 * is thrown. Warnings (unknown keys and parameters, repeated models) come back with the config.
 *
 * @param file the name used in messages (Default: none; pass the path the user typed).
 */
export function parseMergeConfig(text: string, file = 'config.yml'): ParsedMergeConfig {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, version: '1.1', prettyErrors: false });
  const issues: ConfigIssue[] = [];
  const positions = new Map<string, { line: number; col: number }>();
  const documents: MergeDocument[] = [];
  /** Document index in the file of each entry of `documents` (failed documents leave gaps). */
  const indices: number[] = [];
  const complete: boolean[] = [];
  if ('empty' in docs || docs.length === 0) {
    throw new ConfigError(file, [{ severity: 'error', code: 'WRONG_TYPE', document: 0, path: '', message: 'the config is empty' }]);
  }
  let parsedAll = true;
  docs.forEach((doc, index) => {
    const ctx: Ctx = { doc, index, lines, issues, positions };
    const rootPos = posOf(ctx, deref(ctx, doc.contents));
    if (rootPos) positions.set(`${index}|`, rootPos);
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lines.linePos(e.pos[0]);
        issues.push({ severity: 'error', code: 'YAML_SYNTAX', document: index, path: '', message: e.message.split('\n')[0] ?? e.message, line: pos.line, col: pos.col });
      }
      parsedAll = false;
      return;
    }
    // A value out of range leaves the structure intact; any other error may have dropped an entry.
    const structural = (): number => issues.filter((i) => i.severity === 'error' && i.code !== 'PARAM_RANGE').length;
    const errorsBefore = structural();
    const d = readDocument(ctx);
    const clean = structural() === errorsBefore;
    if (d) {
      documents.push(d);
      indices.push(index);
      complete.push(clean);
    }
    if (!d || !clean) parsedAll = false;
  });
  // Structural checks run on documents read without error (a dropped entry would make them
  // report nonsense); the stage graph needs every document.
  const stageNames = new Set(documents.flatMap((d) => (d.name === undefined ? [] : [d.name])));
  const semantic = documents.flatMap((d, k) => (complete[k] ? validateDocument(d, indices[k] ?? k, stageNames, { parameters: false }) : []));
  if (parsedAll) {
    const graph = stageGraph({ documents });
    if (Array.isArray(graph)) semantic.push(...graph);
  }
  for (const issue of semantic) {
    const pos = nearestPosition(positions, issue.document, issue.path);
    issues.push(pos ? { ...issue, line: pos.line, col: pos.col } : issue);
  }
  issues.sort((a, b) => a.document - b.document || (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) throw new ConfigError(file, issues);
  return { config: { documents }, file, text, warnings: issues.filter((i) => i.severity === 'warning') };
}

/** The position of `path`, else of its closest ancestor that has one, else of the document. */
function nearestPosition(
  positions: ReadonlyMap<string, { line: number; col: number }>,
  document: number,
  path: string,
): { line: number; col: number } | undefined {
  let p = path;
  for (;;) {
    const pos = positions.get(`${document}|${p}`);
    if (pos || p === '') return pos;
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    p = cut < 0 ? '' : p.slice(0, cut);
  }
}

/** Reads and parses a config file; see parseMergeConfig. */
export async function loadMergeConfig(file: string): Promise<ParsedMergeConfig> {
  const text = await readFile(file, 'utf8');
  return parseMergeConfig(text, file);
}

/**
 * mergekit YAML for a config: schema keys only, in mergekit's usual order, lists of numbers in
 * flow style (`[0, 0.5, 1]`). parseMergeConfig(stringifyMergeConfig(c)).config deep-equals c.
 */
export function stringifyMergeConfig(config: MergeConfig): string {
  return config.documents
    .map((d) => {
      const doc = new YamlDocument(orderDocument(d), { version: '1.1', customTags: (tags) => [PYYAML_FLOAT, ...tags] });
      visit(doc, {
        Seq(_key, node) {
          if (node.items.every((item) => isScalar(item))) node.flow = true;
        },
      });
      return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
    })
    .map((s, i) => (i === 0 ? s : `---\n${s}`))
    .join('');
}

/**
 * PyYAML (mergekit's parser) reads `1e-7` as a string: its YAML 1.1 float needs a dot in the
 * mantissa. Exponent-form numbers are therefore written as `1.0e-7`.
 */
const PYYAML_FLOAT: ScalarTag = {
  identify: (v) => typeof v === 'number' && Number.isFinite(v) && /^-?\d+e/.test(String(v)),
  default: true,
  tag: 'tag:yaml.org,2002:float',
  // yaml prefers tags with a `test` when several identify a value.
  test: /^-?\d+\.0e[-+]\d+$/,
  resolve: (s) => Number(s),
  stringify: (item) => String(item.value).replace(/^(-?\d+)e/, '$1.0e'),
};

function orderDocument(d: MergeDocument): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const record = d as unknown as Readonly<Record<string, unknown>>;
  for (const key of DOCUMENT_KEYS) {
    const v = record[key];
    if (v !== undefined) out[key] = key === 'tokenizer' ? tokenizerYaml(v as TokenizerDefinition) : v;
  }
  return out;
}

/** The `tokenizer:` block as mergekit writes it: `tokens` a mapping of token → {source, force}, a model source as its name. */
function tokenizerYaml(t: TokenizerDefinition): Record<string, unknown> {
  const { tokens, ...rest } = t;
  if (tokens === undefined) return { ...rest };
  // fromEntries defines own keys, so a token such as "__proto__" stays a plain key (a Map would be a YAML 1.1 !!omap).
  const map: Record<string, unknown> = Object.fromEntries(
    tokens.map((o) => [o.token, { source: o.source.kind === 'model' ? o.source.model : o.source, ...(o.force ? { force: true } : {}) }]),
  );
  return { ...(rest.source !== undefined ? { source: rest.source } : {}), tokens: map, ...(rest.pad_to_multiple_of !== undefined ? { pad_to_multiple_of: rest.pad_to_multiple_of } : {}) };
}
