import { OptinError } from '../errors';
import type { MacTerm } from '../channels/macs';
import { groupMacs, growthMacs, termsMacs, termsOf } from '../channels/macs';
import type { LayerGeometry } from './schema';
import { macCosts } from './costs';
import { headPrefixes, neuronUnits, rankHeads, type SearchResult } from './search';

/** The channel side of a hybrid search: group widths, MAC terms and channel scores. */
export interface ChannelSide {
  widths: number[];
  terms: MacTerm[];
  scores: number[][];
}

type Unit = { kind: 'neuron' | 'channel'; l: number; idx: number[]; s: number };

/**
 * docs/method.md §3 over heads, neurons and channels together (hybrid models): for every n, keep
 * the top n heads, then every channel group's best block (a group never vanishes), then fill the
 * remaining MAC capacity with neuron and channel blocks (of `multipleOf` each) in one ranking (score per unit), taking
 * each block that still fits at the widths kept so far (channel MACs are products of kept widths);
 * keep the n with the largest total importance. Returns layers in the order transformer layers,
 * then channel groups.
 * @throws OptinError('usage') for a budget outside (0, 1] or one that fits no head and no channel per group
 */
export function searchHybrid(layers: LayerGeometry[], hidden: number, seqLen: number, heads: number[][], neurons: number[][], ch: ChannelSide, budget: number, multipleOf: { neurons: number; channels: number } = { neurons: 1, channels: 1 }): SearchResult {
  if (!(budget > 0 && budget <= 1)) throw new OptinError('usage', `budget ${budget} is outside (0, 1]; it is the fraction of MACs to keep (0.6 = keep 60% of MACs)`);
  for (const m of [multipleOf.neurons, multipleOf.channels]) {
    if (!(Number.isInteger(m) && m >= 1)) throw new OptinError('usage', `--multiple-of must be a whole number >= 1, got ${m}`);
  }
  const costs = macCosts(layers, hidden, seqLen);
  const tBase = layers.reduce((a, g, l) => a + costs.head(l, g.heads) + costs.neuron(l, g.ffn), 0);
  const baseline = tBase + termsMacs(ch.terms, ch.widths);
  const cap = budget * baseline * (1 + 1e-12);
  const byGroup = ch.widths.map((_, l) => termsOf(ch.terms, l));
  const cUnits = neuronUnits(ch.scores, multipleOf.channels).map((u): Unit => ({ kind: 'channel', ...u }));
  const firstOf = new Set(ch.widths.map((_, l) => cUnits.findIndex((u) => u.l === l)).filter((i) => i >= 0));
  const first = [...firstOf].map((i) => cUnits[i]!);
  const rest = [
    ...neuronUnits(neurons, multipleOf.neurons, layers.map((g) => g.neuronBlock)).map((u): Unit => ({ kind: 'neuron', ...u })),
    ...cUnits.filter((_, i) => !firstOf.has(i)),
  ].sort((a, b) => b.s / b.idx.length - a.s / a.idx.length || (a.kind === b.kind ? 0 : a.kind === 'neuron' ? -1 : 1) || a.l - b.l);
  const hs = rankHeads(heads);

  /** Greedy fill at a head cost: the units taken and their importance. */
  const fill = (hCost: number): { taken: Unit[]; importance: number; cost: number; nKept: number[]; cKept: number[] } | undefined => {
    const nKept = layers.map(() => 0), cKept = ch.widths.map(() => 0);
    const delta = (u: Unit): number => {
      if (u.kind === 'neuron') return costs.neuron(u.l, nKept[u.l]! + u.idx.length) - costs.neuron(u.l, nKept[u.l]!);
      return growthMacs(byGroup[u.l]!, u.l, u.idx.length, cKept);
    };
    const taken: Unit[] = [];
    let cost = hCost, importance = 0;
    const take = (u: Unit, d: number): void => {
      cost += d;
      importance += u.s;
      if (u.kind === 'neuron') nKept[u.l]! += u.idx.length;
      else cKept[u.l]! += u.idx.length;
      taken.push(u);
    };
    for (const u of first) take(u, delta(u));
    if (cost > cap) return undefined;
    for (const u of rest) {
      const d = delta(u);
      if (cost + d <= cap) take(u, d);
    }
    return { taken, importance, cost, nKept, cKept };
  };

  let best: { n: number; importance: number } | undefined;
  for (const { n, cost: hCost, score: hScore } of headPrefixes(hs, layers.length, costs)) {
    if (hCost > cap) break;
    const f = fill(hCost);
    if (!f) break;
    if (!best || hScore + f.importance > best.importance) best = { n, importance: hScore + f.importance };
  }
  if (!best) throw new OptinError('usage', `budget ${budget} keeps less than one attention head and one channel per group; nothing valid to keep`);
  const keepH = layers.map((g) => new Array<boolean>(g.heads).fill(false));
  hs.slice(0, best.n).forEach((e) => { keepH[e.l]![e.i] = true; });
  const headCost = layers.reduce((a, _g, l) => a + costs.head(l, keepH[l]!.filter(Boolean).length), 0);
  const f = fill(headCost)!;
  const keepN = layers.map((g) => new Array<boolean>(g.ffn).fill(false));
  const keepC = ch.widths.map((w) => new Array<boolean>(w).fill(false));
  for (const u of f.taken) for (const j of u.idx) (u.kind === 'neuron' ? keepN : keepC)[u.l]![j] = true;
  const tLayer = layers.map((_, l) => costs.head(l, keepH[l]!.filter(Boolean).length) + costs.neuron(l, f.nKept[l]!));
  const cLayer = groupMacs(ch.terms, f.cKept);
  const perLayerMacs = [...tLayer, ...cLayer];
  return {
    heads: [...keepH, ...ch.widths.map(() => [])], neurons: [...keepN, ...keepC], baseline,
    kept: perLayerMacs.reduce((a, b) => a + b, 0), importance: best.importance, perLayerMacs,
  };
}
