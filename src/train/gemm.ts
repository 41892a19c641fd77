/**
 * The TypeScript twin of native/gemm.cc: C = (accumulate ? C : 0) + A·B with A[m, k] at
 * a[aOffset + m·sam + k·sak], B[k, n] at b[bOffset + k·ldb + n], C[m, n] at c[cOffset + m·ldc + n].
 * Each element sums k = 0, 1, … and rounds every product and every partial sum to f32, exactly as
 * the C++ does, so both give the same bytes.
 */
export interface GemmArgs {
  readonly a: Float32Array;
  readonly aOffset: number;
  readonly sam: number;
  readonly sak: number;
  readonly b: Float32Array;
  readonly bOffset: number;
  readonly ldb: number;
  readonly c: Float32Array;
  readonly cOffset: number;
  readonly ldc: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly accumulate: boolean;
}

export function gemmReference(g: GemmArgs): void {
  const { a, b, c, m, n, k } = g;
  const fround = Math.fround;
  for (let i = 0; i < m; i++) {
    const row = g.cOffset + i * g.ldc;
    if (!g.accumulate) c.fill(0, row, row + n);
    const arow = g.aOffset + i * g.sam;
    for (let kk = 0; kk < k; kk++) {
      const av = a[arow + kk * g.sak] ?? 0;
      const brow = g.bOffset + kk * g.ldb;
      // Float32Array stores round c + p to f32; p is rounded first, as in C++.
      for (let j = 0; j < n; j++) c[row + j] = (c[row + j] ?? 0) + fround(av * (b[brow + j] ?? 0));
    }
  }
}
