/**
 * Builds TensorTasks by hand from a mergekit-golden case (config.yml for the model order,
 * params.json for the resolved parameters of every tensor) so computeTask can be checked without
 * the planner. Shared by golden-arith*.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { decodeToF32, dtypeFromMergekit, type DType } from '../../src/tensors/dtype.js';
import { SafetensorsReader } from '../../src/tensors/safetensors.js';
import type { ResolvedParams, TensorTask } from '../../src/merge/task.js';
import type { MethodId } from '../../src/merge/task.js';
import type { TensorData } from '../../src/merge/compute.js';

export interface GoldenTensorCase {
  readonly task: TensorTask;
  readonly inputs: readonly TensorData[];
  readonly expected: TensorData;
  /** Model directory name per input (ft1, base, …), for masks.safetensors keys. */
  readonly modelNames: readonly string[];
}

interface ModelEntry {
  readonly model: string;
}

interface CaseConfig {
  readonly merge_method: string;
  readonly base_model?: string;
  readonly dtype?: string;
  readonly models?: readonly ModelEntry[];
  readonly slices?: readonly { readonly sources: readonly ModelEntry[] }[];
}

type ParamsEntry = Readonly<Record<string, unknown>> & {
  readonly out_dtype: string;
  readonly tensor_parameters?: Readonly<Record<string, Readonly<Record<string, number | boolean | null>>>>;
};

/** Model references in mergekit's order: as listed, then the base when it is not listed. */
function modelOrder(cfg: CaseConfig): string[] {
  const listed = cfg.models?.map((m) => m.model) ?? cfg.slices?.[0]?.sources.map((s) => s.model) ?? [];
  const order = [...new Set(listed)];
  if (cfg.base_model !== undefined && !order.includes(cfg.base_model)) order.push(cfg.base_model);
  return order;
}

function globalParams(entry: ParamsEntry): ResolvedParams {
  const out: Record<string, number | boolean> = {};
  const copy = (from: string, to: string): void => {
    const v = entry[from];
    if (typeof v === 'number' || typeof v === 'boolean') out[to] = v;
  };
  copy('normalize', 'normalize');
  copy('lambda_', 'lambda');
  copy('t', 't');
  copy('filter_wise', 'filter_wise');
  copy('flatten', 'nuslerp_flatten');
  copy('row_wise', 'nuslerp_row_wise');
  copy('int8_mask', 'int8_mask');
  if ('rescale_norm' in entry) out.rescale = entry.rescale_norm !== null;
  return out;
}

function modelParams(entry: ParamsEntry, model: string): ResolvedParams {
  const out: Record<string, number | boolean> = {};
  for (const [k, v] of Object.entries(entry.tensor_parameters?.[model] ?? {})) if (v !== null) out[k] = v;
  return out;
}

export async function readTensor(reader: SafetensorsReader, name: string): Promise<TensorData> {
  const info = reader.tensor(name);
  return { dtype: info.dtype, shape: info.shape, bytes: await reader.readTensor(name) };
}

export function toF32(t: TensorData): Float32Array {
  return decodeToF32(t.dtype, t.bytes);
}

/** Every tensor of one golden case, as (task, inputs, expected). */
export async function loadGoldenCase(goldenDir: string, name: string): Promise<GoldenTensorCase[]> {
  const dir = path.join(goldenDir, 'cases', name);
  const cfg = parse(readFileSync(path.join(dir, 'config.yml'), 'utf8')) as CaseConfig;
  const params = JSON.parse(readFileSync(path.join(dir, 'params.json'), 'utf8')) as Record<string, ParamsEntry>;
  const order = modelOrder(cfg);
  const readers = await Promise.all(order.map((m) => SafetensorsReader.open(path.join(dir, m, 'model.safetensors'))));
  const expected = await SafetensorsReader.open(path.join(dir, 'expected.safetensors'));
  const computeDType = dtypeFromMergekit(cfg.dtype ?? 'float32') ?? 'F32';
  const out: GoldenTensorCase[] = [];
  try {
    for (const [tensor, entry] of Object.entries(params)) {
      const outDType: DType = dtypeFromMergekit(entry.out_dtype) ?? 'F32';
      const inputs = await Promise.all(readers.map((r) => readTensor(r, tensor)));
      const exp = await readTensor(expected, tensor);
      const task: TensorTask = {
        output: tensor,
        outShape: exp.shape,
        outDType,
        computeDType,
        method: cfg.merge_method as MethodId,
        inputs: readers.map((r, i) => {
          const info = r.tensor(tensor);
          return {
            kind: 'file' as const,
            model: order[i] ?? '',
            file: r.file,
            tensor,
            dtype: info.dtype,
            shape: info.shape,
            byteOffset: info.byteOffset,
            byteLength: info.byteLength,
          };
        }),
        baseIndex: cfg.base_model === undefined ? null : order.indexOf(cfg.base_model),
        params: globalParams(entry),
        modelParams: order.map((m) => modelParams(entry, m)),
        isEmbed: tensor.includes('embed_tokens') || tensor.includes('lm_head'),
        randomKey: { seed: 0, tensor },
      };
      out.push({ task, inputs, expected: exp, modelNames: order.map((m) => path.basename(m)) });
    }
  } finally {
    await Promise.all([...readers.map((r) => r.close()), expected.close()]);
  }
  return out;
}

/** Elements failing |a − e| <= atol + rtol·|e| (NaN equals NaN). */
export function countMismatches(actual: Float32Array, expected: Float32Array, atol: number, rtol: number): number {
  let bad = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] ?? Number.NaN;
    const e = expected[i] ?? Number.NaN;
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) bad++;
  }
  return bad;
}
