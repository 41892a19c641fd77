import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { parseMergeConfig } from '../../src/merge/config.js';
import { materializePlan, type MaterializeOptions } from '../../src/merge/materialize.js';
import { inputBytesOf } from '../../src/merge/memory-budget.js';
import { resolvePlan } from '../../src/merge/plan.js';
import type { MergePlan } from '../../src/merge/task.js';
import { SafetensorsReader } from '../../src/tensors/safetensors.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import type { TinyLlamaInfo, TinyLlamaOptions } from '../fixtures/tiny-llama.js';

/** Shapes small enough for fast tests, large enough that row chunks and several tasks per worker happen. */
export const TINY: TinyLlamaOptions = { layers: 2, hidden: 32, intermediate: 64, vocab: 48, heads: 4, kvHeads: 2, dtype: 'BF16' };

export interface TinyModels {
  readonly root: string;
  readonly base: TinyLlamaInfo;
  readonly fineTunes: readonly TinyLlamaInfo[];
}

/** A temp folder with a base and `count` fine-tunes of it (base + noise), named base, ft1, ft2, ... */
export async function writeTinyModels(count: number, options: TinyLlamaOptions = TINY): Promise<TinyModels> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'evomerge-materialize-'));
  const base = await writeTinyLlama(path.join(root, 'base'), { ...options, seed: 0 });
  const fineTunes: TinyLlamaInfo[] = [];
  for (let i = 1; i <= count; i++) {
    fineTunes.push(await writeTinyLlama(path.join(root, `ft${i}`), { ...options, seed: 100 + i, perturbFrom: { seed: 0, scale: 0.2 } }));
  }
  return { root, base, fineTunes };
}

/** Plans `yaml` (model paths relative to `root`) through the real config parser and planner; warnings go to `warnings`. */
export async function planYaml(root: string, yaml: string, seed = 7, warnings?: string[]): Promise<MergePlan> {
  const file = path.join(root, `config-${Math.random().toString(36).slice(2)}.yml`);
  fs.writeFileSync(file, yaml);
  const parsed = parseMergeConfig(yaml, file);
  return resolvePlan(parsed.config, { configFile: file, seed, configText: yaml, ...(warnings ? { onWarning: (m: string) => warnings.push(m) } : {}) });
}

/** Every file of a directory by name (sorted), with its bytes. */
export function readDir(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir).sort()) out.set(name, fs.readFileSync(path.join(dir, name)));
  return out;
}

export interface StoredTensor {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly bytes: Buffer;
}

/** The tensors of one .safetensors file, by name. */
export function readTensorFile(file: string): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  const reader = SafetensorsReader.openSync(file);
  try {
    for (const [tensor, info] of reader.header.tensors) {
      out.set(tensor, { dtype: info.dtype, shape: info.shape, bytes: Buffer.from(reader.readTensorSync(tensor)) });
    }
  } finally {
    reader.closeSync();
  }
  return out;
}

/** The tensors of every .safetensors file in `dir`, by name. */
export function readTensors(dir: string): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort()) {
    for (const [tensor, t] of readTensorFile(path.join(dir, name))) out.set(tensor, t);
  }
  return out;
}

/** A copy of `plan` with its tasks in a seeded random order. */
export function shuffleTasks(plan: MergePlan, seed: number): MergePlan {
  const tasks = [...plan.tasks];
  let x = seed >>> 0 || 1;
  for (let i = tasks.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    const a = tasks[i];
    const b = tasks[j];
    if (a === undefined || b === undefined) throw new Error('unreachable');
    tasks[i] = b;
    tasks[j] = a;
  }
  return { ...plan, tasks };
}

/** Names in `dir` that look like temp files of an unfinished write. */
export function tempFilesIn(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')) : [];
}

/**
 * Merges `plan` into `outDir` (removed afterwards) with real workers: the merged weights, and
 * whether statistics passes ran (they read chunks a second time).
 */
export async function mergeWeights(plan: MergePlan, outDir: string, options: Omit<MaterializeOptions, 'outDir'>): Promise<{ weights: Buffer; reread: boolean }> {
  const summary = await materializePlan(plan, { progress: 'none', ...options, outDir });
  expect(tempFilesIn(outDir)).toEqual([]);
  const weights = readDir(outDir).get('model.safetensors');
  if (weights === undefined) throw new Error(`no model.safetensors in ${outDir}`);
  fs.rmSync(outDir, { recursive: true, force: true });
  return { weights, reread: summary.bytesRead > plan.tasks.reduce((n, t) => n + inputBytesOf(t), 0) };
}
