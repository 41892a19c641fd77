/** A row-major `rows` × `from` matrix as `rows` × `to` (to ≥ from): the new columns are zero. */
export function padColumns(w: Float32Array, rows: number, from: number, to: number): Float32Array {
  const grown = new Float32Array(rows * to);
  for (let r = 0; r < rows; r++) grown.set(w.subarray(r * from, (r + 1) * from), r * to);
  return grown;
}
