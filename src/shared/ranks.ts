/** Rank arithmetic on importance scores, shared by the engine's benchmarks, the extension and the webview. */

/**
 * Global rank (1 = most important) of every score across all rows; rows still unknown (undefined,
 * e.g. layers not scored yet) stay undefined. Ties keep layer/index order.
 */
export function importanceRanks<R extends number[] | undefined>(rows: R[]): R[] {
  const flat = rows.flatMap((r, l) => (r ?? []).map((s, i) => ({ l, i, s }))).sort((a, b) => b.s - a.s || a.l - b.l || a.i - b.i);
  const out = rows.map((r) => r?.map(() => 0)) as R[];
  flat.forEach((e, k) => { out[e.l]![e.i] = k + 1; });
  return out;
}

/** Spearman rank correlation of two equally long score lists (no tie correction; scores are continuous). */
export function spearman(a: number[], b: number[]): number {
  const rank = (x: number[]): number[] => {
    const r = new Array<number>(x.length);
    x.map((v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]).forEach(([, i], k) => { r[i] = k; });
    return r;
  };
  const ra = rank(a), rb = rank(b), n = a.length, mu = (n - 1) / 2;
  let s = 0, va = 0, vb = 0;
  for (let i = 0; i < n; i++) {
    s += (ra[i]! - mu) * (rb[i]! - mu);
    va += (ra[i]! - mu) ** 2;
    vb += (rb[i]! - mu) ** 2;
  }
  return s / Math.sqrt(va * vb);
}
