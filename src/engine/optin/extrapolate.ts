import type { RawLosses } from './types';

/** What fast mode knows about one layer's neurons when it extrapolates their losses to the whole batch. */
export interface LayerEvidence {
  /** Losses measured on the example subset (a cut-short trajectory has kl 0 where it no longer reaches the output). */
  sub: RawLosses;
  /** Per neuron: mean squared activation over the whole batch's real tokens times the squared norm of its row of the second matrix. */
  energyAll: ArrayLike<number>;
  /** The same over the subset's real tokens. */
  energySub: ArrayLike<number>;
  /** Exact losses (whole batch, whole trajectory) of the layer's reference neurons, by neuron index. */
  refs: Map<number, { md: number; kl: number }>;
}

/** Shrinkage of the measured sensitivities, per term (0: energy alone, 1: the subset's ratio unchanged). */
export interface ExtrapolationFit {
  md: number;
  kl: number;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Whole-batch, whole-trajectory neuron losses from subset measurements (docs/method.md, "Fast
 * mode"). A neuron's loss is about quadratic in the change it makes, activation j times row j of
 * the second matrix, so loss_j ≈ energy_j × sensitivity_j. The energy over the whole batch is
 * cheap (one dense run); the sensitivity is measured on the subset (loss / subset energy) and is
 * noisy when the subset is small. Per term, in logs: log(loss / energyAll) = b_layer + a log(sub /
 * energySub), with one slope a in [0, 1] fitted by least squares on the reference neurons of all
 * layers (within layers) and one offset per layer, which also maps a cut-short trajectory onto the
 * whole one. Reference neurons keep their exact losses; a neuron with no activation on the whole
 * batch loses nothing.
 */
export function extrapolateLosses(layers: LayerEvidence[]): { raw: RawLosses[]; fit: ExtrapolationFit } {
  const out: RawLosses[] = layers.map((e) => ({ md: new Array<number>(e.sub.md.length).fill(0), kl: new Array<number>(e.sub.md.length).fill(0) }));
  const fit: ExtrapolationFit = { md: 1, kl: 1 };
  for (const term of ['md', 'kl'] as const) {
    const z = layers.map((e) => {
      const from = term === 'kl' && e.sub.kl.some((x) => x > 0) ? e.sub.kl : e.sub.md;
      return from.map((x, j) => (x > 0 && e.energySub[j]! > 0 ? Math.log(x / e.energySub[j]!) : NaN));
    });
    const pairs = layers.map((e, l) => [...e.refs].flatMap(([j, r]) => (r[term] > 0 && e.energyAll[j]! > 0 && Number.isFinite(z[l]![j]!) ? [{ z: z[l]![j]!, y: Math.log(r[term] / e.energyAll[j]!) }] : [])));
    let sxy = 0, sxx = 0;
    for (const ps of pairs) {
      if (ps.length < 2) continue;
      const mz = mean(ps.map((p) => p.z)), my = mean(ps.map((p) => p.y));
      for (const p of ps) { sxy += (p.z - mz) * (p.y - my); sxx += (p.z - mz) ** 2; }
    }
    const a = sxx > 0 ? Math.min(1, Math.max(0, sxy / sxx)) : 1;
    fit[term] = a;
    const pooled = pairs.flat();
    if (!pooled.length) continue;
    const bAll = mean(pooled.map((p) => p.y - a * p.z));
    layers.forEach((e, l) => {
      // References that all lost nothing on this term (the last layer has no later features): neither do the others.
      if (!pairs[l]!.length && e.refs.size && [...e.refs.values()].every((r) => !(r[term] > 0))) return;
      const b = pairs[l]!.length ? mean(pairs[l]!.map((p) => p.y - a * p.z)) : bAll;
      const finite = z[l]!.filter(Number.isFinite);
      const zMean = finite.length ? mean(finite) : 0;
      out[l]![term] = z[l]!.map((zj, j) => {
        const E = e.energyAll[j]!;
        return E > 0 ? E * Math.exp(b + a * (Number.isFinite(zj) ? zj : zMean)) : 0;
      });
    });
  }
  layers.forEach((e, l) => { for (const [j, r] of e.refs) { out[l]!.md[j] = r.md; out[l]!.kl[j] = r.kl; } });
  return { raw: out, fit };
}
