import path from 'node:path';
import type { Command } from 'commander';
import { openCheckpoint, parameterCount, type CheckpointSource, type ModelCheckpoint } from '../tensors/checkpoint.js';
import { compareTensorNames, layerIndexOf, tensorRole } from '../tensors/tensor-role.js';
import { emitResult } from './output.js';

/** `evo inspect --json` output: one document describing a checkpoint. */
export interface InspectReport {
  readonly ref: string;
  readonly dir: string;
  readonly source: CheckpointSource;
  readonly architecture: string;
  readonly modelType: string;
  readonly layers: number;
  readonly hiddenSize: number | null;
  readonly intermediateSize: number | null;
  readonly numAttentionHeads: number | null;
  readonly numKeyValueHeads: number | null;
  readonly vocabSize: number | null;
  readonly torchDtype: string | null;
  readonly parameters: number;
  readonly bytes: number;
  readonly tiedEmbeddings: boolean;
  /** Per stored dtype, largest first. */
  readonly dtypes: readonly { readonly dtype: string; readonly tensors: number; readonly parameters: number; readonly bytes: number }[];
  /** Weight files relative to `dir`. */
  readonly shards: readonly { readonly file: string; readonly tensors: number; readonly bytes: number }[];
  readonly indexFile: string | null;
  readonly tokenizerFiles: readonly string[];
  readonly generationConfigFile: string | null;
  readonly tensors: readonly { readonly name: string; readonly dtype: string; readonly shape: readonly number[]; readonly bytes: number; readonly file: string }[];
  readonly problems: readonly string[];
}

/** Builds the report for a checkpoint (pure: no I/O). */
export function inspectReport(checkpoint: ModelCheckpoint): InspectReport {
  const c = checkpoint.config;
  const dtypes = new Map<string, { tensors: number; parameters: number; bytes: number }>();
  const shards = new Map<string, { tensors: number; bytes: number }>(checkpoint.shardFiles.map((f) => [f, { tensors: 0, bytes: 0 }]));
  let bytes = 0;
  const tensors: InspectReport['tensors'][number][] = [];
  for (const t of checkpoint.tensors.values()) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    const d = dtypes.get(t.dtype) ?? { tensors: 0, parameters: 0, bytes: 0 };
    dtypes.set(t.dtype, { tensors: d.tensors + 1, parameters: d.parameters + elements, bytes: d.bytes + t.byteLength });
    const s = shards.get(t.file) ?? { tensors: 0, bytes: 0 };
    shards.set(t.file, { tensors: s.tensors + 1, bytes: s.bytes + t.byteLength });
    bytes += t.byteLength;
    tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.byteLength, file: path.relative(checkpoint.dir, t.file) });
  }
  return {
    ref: checkpoint.ref,
    dir: checkpoint.dir,
    source: checkpoint.source,
    architecture: c.architecture,
    modelType: c.modelType,
    layers: c.numHiddenLayers,
    hiddenSize: c.hiddenSize ?? null,
    intermediateSize: c.intermediateSize ?? null,
    numAttentionHeads: c.numAttentionHeads ?? null,
    numKeyValueHeads: c.numKeyValueHeads ?? null,
    vocabSize: c.vocabSize ?? null,
    torchDtype: c.torchDtype ?? null,
    parameters: parameterCount(checkpoint),
    bytes,
    tiedEmbeddings: checkpoint.tiedEmbeddings,
    dtypes: [...dtypes.entries()].map(([dtype, v]) => ({ dtype, ...v })).sort((a, b) => b.bytes - a.bytes || (a.dtype < b.dtype ? -1 : 1)),
    shards: [...shards.entries()].map(([file, v]) => ({ file: path.relative(checkpoint.dir, file), ...v })),
    indexFile: checkpoint.indexFile === undefined ? null : path.relative(checkpoint.dir, checkpoint.indexFile),
    tokenizerFiles: checkpoint.tokenizerFiles,
    generationConfigFile: checkpoint.generationConfigFile ?? null,
    tensors,
    problems: checkpoint.problems,
  };
}

/** `1234567` → `1,234,567`. */
function grouped(n: number): string {
  return n.toLocaleString('en-US');
}

/** Bytes in binary units with three significant digits: `46.6 KiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

/**
 * The human-readable report. Without `allTensors` the tensor list shows the non-layer tensors,
 * the first and the last layer in full, and one summary line for the layers between.
 */
