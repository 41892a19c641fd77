import { dtypeByteSize } from '../tensors/dtype.js';
import { findMethodSpec } from './registry.js';
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
 * True when every output element depends only on the elements at the same position of the inputs,
 * so that computing row chunks separately gives the whole tensor's bytes. Methods with whole-tensor
 * statistics are not: slerp / nuslerp / multislerp / karcher / model_stock / sce (norms and dot
 * products), TIES / DARE / DELLA / breadcrumbs with sparsification (top-k over the flattened tensor,
 * L1 rescale per tensor, element-keyed random streams: semantics §0.4, §0.5).
 */
export function isRowSeparable(task: TensorTask): boolean {
  const spec = findMethodSpec(task.method);
  if (spec === undefined) return false;
  let methodOk: boolean;
  switch (spec.family) {
    case 'linear':
    case 'passthrough':
    case 'nearswap':
      methodOk = true;
      break;
    case 'task_vector':
      // Without sparsification (no sparsifier, or density 1 for magnitude / random pruning) the
      // family is elementwise: delta, weighted sign election and per-element normalize.
      // compute.ts leaves a delta untouched when its density is >= 1.
      methodOk =
        spec.sparsifier === undefined ||
        ((spec.sparsifier === 'magnitude' || spec.sparsifier === 'random') &&
          task.modelParams.every((p, i) => i === task.baseIndex || Number(p['density'] ?? 1) >= 1));
      break;
    default:
      methodOk = false;
  }
  if (!methodOk || task.outShape.length < 1) return false;
  const rows = task.outShape[0] ?? 0;
  const trailing = task.outShape.slice(1);
  return task.inputs.every((input) => {
    const shape = inputShape(input);
    // Embeddings may be cut to the output's leading rows (semantics §0.11); anything else must
    // match exactly, or a method that skips mismatched models would see a different set per chunk.
    const rowsOk = task.isEmbed ? (shape[0] ?? 0) >= rows : shape[0] === rows;
    return shape.length >= 1 && rowsOk && sameDims(shape.slice(1), trailing) && inputOk(input);
  });
}

function inputShape(input: TensorInput): readonly number[] {
  return input.kind === 'stage' ? input.task.outShape : input.shape;
}

function inputOk(input: TensorInput): boolean {
  return input.kind !== 'stage' || isRowSeparable(input.task);
}

/** The task restricted to output rows [rowStart, rowStart + rows). Assumes isRowSeparable(task). */
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
      if (input.kind === 'permuted') return { ...input, shape: [rows, ...input.shape.slice(1)], ...slicePackedRows(input, rowStart, rows) };
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
 * when it is not row-separable or has no more rows than that.
 */
export function splitRows(task: TensorTask, targetRows: number): readonly RowChunk[] {
  const total = task.outShape[0] ?? 1;
  const step = Math.max(1, Math.floor(targetRows));
  if (task.outShape.length === 0 || total <= step || !isRowSeparable(task)) {
    return [{ task, rowStart: 0, rows: total }];
  }
  const chunks: RowChunk[] = [];
  for (let start = 0; start < total; start += step) {
    const rows = Math.min(step, total - start);
    chunks.push({ task: sliceRows(task, start, rows), rowStart: start, rows });
  }
  return chunks;
}
