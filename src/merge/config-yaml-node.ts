import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node as YamlNode } from 'yaml';
import type { ConfigIssue, ConfigIssueCode } from './config-issue.js';
import type { MethodSpec } from './method-spec.js';

/** The YAML-node helpers of config-read.ts: positions, issue reports, typed reads of scalars and maps. */

export interface Ctx {
  /** The document's method, once `merge_method` has been read (parameters are checked against it). */
  spec?: MethodSpec;
  readonly doc: Document.Parsed;
  readonly index: number;
  readonly lines: LineCounter;
  readonly issues: ConfigIssue[];
  /** `${document}|${path}` → position of the value node. */
  readonly positions: Map<string, { line: number; col: number }>;
}

export function posOf(ctx: Ctx, node: YamlNode | null | undefined): { line: number; col: number } | undefined {
  const offset = node?.range?.[0];
  return offset === undefined ? undefined : ctx.lines.linePos(offset);
}

export function report(
  ctx: Ctx,
  severity: 'error' | 'warning',
  code: ConfigIssueCode,
  path: string,
  message: string,
  node?: YamlNode | null,
): void {
  const pos = posOf(ctx, node) ?? ctx.positions.get(`${ctx.index}|${path}`);
  ctx.issues.push({ severity, code, document: ctx.index, path, message, ...(pos ? { line: pos.line, col: pos.col } : {}) });
}

export function deref(ctx: Ctx, node: unknown): YamlNode | null {
  if (isAlias(node)) return (node.resolve(ctx.doc) as YamlNode | undefined) ?? null;
  return (node as YamlNode | null) ?? null;
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function describe(node: YamlNode | null): string {
  if (node === null) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'null';
    return typeof v === 'string' ? `string '${v}'` : `${typeof v} ${String(v)}`;
  }
  return 'an unexpected node';
}

/** Reads a mapping's entries, recording positions and warning on keys outside `known`. */
export function readMap(ctx: Ctx, node: YamlNode | null, path: string, known: readonly string[]): Map<string, YamlNode | null> | undefined {
  if (!isMap(node)) {
    report(ctx, 'error', 'WRONG_TYPE', path, `expected a mapping, got ${describe(node)}`, node);
    return undefined;
  }
  const out = new Map<string, YamlNode | null>();
  for (const pair of node.items) {
    const keyNode = deref(ctx, pair.key);
    const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
    if (key === undefined) {
      report(ctx, 'error', 'WRONG_TYPE', path, 'keys must be plain strings', keyNode);
      continue;
    }
    const valueNode = deref(ctx, pair.value);
    const p = join(path, key);
    const pos = posOf(ctx, valueNode) ?? posOf(ctx, keyNode);
    if (pos) ctx.positions.set(`${ctx.index}|${p}`, pos);
    if (!known.includes(key)) {
      report(ctx, 'warning', 'UNKNOWN_KEY', p, `unknown key '${key}' is ignored (mergekit ignores it silently; known here: ${known.join(', ')})`, keyNode);
      continue;
    }
    out.set(key, valueNode);
  }
  return out;
}

export function isNull(node: YamlNode | null): boolean {
  return node === null || (isScalar(node) && node.value === null);
}

export function readString(ctx: Ctx, node: YamlNode | null, path: string): string | undefined {
  if (isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number')) {
    const s = String(node.value);
    if (s !== '') return s;
  }
  report(ctx, 'error', 'WRONG_TYPE', path, `expected a non-empty string, got ${describe(node)}`, node);
  return undefined;
}