export function formatInspectReport(r: InspectReport, allTensors: boolean): string {
  const lines: string[] = [];
  const row = (label: string, value: string): void => {
    lines.push(`${label.padEnd(16)}${value}`);
  };
  row('model', r.dir);
  if (r.source.kind === 'hub') row('hub', `${r.source.repo}@${r.source.revision} (commit ${r.source.commit})`);
  const dims = [
    `${r.layers} layers`,
    r.hiddenSize === null ? undefined : `hidden ${r.hiddenSize}`,
    r.intermediateSize === null ? undefined : `intermediate ${r.intermediateSize}`,
    r.numAttentionHeads === null ? undefined : `heads ${r.numAttentionHeads} (kv ${r.numKeyValueHeads ?? r.numAttentionHeads})`,
    r.vocabSize === null ? undefined : `vocab ${r.vocabSize}`,
  ].filter((x) => x !== undefined);
  const arch = r.architecture === '' ? '(no architectures in config)' : r.architecture;
  row('architecture', `${arch}${r.modelType === '' ? '' : ` (${r.modelType})`}: ${dims.join(', ')}`);
  row('parameters', `${grouped(r.parameters)} in ${r.tensors.length} tensors (${formatBytes(r.bytes)})`);
  row('dtypes', r.dtypes.map((d) => `${d.dtype} ${d.tensors} tensors, ${grouped(d.parameters)} params, ${formatBytes(d.bytes)}`).join('; ') || 'none');
  row('tied embeddings', r.tiedEmbeddings ? 'yes' : 'no');
  row('weights', r.indexFile === null ? `${r.shards.length} file(s)` : `${r.shards.length} shard(s) via ${r.indexFile}`);
  for (const s of r.shards) lines.push(`${''.padEnd(16)}${s.file}: ${s.tensors} tensors, ${formatBytes(s.bytes)}`);
  row('tokenizer', r.tokenizerFiles.length === 0 ? 'none' : r.tokenizerFiles.join(', '));
  row('generation', r.generationConfigFile ?? 'none');

  lines.push(`tensors${allTensors ? '' : ' (first and last layer; --tensors lists all)'}`);
  const sorted = [...r.tensors].sort((a, b) => modelOrder(a.name) - modelOrder(b.name) || compareTensorNames(a.name, b.name));
  const layerIds = [...new Set(sorted.map((t) => layerIndexOf(t.name)).filter((l) => l !== undefined))].sort((a, b) => a - b);
  const first = layerIds[0];
  const last = layerIds[layerIds.length - 1];
  const width = Math.min(60, Math.max(0, ...sorted.map((t) => t.name.length)));
  let skipped = 0;
  let skippedLayers = 0;
  let lastSkippedLayer: number | undefined;
  const flush = (): void => {
    if (skipped > 0) lines.push(`  … ${skippedLayers} more layer(s), ${skipped} tensors`);
    skipped = 0;
    skippedLayers = 0;
  };
  for (const t of sorted) {
    const layer = layerIndexOf(t.name);
    if (!allTensors && layer !== undefined && layer !== first && layer !== last) {
      skipped++;
      if (layer !== lastSkippedLayer) skippedLayers++;
      lastSkippedLayer = layer;
      continue;
    }
    flush();
    lines.push(`  ${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  [${t.shape.join(', ')}]  ${formatBytes(t.bytes)}`);
  }
  flush();
  if (r.problems.length === 0) row('problems', 'none');
  else {
    lines.push(`problems (${r.problems.length})`);
    for (const p of r.problems) lines.push(`  - ${p}`);
  }
  return lines.join('\n');
}

/** Rank of a tensor in reading order: embeddings, other, layers, final norm, lm_head. */
function modelOrder(name: string): number {
  const kind = tensorRole(name).kind;
  return kind === 'embedding' ? 0 : kind === 'other' ? 1 : kind === 'layer' ? 2 : kind === 'final_norm' ? 3 : 4;
}

interface InspectFlags {
  json: boolean;
  tensors: boolean;
  offline?: boolean;
}

/** Registers `evo inspect <model> [--json] [--tensors] [--offline]`. */
export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('describe a model checkpoint: architecture, layers, parameters, dtypes, tensors, shards, tokenizer, problems')
    .argument('<model>', 'model directory, .safetensors file, or Hugging Face hub id org/name[@revision]')
    .option('--json', 'print one JSON document instead of text', false)
    .option('--tensors', 'list every tensor (text output abbreviates to the first and last layer)', false)
    .option('--offline', 'use only the Hugging Face cache for hub ids (default: $HF_HUB_OFFLINE)')
    .action(async (model: string, flags: InspectFlags) => {
      const checkpoint = await openCheckpoint(model, flags.offline === true ? { offline: true } : {});
      const report = inspectReport(checkpoint);
      emitResult(flags.json, report, () => formatInspectReport(report, flags.tensors));
    });
}
