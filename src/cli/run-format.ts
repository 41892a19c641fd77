/**
 * Text formatting shared by the commands that read run stores (`evo runs`, `evo show`). Every
 * quality figure is printed with its confidence interval (when the evaluator gave one) and its
 * sample size (design.md, Rules).
 */
import type { ObjectiveBest, ObjectiveSpec, ScoreRecord } from '../store/types.js';

/** Four significant digits, no exponent for ordinary magnitudes: 0.7125, 12.35, 1235. */
export function formatNumber(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1e6 || abs < 1e-4) return x.toPrecision(4);
  return String(Number(x.toPrecision(4)));
}

/** `0.7125 [0.69, 0.7341] n=500`, or `3.5 n=1` without an interval. */
export function formatScore(s: Pick<ScoreRecord, 'value' | 'ciLow' | 'ciHigh' | 'n'>): string {
  const ci = s.ciLow === null || s.ciHigh === null ? '' : ` [${formatNumber(s.ciLow)}, ${formatNumber(s.ciHigh)}]`;
  return `${formatNumber(s.value)}${ci} n=${s.n}`;
}

/** `acc 0.7125 [0.69, 0.7341] n=500 (#17); cost 3.5 n=1 (#4)`, or `-` before any result. */
export function formatBests(objectives: readonly ObjectiveSpec[], best: Readonly<Record<string, ObjectiveBest | null>>): string {
  const parts = objectives.flatMap((o) => {
    const b = best[o.name];
    return b === null || b === undefined ? [] : [`${o.name} ${formatScore(b)} (#${b.candidateId})`];
  });
  return parts.length === 0 ? '-' : parts.join('; ');
}

/** Left-aligned columns separated by two spaces; the first row is the header. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** Bytes in binary units: `1.25 GiB`; `-` when unknown. */
export function formatSize(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} B` : `${formatNumber(Number(v.toFixed(2)))} ${units[u]}`;
}
