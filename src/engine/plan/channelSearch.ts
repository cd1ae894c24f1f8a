import { OptinError } from '../errors';
import type { MacTerm } from '../channels/macs';
import { groupMacs, growthMacs, termsMacs, termsOf } from '../channels/macs';
import { neuronUnits, type SearchResult } from './search';

/**
 * How the budget is shared between channel groups: 'uniform' (every group keeps about the same
 * share, its best channels by score: the scores are turned into percentiles within each group) or
 * 'global' (the paper's one ranking over all channels, docs/method.md §3). With the repair, uniform
 * shares keep more accuracy (docs/cnn.md, "The choices behind the defaults").
 */
export type ChannelAllocation = 'uniform' | 'global';

/** Scores as percentiles within each group (1 = the group's best; ties: the lower index ranks higher). */
export function withinGroupPercentiles(scores: number[][]): number[][] {
  return scores.map((s) => {
    const order = s.map((x, j) => ({ x, j })).sort((a, b) => a.x - b.x || b.j - a.j);
    const pct = new Array<number>(s.length);
    order.forEach((o, r) => { pct[o.j] = (r + 1) / s.length; });
    return pct;
  });
}

/**
 * docs/method.md §3 for channel groups: channels ranked globally by score (in per-group blocks of
 * `multipleOf`), every group's best block kept first (a group never vanishes: its convolutions
 * would have no channel), then blocks taken in rank order while they fit the MAC budget. A block's
 * cost is exact at the widths kept so far: MACs are products of kept widths (a convolution that
 * reads one group and produces another), so costs are recomputed as widths grow.
 * @throws OptinError('usage') for a budget outside (0, 1] or one that cannot keep one channel per group
 */
export function searchChannels(widths: number[], terms: MacTerm[], scores: number[][], budget: number, multipleOf = 1, allocation: ChannelAllocation = 'global'): SearchResult {
  if (!(budget > 0 && budget <= 1)) throw new OptinError('usage', `budget ${budget} is outside (0, 1]; it is the fraction of MACs to keep (0.6 = keep 60% of MACs)`);
  if (!(Number.isInteger(multipleOf) && multipleOf >= 1)) throw new OptinError('usage', `--multiple-of must be a whole number >= 1, got ${multipleOf}`);
  const baseline = termsMacs(terms, widths);
  const cap = budget * baseline * (1 + 1e-12);
  const byGroup = widths.map((_, l) => termsOf(terms, l));
  const kept = widths.map(() => 0);
  /** Extra MACs of growing group l by n channels at the current widths (linear in l's own width). */
  const delta = (l: number, n: number): number => growthMacs(byGroup[l]!, l, n, kept);
  const units = neuronUnits(allocation === 'uniform' ? withinGroupPercentiles(scores) : scores, multipleOf);
  const first = new Set(widths.map((_, l) => units.findIndex((u) => u.l === l)));
  const keep = widths.map((w) => new Array<boolean>(w).fill(false));
  let cost = 0;
  let importance = 0;
  const take = (i: number): void => {
    const u = units[i]!;
    cost += delta(u.l, u.idx.length);
    kept[u.l]! += u.idx.length;
    for (const j of u.idx) { keep[u.l]![j] = true; importance += scores[u.l]![j]!; }
  };
  for (const i of first) if (i >= 0) take(i);
  if (cost > cap) throw new OptinError('usage', `budget ${budget} cannot keep even one channel block per group (${(cost / baseline).toFixed(3)} of the MACs is the least)`);
  const order = units.map((u, i) => ({ u, i })).filter((x) => !first.has(x.i)).sort((a, b) => b.u.s / b.u.idx.length - a.u.s / a.u.idx.length || a.u.l - b.u.l || a.u.b - b.u.b);
  for (const { u, i } of order) {
    if (cost + delta(u.l, u.idx.length) <= cap) take(i);
  }
  return { heads: widths.map(() => []), neurons: keep, baseline, kept: termsMacs(terms, kept), importance, perLayerMacs: groupMacs(terms, kept) };
}
