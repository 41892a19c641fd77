import { dtypeByteSize } from '../tensors/dtype.js';
import { kernelDTypeOf } from './native/numeric.js';
import { findMethodSpec } from './registry.js';
import { gramPlanOf } from './methods/gram-stats.js';
import type { TensorInput, TensorTask } from './task.js';
import { slicePackedRows } from './vocab-permutation.js';

/**
 * Splitting a task into row chunks: a chunk is itself a plain TensorTask whose file inputs point at
 * the chunk's rows (a row range of a row-major tensor is one contiguous byte range) and whose
 * outShape has the chunk's row count. A worker computes it like any task and writes it at the
 * chunk's offset, so a large tensor never has to be in memory whole.
 */

/** A row range [rowStart, rowStart + rows) of a task's output. */
export interface RowChunk {
  readonly task: TensorTask;
  readonly rowStart: number;
  readonly rows: number;
}

function product(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * How a task may be cut into row chunks:
 * - 'elementwise': every output element depends only on the elements at the same position of the
 *   inputs, so chunks are computed on their own and give the whole tensor's bytes;
 * - 'two-pass': the task-vector family with sparsification (TIES / breadcrumbs rank windows over
 *   the flattened tensor, DARE / DELLA element-keyed draws, L1 rescale: semantics §0.4, §0.5).
 *   Statistics passes over the chunks first gather what the whole tensor decides
 *   (task-vector-stats.ts); each chunk is then merged on its own. DELLA ranks within rows (dim 1),
 *   so it needs at least 2 dims for a row chunk to hold whole vectors;
 * - 'gram': slerp, nuslerp, model_stock, multislerp and karcher with sums over more than a row,
 *   and sce: passes over the chunks first sum them in fixed blocks of rows (gram-blocks.ts; sce
 *   ranks its variances first), then each chunk is merged on its own. Per-row dot products
 *   (nuslerp_flatten false, model_stock filter_wise) a row chunk holds whole: 'elementwise';
 * - 'whole': tensors of more than 2^32 − 1 elements for the rank kernels, inputs that are not
 *   floats, and embeddings permuted from a tensor an earlier stage computes.
 */
export type RowSplit = 'elementwise' | 'two-pass' | 'gram' | 'whole';

/** Whether the task's output and every input are floats the kernels compute in. */
function floatTask(task: TensorTask): boolean {
  return kernelDTypeOf(task.outDType) !== undefined && task.inputs.every((input) => kernelDTypeOf(input.kind === 'stage' ? input.task.outDType : input.dtype) !== undefined);
}

function methodSplit(task: TensorTask): RowSplit {
  const spec = findMethodSpec(task.method);
  if (spec === undefined) return 'whole';
  switch (spec.family) {
    case 'linear':
    case 'passthrough':
    case 'nearswap':
      return 'elementwise';
    case 'slerp':
    case 'nuslerp':
    case 'model_stock':
    case 'multislerp':
    case 'karcher': {
      // One model is returned as it is (multislerp: one besides the base); otherwise float inputs
      // are summed in gram blocks.
      const models = spec.family === 'multislerp' ? task.inputs.filter((_, i) => i !== task.baseIndex).length : task.inputs.length;
      if (models === 1) return 'elementwise';
      if (!floatTask(task)) return 'whole';
      // Too few models is an error the whole-tensor path reports.
      if ((spec.family === 'model_stock' && models < 3) || models === 0) return 'whole';
      return gramPlanOf(task)?.vectors === null ? 'elementwise' : 'gram';
    }
    case 'sce': {
      // A lone base is returned as it is; without a base sce is an error the whole path reports;
      // the variance ranks use the rank kernels.
      if (task.inputs.length <= 1) return 'elementwise';
      if (task.baseIndex === null || product(task.outShape) >= 2 ** 32) return 'whole';
      return floatTask(task) ? 'gram' : 'whole';
    }
    case 'task_vector': {
      // Without sparsification (no sparsifier, or density 1 for magnitude / random pruning) the
      // family is elementwise: delta, weighted sign election and per-element normalize.
      // compute.ts leaves a delta untouched when its density is >= 1.
      const dense = task.modelParams.every((p, i) => i === task.baseIndex || Number(p['density'] ?? 1) >= 1);
      if (spec.sparsifier === undefined || ((spec.sparsifier === 'magnitude' || spec.sparsifier === 'random') && dense)) return 'elementwise';
      if (spec.sparsifier === 'della_magprune' && task.outShape.length < 2) return 'whole';
      if (product(task.outShape) >= 2 ** 32) return 'whole';
      return floatTask(task) ? 'two-pass' : 'whole';
    }
    default:
      return 'whole';
  }
}

/** The task's RowSplit: its method's, when every input can be cut into the same rows. */
export function rowSplitOf(task: TensorTask): RowSplit {
  const split = methodSplit(task);
  if (split === 'whole' || task.outShape.length < 1) return 'whole';
  const rows = task.outShape[0] ?? 0;
  const trailing = task.outShape.slice(1);
  const inputsOk = task.inputs.every((input) => {
    const shape = inputShape(input);
    // Embeddings may be cut to the output's leading rows (semantics §0.11); anything else must
    // match exactly, or a method that skips mismatched models would see a different set per chunk.
    const rowsOk = task.isEmbed ? (shape[0] ?? 0) >= rows : shape[0] === rows;
    return shape.length >= 1 && rowsOk && sameDims(shape.slice(1), trailing) && inputOk(input);
  });
  return inputsOk ? split : 'whole';
}

/** True when the task's row chunks can be computed each on its own (RowSplit 'elementwise'). */
export function isRowSeparable(task: TensorTask): boolean {
  return rowSplitOf(task) === 'elementwise';
}

function inputShape(input: TensorInput): readonly number[] {
  return input.kind === 'stage' ? input.task.outShape : input.shape;
}

function inputOk(input: TensorInput): boolean {
  if (input.kind === 'stage') return isRowSeparable(input.task);
  // A stage tensor rows are gathered from is computed whole: each chunk would compute it again.
  if (input.kind === 'permuted') return input.sources.every((s) => s.kind === 'file');
  return true;
}

/** The task restricted to output rows [rowStart, rowStart + rows). Assumes rowSplitOf(task) is not 'whole'. */
export function sliceRows(task: TensorTask, rowStart: number, rows: number): TensorTask {
  const total = task.outShape[0] ?? 0;
  if (!(Number.isInteger(rowStart) && Number.isInteger(rows) && rowStart >= 0 && rows > 0 && rowStart + rows <= total)) {
    throw new RangeError(`rows [${rowStart}, ${rowStart + rows}) outside ${task.output} with ${total} rows`);
  }
  return {
    ...task,
    outShape: [rows, ...task.outShape.slice(1)],
    inputs: task.inputs.map((input): TensorInput => {
      if (input.kind === 'stage') return { ...input, task: sliceRows(input.task, rowStart, rows) };
      // A permuted input gathers its rows by position: the chunk keeps just its rows' sources.
      if (input.kind === 'permuted') {
        // Padded rows (past the real ones) need every real row's sources for their mean; other chunks drop them.
        const { padMeanOf, ...rest } = input;
        const keepMean = padMeanOf !== undefined && rowStart + rows > padMeanOf.rowOffsets.length - 1;
        return { ...rest, shape: [rows, ...input.shape.slice(1)], ...slicePackedRows(input, rowStart, rows), ...(keepMean ? { padMeanOf } : {}) };
      }
      const rowBytes = product(input.shape.slice(1)) * dtypeByteSize(input.dtype);
      return {
        ...input,
        shape: [rows, ...input.shape.slice(1)],
        byteOffset: input.byteOffset + rowStart * rowBytes,
        byteLength: rows * rowBytes,
      };
    }),
  };
}

/**
 * Row chunks of `task` of about `targetRows` rows each (the last one shorter), or the task whole
 * when its RowSplit is 'whole' or it has no more rows than that. Chunks of a 'two-pass' task are
 * merged only with the statistics gathered over all of them.
 */
export function splitRows(task: TensorTask, targetRows: number): readonly RowChunk[] {
  const total = task.outShape[0] ?? 1;
  const step = Math.max(1, Math.floor(targetRows));
  if (task.outShape.length === 0 || total <= step || rowSplitOf(task) === 'whole') {
    return [{ task, rowStart: 0, rows: total }];
  }
  const chunks: RowChunk[] = [];
  for (let start = 0; start < total; start += step) {
    const rows = Math.min(step, total - start);
    chunks.push({ task: sliceRows(task, start, rows), rowStart: start, rows });
  }
  return chunks;
}
