/**
 * The two row layouts of rotary q/k projections. Meta's original Llama code (and llama2.c, and
 * llama.cpp's `llama` graph) rotates adjacent pairs (2i, 2i+1) of each head; Hugging Face's
 * checkpoints rotate the halves (i, i + D/2). Converting between them permutes the rows of each
 * head block of D rows: adjacent-pairs row h·D + 2i + j ↔ rotate-half row h·D + j·D/2 + i.
 * `values` holds whole heads: a multiple of headDim rows of `rowLength` values (rowLength 1 for
 * a bias vector).
 */

type Rows = Float32Array | Uint8Array;

function permute<T extends Rows>(values: T, headDim: number, rowLength: number, toPairs: boolean): T {
  if (headDim % 2 !== 0 || values.length % (headDim * rowLength) !== 0) {
    throw new RangeError(`rotary permutation: ${values.length} values are not whole heads of ${headDim} rows × ${rowLength}`);
  }
  const half = headDim / 2;
  const heads = values.length / (headDim * rowLength);
  const out = (values instanceof Float32Array ? new Float32Array(values.length) : new Uint8Array(values.length)) as T;
  for (let h = 0; h < heads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const pairsRow = (base + 2 * i + j) * rowLength;
        const halvesRow = (base + j * half + i) * rowLength;
        if (toPairs) out.set(values.subarray(halvesRow, halvesRow + rowLength), pairsRow);
        else out.set(values.subarray(pairsRow, pairsRow + rowLength), halvesRow);
      }
    }
  }
  return out;
}

/**
 * HF rotate-half rows → adjacent-pairs rows (what llama.cpp's llama graph expects). Works on f32
 * values or on raw bytes (then `rowLength` counts bytes).
 */
export function permuteRotaryRows<T extends Rows>(values: T, headDim: number, rowLength: number): T {
  return permute(values, headDim, rowLength, true);
}

/** Adjacent-pairs rows (Meta, llama2.c) → HF rotate-half rows; the inverse of permuteRotaryRows. */
export function unpermuteRotaryRows<T extends Rows>(values: T, headDim: number, rowLength: number): T {
  return permute(values, headDim, rowLength, false);
}
