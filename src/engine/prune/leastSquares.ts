/**
 * Solve (G + lambda I) s = c + lambda * 1 for symmetric positive semi-definite G (k x k, row-major,
 * float64) by Cholesky; lambda = ridge * mean(diag G). Returns undefined when the system is singular.
 */
export function ridgeTowardOne(G: Float64Array, c: Float64Array, k: number, ridge: number): Float64Array | undefined {
  let tr = 0;
  for (let i = 0; i < k; i++) tr += G[i * k + i]!;
  const lambda = ridge * Math.max(tr / k, 1e-30);
  const L = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = G[i * k + j]! + (i === j ? lambda : 0);
      for (let p = 0; p < j; p++) s -= L[i * k + p]! * L[j * k + p]!;
      if (i === j) {
        if (!(s > 0)) return undefined;
        L[i * k + i] = Math.sqrt(s);
      } else L[i * k + j] = s / L[j * k + j]!;
    }
  }
  const y = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = c[i]! + lambda;
    for (let p = 0; p < i; p++) s -= L[i * k + p]! * y[p]!;
    y[i] = s / L[i * k + i]!;
  }
  const x = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let p = i + 1; p < k; p++) s -= L[p * k + i]! * x[p]!;
    x[i] = s / L[i * k + i]!;
  }
  return x;
}

/** Residual sum of squares ||sum_e s_e A_e - r||^2 from the normal-equation terms. */
export function residual(G: Float64Array, c: Float64Array, rr: number, s: ArrayLike<number>, k: number): number {
  let q = 0, lin = 0;
  for (let i = 0; i < k; i++) {
    lin += s[i]! * c[i]!;
    for (let j = 0; j < k; j++) q += s[i]! * G[i * k + j]! * s[j]!;
  }
  return q - 2 * lin + rr;
}
