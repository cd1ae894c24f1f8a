import type { EncoderLayer, ModelStructure } from '../structure/types';

/**
 * The rows a sublayer's least-squares solve reads: `perItem` positions per row of the batch axis,
 * the output `width`, and (staged models) `count`, every row of the solve: window attention reads
 * windows x window positions (padding included), the MLP every position, each at the layer's own
 * width. Without `count` the solve reads the batch's real tokens.
 */
export function solveRows(st: ModelStructure, l: EncoderLayer, part: 'attention' | 'ffn', batch: { batch: number; seqLen: number }): { perItem: number; width: number; count?: number } {
  const x = l.shape;
  if (!x) return { perItem: batch.seqLen, width: st.hidden };
  const attention = part === 'attention';
  return { perItem: attention ? x.queries / x.windows : x.tokens, width: x.hidden, count: batch.batch * (attention ? x.queries : x.tokens) };
}

/**
 * Solve (A + lambda I) X = R for symmetric positive semi-definite A (k x k, row-major, float64) and
 * `cols` right-hand sides by Cholesky, lambda = ridge * mean(diag A); R's entries may use lambda
 * (a ridge toward a prior: R = B + lambda * prior). Returns X (k x cols, row-major), or undefined
 * when the system is singular.
 */
function ridgeSolve(A: Float64Array, k: number, ridge: number, cols: number, rhs: (i: number, col: number, lambda: number) => number): Float64Array | undefined {
  let tr = 0;
  for (let i = 0; i < k; i++) tr += A[i * k + i]!;
  const lambda = ridge * Math.max(tr / k, 1e-30);
  const L = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * k + j]! + (i === j ? lambda : 0);
      for (let p = 0; p < j; p++) s -= L[i * k + p]! * L[j * k + p]!;
      if (i === j) {
        if (!(s > 0)) return undefined;
        L[i * k + i] = Math.sqrt(s);
      } else L[i * k + j] = s / L[j * k + j]!;
    }
  }
  const X = new Float64Array(k * cols);
  const y = new Float64Array(k);
  for (let c = 0; c < cols; c++) {
    for (let i = 0; i < k; i++) {
      let s = rhs(i, c, lambda);
      for (let p = 0; p < i; p++) s -= L[i * k + p]! * y[p]!;
      y[i] = s / L[i * k + i]!;
    }
    for (let i = k - 1; i >= 0; i--) {
      let s = y[i]!;
      for (let p = i + 1; p < k; p++) s -= L[p * k + i]! * X[p * cols + c]!;
      X[i * cols + c] = s / L[i * k + i]!;
    }
  }
  return X;
}

/**
 * Solve (G + lambda I) s = c + lambda * 1 for symmetric positive semi-definite G (k x k, row-major,
 * float64) by Cholesky; lambda = ridge * mean(diag G). Returns undefined when the system is singular.
 */
