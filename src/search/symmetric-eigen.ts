/**
 * Eigendecomposition of a real symmetric matrix, for CMA-ES's B and D: Householder reduction to
 * tridiagonal form, then implicit symmetric QR steps with Wilkinson shifts and deflation
 * (Golub & Van Loan, Matrix Computations, §8.3). About 3n³ flops plus a few n² per QR step: a
 * 150×150 matrix takes milliseconds, where cyclic Jacobi took a hundred.
 */

/**
 * Eigenvalues (ascending) and eigenvectors (as columns of a row-major n×n matrix, in the same
 * order) of the symmetric matrix `a` (row-major n×n; only its symmetric part is meaningful).
 */
export function symmetricEigen(a: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: expected ${n * n} entries, got ${a.length}`);
  const A = Float64Array.from(a);
  const Q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) Q[i * n + i] = 1;
  const diag = new Float64Array(n);
  const off = new Float64Array(Math.max(0, n - 1));
  tridiagonalize(A, Q, n, diag, off);
  implicitQr(diag, off, Q, n);
  const order = [...Array(n).keys()].sort((i, j) => (diag[i] ?? 0) - (diag[j] ?? 0) || i - j);
  const values = Float64Array.from(order, (i) => diag[i] ?? 0);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors[k * n + dst] = Q[k * n + src] ?? 0;
  });
  return { values, vectors };
}

/**
 * Householder reflections H = I − 2vvᵀ zero column k below the subdiagonal, for k = 0..n−3.
 * A ends tridiagonal (copied into diag / off) and Q = H₀H₁…, so that a = Q·T·Qᵀ.
 */
function tridiagonalize(A: Float64Array, Q: Float64Array, n: number, diag: Float64Array, off: Float64Array): void {
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const m = n - k - 1; // length of the column below the diagonal
    let norm2 = 0;
    for (let j = 0; j < m; j++) norm2 += (A[(k + 1 + j) * n + k] ?? 0) ** 2;
    if (norm2 === 0) continue;
    const x0 = A[(k + 1) * n + k] ?? 0;
    const alpha = x0 > 0 ? -Math.sqrt(norm2) : Math.sqrt(norm2);
    let vnorm2 = 0;
    for (let j = 0; j < m; j++) {
      const x = A[(k + 1 + j) * n + k] ?? 0;
      const vj = j === 0 ? x - alpha : x;
      v[j] = vj;
      vnorm2 += vj * vj;
    }
    if (vnorm2 === 0) continue;
    const inv = 1 / Math.sqrt(vnorm2);
    for (let j = 0; j < m; j++) v[j] = (v[j] ?? 0) * inv;
    // Trailing block S ← H·S·H = S − 2v·wᵀ − 2w·vᵀ with p = S·v, w = p − (vᵀp)·v.
    let K = 0;
    for (let i = 0; i < m; i++) {
      let s = 0;
      const row = (k + 1 + i) * n + k + 1;
      for (let j = 0; j < m; j++) s += (A[row + j] ?? 0) * (v[j] ?? 0);
      p[i] = s;
      K += (v[i] ?? 0) * s;
    }
    for (let i = 0; i < m; i++) p[i] = (p[i] ?? 0) - K * (v[i] ?? 0);
    for (let i = 0; i < m; i++) {
      const row = (k + 1 + i) * n + k + 1;
      const vi = v[i] ?? 0;
      const wi = p[i] ?? 0;
      for (let j = 0; j < m; j++) A[row + j] = (A[row + j] ?? 0) - 2 * (vi * (p[j] ?? 0) + wi * (v[j] ?? 0));
    }
    // Column and row k: H·x = alpha·e₁.
    for (let j = 0; j < m; j++) {
      const val = j === 0 ? alpha : 0;
      A[(k + 1 + j) * n + k] = val;
      A[k * n + k + 1 + j] = val;
    }
    // Q ← Q·H.
    for (let i = 0; i < n; i++) {
      const row = i * n + k + 1;
      let t = 0;
      for (let j = 0; j < m; j++) t += (Q[row + j] ?? 0) * (v[j] ?? 0);
      t *= 2;
      for (let j = 0; j < m; j++) Q[row + j] = (Q[row + j] ?? 0) - t * (v[j] ?? 0);
    }
  }
  for (let i = 0; i < n; i++) diag[i] = A[i * n + i] ?? 0;
  for (let i = 0; i < n - 1; i++) off[i] = A[i * n + i + 1] ?? 0;
}

/**
 * Diagonalizes the tridiagonal (diag, off) in place by implicit QR steps with a Wilkinson shift
 * on the lowest unreduced block, chasing the bulge with Givens rotations; rotations accumulate
 * into the columns of Q.
 */
function implicitQr(diag: Float64Array, off: Float64Array, Q: Float64Array, n: number): void {
  const eps = Number.EPSILON;
  let hi = n - 1;
  let steps = 0;
  const maxSteps = 50 * Math.max(1, n);
  while (hi > 0 && steps < maxSteps) {
    for (let i = 0; i < hi; i++) {
      if (Math.abs(off[i] ?? 0) <= eps * (Math.abs(diag[i] ?? 0) + Math.abs(diag[i + 1] ?? 0))) off[i] = 0;
    }
    if ((off[hi - 1] ?? 0) === 0) {
      hi--;
      continue;
    }
    let lo = hi - 1;
    while (lo > 0 && (off[lo - 1] ?? 0) !== 0) lo--;
    qrStep(diag, off, Q, n, lo, hi);
    steps++;
  }
}

function qrStep(a: Float64Array, b: Float64Array, Q: Float64Array, n: number, lo: number, hi: number): void {
  const d = ((a[hi - 1] ?? 0) - (a[hi] ?? 0)) / 2;
  const bb = b[hi - 1] ?? 0;
  const mu = (a[hi] ?? 0) - (bb * bb) / (d + (d >= 0 ? 1 : -1) * Math.hypot(d, bb));
  let x = (a[lo] ?? 0) - mu;
  let z = b[lo] ?? 0;
  for (let k = lo; k < hi; k++) {
    const r = Math.hypot(x, z);
    const c = r === 0 ? 1 : x / r;
    const s = r === 0 ? 0 : z / r;
    if (k > lo) b[k - 1] = r;
    const ak = a[k] ?? 0;
    const ak1 = a[k + 1] ?? 0;
    const bk = b[k] ?? 0;
    a[k] = c * c * ak + 2 * c * s * bk + s * s * ak1;
    a[k + 1] = s * s * ak - 2 * c * s * bk + c * c * ak1;
    b[k] = c * s * (ak1 - ak) + (c * c - s * s) * bk;
    if (k < hi - 1) {
      const bk1 = b[k + 1] ?? 0;
      z = s * bk1; // the bulge at (k+2, k)
      b[k + 1] = c * bk1;
      x = b[k] ?? 0;
    }
    // Q ← Q·Gᵀ on columns k, k+1.
    for (let i = 0; i < n; i++) {
      const qk = Q[i * n + k] ?? 0;
      const qk1 = Q[i * n + k + 1] ?? 0;
      Q[i * n + k] = c * qk + s * qk1;
      Q[i * n + k + 1] = -s * qk + c * qk1;
    }
  }
}
