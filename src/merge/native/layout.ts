/**
 * Vector layouts (twin of layout.h): a tensor seen as [outer, len, inner] holds outer·inner
 * vectors of `len` elements (stride `inner`). Flattened = [1, n, 1]; the rows of a matrix =
 * [rows, cols, 1]; its columns = [1, rows, cols].
 */
export interface VectorLayout {
  readonly outer: number;
  readonly len: number;
  readonly inner: number;
}

/** The layout whose vectors run along dimension `dim` of `shape` (a 0-d or 1-d tensor is one vector). */
export function layoutAlong(shape: readonly number[], dim: number): VectorLayout {
  if (shape.length <= 1) return { outer: 1, len: shape[0] ?? 1, inner: 1 };
  const d = dim < 0 ? shape.length + dim : dim;
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < d; i++) outer *= shape[i] ?? 1;
  for (let i = d + 1; i < shape.length; i++) inner *= shape[i] ?? 1;
  return { outer, len: shape[d] ?? 1, inner };
}

export function flatLayout(count: number): VectorLayout {
  return { outer: 1, len: count, inner: 1 };
}

/**
 * Calls fn(j0, j1, vec0, step) over maximal runs of [start, end) in which element j belongs to
 * vector vec0 + step·(j − j0): step 0 when vectors are contiguous (inner = 1), else 1.
 */
export function forEachRun(
  len: number,
  inner: number,
  start: number,
  end: number,
  fn: (j0: number, j1: number, vec0: number, step: 0 | 1) => void,
): void {
  let j = start;
  if (inner === 1) {
    while (j < end) {
      const o = Math.floor(j / len);
      const j1 = Math.min(end, (o + 1) * len);
      fn(j, j1, o, 0);
      j = j1;
    }
    return;
  }
  while (j < end) {
    const line = Math.floor(j / inner);
    const o = Math.floor(line / len);
    const i0 = j - line * inner;
    const j1 = Math.min(end, (line + 1) * inner);
    fn(j, j1, o * inner + i0, 1);
    j = j1;
  }
}