export function ridgeTowardOne(G: Float64Array, c: Float64Array, k: number, ridge: number): Float64Array | undefined {
  return ridgeSolve(G, k, ridge, 1, (i, _c, lambda) => c[i]! + lambda);
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

/** A layer-wise least-squares problem: rows of inputs x (features) and targets y (outputs), weights starting at w0/b0. */
export interface FitProblem {
  rows: number;
  features: number;
  outputs: number;
  /** Also fit one bias per output (a constant feature). */
  bias: boolean;
  /** Write row r's features into `out` (length `features`). */
  row(r: number, out: Float64Array): void;
  y(r: number, o: number): number;
  w0(f: number, o: number): number;
  b0(o: number): number;
}

/** Solution of {@link fitRows}: weights [features, outputs], biases, squared errors before and after. */
export interface Fit {
  weights: Float64Array;
  bias?: Float64Array;
  before: number;
  after: number;
  rejected?: string;
}

/** The normal equations of a {@link FitProblem}: A = x^T x, B = x^T y (float64; a bias adds a constant feature) and y^T y. */
export interface NormalEquations {
  A: Float64Array;
  B: Float64Array;
  yy: number;
}

/** The normal equations summed row by row in JavaScript (float64). */
export function normalEquations(p: FitProblem): NormalEquations {
  const F = p.features + (p.bias ? 1 : 0), M = p.outputs;
  const A = new Float64Array(F * F), B = new Float64Array(F * M);
  const v = new Float64Array(F);
  const yo = new Float64Array(M);
  let yy = 0;
  for (let r = 0; r < p.rows; r++) {
    p.row(r, v);
    if (p.bias) v[F - 1] = 1;
    for (let o = 0; o < M; o++) { yo[o] = p.y(r, o); yy += yo[o]! * yo[o]!; }
    for (let i = 0; i < F; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      for (let j = 0; j <= i; j++) A[i * F + j] = A[i * F + j]! + vi * v[j]!;
      for (let o = 0; o < M; o++) B[i * M + o] = B[i * M + o]! + vi * yo[o]!;
    }
  }
  for (let i = 0; i < F; i++) for (let j = 0; j < i; j++) A[j * F + i] = A[i * F + j]!;
  return { A, B, yy };
}

/** Starting weights [F, M] (features, then the bias row when there is one). */
function startWeights(p: FitProblem, F: number): Float64Array {
  const M = p.outputs;
  const W = new Float64Array(F * M);
  for (let f = 0; f < F; f++) for (let o = 0; o < M; o++) W[f * M + o] = p.bias && f === F - 1 ? p.b0(o) : p.w0(f, o);
  return W;
}

/**
 * The same ridge problem as {@link fitRows} in its dual form, for fewer rows than features (deep
 * layers of a small calibration batch): [W; b] = [w0; b0] + x~^T (x~ x~^T + lambda I)^-1 (y - x~ [w0; b0])
 * with x~ = [x, 1], an n x n solve instead of F x F. The residual after it is lambda z (z the
 * solution), so the error needs no second pass.
 */
function fitDual(p: FitProblem): Fit {
  const F = p.features + (p.bias ? 1 : 0), M = p.outputs, n = p.rows;
  const X = new Float64Array(n * F);
  const v = new Float64Array(F);
  let trace = 0;
  for (let r = 0; r < n; r++) {
    p.row(r, v);
    if (p.bias) v[F - 1] = 1;
    X.set(v, r * F);
    for (let f = 0; f < F; f++) trace += v[f]! * v[f]!;
  }
  const lambda = 1e-3 * Math.max(trace / F, 1e-30);
  const W0 = startWeights(p, F);
  const R = new Float64Array(n * M);
  let before = 0;
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < M; o++) {
      let acc = p.y(r, o);
      for (let f = 0; f < F; f++) acc -= X[r * F + f]! * W0[f * M + o]!;
      R[r * M + o] = acc;
      before += acc * acc;
    }
  }
  const K = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let acc = 0;
      for (let f = 0; f < F; f++) acc += X[i * F + f]! * X[j * F + f]!;
      K[i * n + j] = acc;
      K[j * n + i] = acc;
    }
    K[i * n + i] = K[i * n + i]! + lambda;
  }
  const Z = ridgeSolve(K, n, 0, M, (i, o) => R[i * M + o]!);
  if (!Z) return { weights: new Float64Array(0), before, after: before, rejected: 'singular system' };
  let after = 0;
  for (const z of Z) after += lambda * lambda * z * z;
  const W = W0;
  for (let r = 0; r < n; r++) for (let f = 0; f < F; f++) {
    const x = X[r * F + f]!;
    if (x === 0) continue;
    for (let o = 0; o < M; o++) W[f * M + o] = W[f * M + o]! + x * Z[r * M + o]!;
  }
  const weights = W.subarray(0, p.features * M);
  const bias = p.bias ? W.subarray(p.features * M) : undefined;
  if (!(after < before)) return { weights, ...(bias ? { bias } : {}), before, after: before, rejected: 'no lower error' };
  return { weights, ...(bias ? { bias } : {}), before, after };
}

/**
 * min ||y - x W - b||^2 + lambda ||[W; b] - [w0; b0]||^2 with lambda = 1e-3 x mean(diag x^T x), by
 * Cholesky on the normal equations (float64; summed by `sums`, default {@link normalEquations}),
 * or in the dual form when there are fewer rows than features ({@link fitDual}); rejected when
 * singular or not better than (w0, b0).
 */
export async function fitRows(p: FitProblem, sums: (p: FitProblem) => NormalEquations | Promise<NormalEquations> = normalEquations): Promise<Fit> {
  const F = p.features + (p.bias ? 1 : 0), M = p.outputs;
  if (p.rows < F) return fitDual(p);
  const { A, B, yy } = await sums(p);
  const W0 = startWeights(p, F);
  const w = new Float64Array(F);
  /** ||y - x~ W||^2 from the normal equations, output by output. */
  const err = (W: ArrayLike<number>): number => {
    let q = yy;
    for (let o = 0; o < M; o++) {
      for (let i = 0; i < F; i++) w[i] = W[i * M + o]!;
      for (let i = 0; i < F; i++) {
        const wi = w[i]!;
        if (wi === 0) continue;
        let s = 0;
        const row = i * F;
        for (let j = 0; j < F; j++) s += A[row + j]! * w[j]!;
        q += wi * s - 2 * wi * B[i * M + o]!;
      }
    }
    return q;
  };
  const before = err(W0);
  const X = ridgeSolve(A, F, 1e-3, M, (i, o, lambda) => B[i * M + o]! + lambda * W0[i * M + o]!);
  if (!X) return { weights: new Float64Array(0), before, after: before, rejected: 'singular system' };
  const after = err(X);
  const weights = X.subarray(0, p.features * M);
  const bias = p.bias ? X.subarray(p.features * M) : undefined;
  if (!(after < before)) return { weights, ...(bias ? { bias } : {}), before, after: before, rejected: 'no lower error' };
  return { weights, ...(bias ? { bias } : {}), before, after };
}
