import { describe, expect, it } from 'vitest';
import { isRowSeparable, rowSplitOf, sliceRows, splitRows } from '../../src/merge/row-chunks.js';
import type { FileTensorInput, MethodId, ResolvedParams, TensorTask } from '../../src/merge/task.js';

function input(model: string, shape: number[], byteOffset = 100): FileTensorInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { kind: 'file', model, file: `/m/${model}`, tensor: 'w', dtype: 'BF16', shape, byteOffset, byteLength: n * 2 };
}

function task(method: MethodId, inputs: TensorTask['inputs'], outShape: number[], modelParams?: ResolvedParams[]): TensorTask {
  return {
    output: 'w',
    outShape,
    outDType: 'F32',
    computeDType: 'F32',
    method,
    inputs,
    baseIndex: method === 'linear' ? null : 0,
    params: {},
    modelParams: modelParams ?? inputs.map(() => ({ weight: 0.5 })),
    isEmbed: false,
    randomKey: { seed: 1, tensor: 'w' },
  };
}

describe('row chunks', () => {
  it('slices each file input to the byte range of the rows', () => {
    const t = task('linear', [input('a', [10, 3], 100), input('b', [10, 3], 1000)], [10, 3]);
    const s = sliceRows(t, 4, 5);
    expect(s.outShape).toEqual([5, 3]);
    expect(s.inputs).toEqual([
      { ...input('a', [5, 3]), byteOffset: 100 + 4 * 3 * 2, byteLength: 5 * 3 * 2 },
      { ...input('b', [5, 3]), byteOffset: 1000 + 4 * 3 * 2, byteLength: 5 * 3 * 2 },
    ]);
    expect(() => sliceRows(t, 8, 3)).toThrow(RangeError);
  });

  it('splits into chunks covering every row once, the last one shorter', () => {
    const t = task('linear', [input('a', [10, 3])], [10, 3]);
    const chunks = splitRows(t, 4);
    expect(chunks.map((c) => [c.rowStart, c.rows])).toEqual([
      [0, 4],
      [4, 4],
      [8, 2],
    ]);
    expect(splitRows(t, 10)).toEqual([{ task: t, rowStart: 0, rows: 10 }]);
  });

  it('slices stage inputs recursively', () => {
    const stage = task('linear', [input('a', [6, 2])], [6, 2]);
    const t = task('linear', [{ kind: 'stage', model: 's', task: stage }, input('b', [6, 2])], [6, 2]);
    const s = sliceRows(t, 2, 2);
    const first = s.inputs[0];
    if (first?.kind !== 'stage') throw new Error('expected a stage input');
    expect(first.task.outShape).toEqual([2, 2]);
    expect(first.task.inputs[0]).toMatchObject({ shape: [2, 2], byteOffset: 100 + 2 * 2 * 2, byteLength: 8 });
  });

  it('treats elementwise methods as separable and whole-tensor ones as not', () => {
    const two = [input('base', [4, 4]), input('ft', [4, 4])];
    expect(isRowSeparable(task('linear', two, [4, 4]))).toBe(true);
    expect(isRowSeparable(task('passthrough', [input('a', [4, 4])], [4, 4], [{}]))).toBe(true);
    expect(isRowSeparable(task('task_arithmetic', two, [4, 4]))).toBe(true);
    expect(isRowSeparable(task('ties', two, [4, 4], [{ weight: 1 }, { weight: 1, density: 1 }]))).toBe(true);
    // Sparsified: top-k over the whole tensor, L1 rescale per tensor.
    expect(isRowSeparable(task('ties', two, [4, 4], [{ weight: 1 }, { weight: 1, density: 0.5 }]))).toBe(false);
    expect(isRowSeparable(task('dare_ties', two, [4, 4], [{ weight: 1 }, { weight: 1, density: 0.5 }]))).toBe(false);
    expect(isRowSeparable(task('breadcrumbs', two, [4, 4], [{ weight: 1 }, { weight: 1, density: 1 }]))).toBe(false);
    expect(isRowSeparable(task('slerp', two, [4, 4], [{}, {}]))).toBe(false);
    expect(isRowSeparable(task('sce', two, [4, 4], [{}, {}]))).toBe(false);
    // A whole-tensor task (DELLA on a 1-d tensor, one vector) is never cut.
    expect(splitRows(task('della', [input('base', [16]), input('ft', [16])], [16], [{ weight: 1 }, { weight: 1, density: 0.5 }]), 1)).toHaveLength(1);
  });

  it('needs matching shapes, except embeddings cut to their leading rows', () => {
    const mismatched = task('linear', [input('a', [6, 4]), input('b', [4, 4])], [4, 4]);
    expect(isRowSeparable(mismatched)).toBe(false);
    expect(isRowSeparable({ ...mismatched, isEmbed: true })).toBe(true);
    const narrower = task('linear', [input('a', [4, 3]), input('b', [4, 4])], [4, 4]);
    expect(isRowSeparable({ ...narrower, isEmbed: true })).toBe(false);
    const short = task('linear', [input('a', [3, 4]), input('b', [4, 4])], [4, 4]);
    expect(isRowSeparable({ ...short, isEmbed: true })).toBe(false);
  });

  it('runs sparsified task-vector methods in two passes over row chunks, where chunks can hold what they rank', () => {
    const two = [input('base', [4, 4]), input('ft', [4, 4])];
    const sparse: ResolvedParams[] = [{ weight: 1 }, { weight: 1, density: 0.5 }];
    for (const m of ['ties', 'dare_ties', 'dare_linear', 'breadcrumbs', 'breadcrumbs_ties', 'della', 'della_linear'] as const) {
      expect(rowSplitOf(task(m, two, [4, 4], sparse)), m).toBe('two-pass');
      expect(splitRows(task(m, two, [4, 4], sparse), 1), m).toHaveLength(4);
    }
    expect(rowSplitOf(task('ties', two, [4, 4], [{ weight: 1 }, { weight: 1, density: 1 }]))).toBe('elementwise');
    // DELLA ranks along dim 1: a 1-d tensor is one vector, which a row chunk would cut.
    const flat = [input('base', [16]), input('ft', [16])];
    expect(rowSplitOf(task('della', flat, [16], sparse))).toBe('whole');
    expect(rowSplitOf(task('ties', flat, [16], sparse))).toBe('two-pass');
    // Integer tensors are copied, not merged: nothing to gather statistics on.
    const ints = two.map((i) => ({ ...i, dtype: 'I32' as const, byteLength: i.byteLength * 2 }));
    expect(rowSplitOf(task('ties', ints, [4, 4], sparse))).toBe('whole');
    // The slerp family sums its dot products over gram blocks first, unless its vectors are rows.
    expect(rowSplitOf(task('slerp', two, [4, 4], [{}, {}]))).toBe('gram');
    expect(rowSplitOf(task('slerp', [input('ft', [4, 4])], [4, 4], [{}]))).toBe('elementwise');
    expect(rowSplitOf(task('slerp', ints, [4, 4], [{}, {}]))).toBe('whole');
    const pair = [input('a', [4, 4]), input('b', [4, 4])];
    const nuslerp = (params: TensorTask['params'], shape = [4, 4]): TensorTask => ({ ...task('nuslerp', pair.map((i) => ({ ...i, shape })), shape), baseIndex: null, params });
    expect(rowSplitOf(nuslerp({}))).toBe('gram');
    expect(rowSplitOf(nuslerp({ nuslerp_flatten: false, nuslerp_row_wise: true }))).toBe('gram');
    expect(rowSplitOf(nuslerp({ nuslerp_flatten: false }))).toBe('elementwise');
    expect(rowSplitOf(nuslerp({ nuslerp_flatten: false }, [16]))).toBe('gram');
    expect(rowSplitOf(task('multislerp', [...two, input('ft2', [4, 4])], [4, 4], [{}, { weight: 1 }, { weight: 1 }]))).toBe('gram');
    // Around a base a lone model is returned as it is.
    expect(rowSplitOf(task('multislerp', two, [4, 4], [{}, { weight: 1 }]))).toBe('elementwise');
    expect(rowSplitOf(task('karcher', two, [4, 4], [{}, {}]))).toBe('gram');
    expect(rowSplitOf(task('sce', two, [4, 4], [{}, {}]))).toBe('gram');
    expect(rowSplitOf(task('sce', [input('base', [4, 4])], [4, 4], [{}]))).toBe('elementwise');
    expect(rowSplitOf({ ...task('sce', two, [4, 4], [{}, {}]), baseIndex: null })).toBe('whole');
    const three = [...two, input('ft2', [4, 4])];
    expect(rowSplitOf(task('model_stock', three, [4, 4], [{}, {}, {}]))).toBe('gram');
    expect(rowSplitOf({ ...task('model_stock', three, [4, 4], [{}, {}, {}]), params: { filter_wise: true } })).toBe('elementwise');
    expect(rowSplitOf(task('model_stock', two, [4, 4], [{}, {}]))).toBe('whole');
    // Shapes: the same rule as elementwise chunks.
    expect(rowSplitOf(task('ties', [input('base', [4, 4]), input('ft', [6, 4])], [4, 4], sparse))).toBe('whole');
  });
});
