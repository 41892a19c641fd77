// The evaluator of the built-in example (search-spaces/example.yaml, `npm run demo`): it needs no
// inference at all. It reads the merged weights and scores how close they are to a hidden ideal
// merge (runs/example-models/target.safetensors, written by make-example):
//
//   score = 1 − ‖merged − target‖ / ‖base − target‖      (over all tensors; higher is better)
//
// so the base model scores 0 and the ideal merge 1. A small, readable example of the user
// evaluator contract (see example-user-evaluator.mjs): `evaluate(candidate, options, context)`
// returns {score, n, ...}; options come from the space file, relative paths there are relative
// to the space file's folder (context.spaceDir).

import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** What this evaluator needs materialized: just the merged Hugging Face folder. */
export const needs = 'hf-dir';

/** Reads every F32 tensor of a safetensors file: Map name → Float32Array. */
function readF32Tensors(file) {
  const bytes = readFileSync(file);
  // Layout: 8-byte little-endian header length, the JSON header, then the tensor data.
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const dataStart = 8 + headerLength;
  const tensors = new Map();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${file}: tensor ${name} is ${info.dtype}, this example reads F32 only (set dtype: float32)`);
    const [begin, end] = info.data_offsets;
    // Copy into a fresh buffer: the data of a tensor need not be 4-byte aligned in the file.
    const copy = Uint8Array.prototype.slice.call(bytes, dataStart + begin, dataStart + end);
    tensors.set(name, new Float32Array(copy.buffer));
  }
  return tensors;
}

/** All tensors of a model folder (one model.safetensors, or shards). */
function readModel(dir) {
  const tensors = new Map();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort()) {
    for (const [name, values] of readF32Tensors(path.join(dir, f))) tensors.set(name, values);
  }
  return tensors;
}

/** Squared Euclidean distance of two equally long arrays. */
function squaredDistance(x, y) {
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - y[i];
    sum += d * d;
  }
  return sum;
}

// The target and the base are the same for every candidate: read them once.
const references = new Map();
function referencesFor(targetFile, baseDir) {
  const key = `${targetFile}\n${baseDir}`;
  if (!references.has(key)) references.set(key, { target: readF32Tensors(targetFile), base: readModel(baseDir) });
  return references.get(key);
}

export async function evaluate(candidate, options, context) {
  const spaceDir = context.spaceDir ?? process.cwd();
  const targetFile = path.resolve(spaceDir, options.target ?? '../runs/example-models/target.safetensors');
  const baseDir = path.resolve(spaceDir, options.base ?? '../runs/example-models/base');
  const { target, base } = referencesFor(targetFile, baseDir);
  const merged = readModel(candidate.dir);

  let mergedDistance = 0;
  let baseDistance = 0;
  for (const [name, want] of target) {
    const got = merged.get(name);
    const from = base.get(name);
    if (got === undefined || got.length !== want.length) return { score: Number.NaN, error: `merged model has no tensor ${name} of ${want.length} values` };
    if (from === undefined) throw new Error(`base model ${baseDir} has no tensor ${name}`);
    mergedDistance += squaredDistance(got, want);
    baseDistance += squaredDistance(from, want);
  }
  const relative = Math.sqrt(mergedDistance / baseDistance);
  return { score: 1 - relative, n: target.size, relativeDistance: relative };
}
