import { OptinError } from '../errors';
import type { LayerGeometry } from './schema';
import { macCosts, type CostModel } from './costs';

/** Result of the mask search. */
export interface SearchResult {
  heads: boolean[][];
  neurons: boolean[][];
  /** Cost of the full model's prunable part, and of what is kept (in the cost model's unit). */
  baseline: number;
  kept: number;
  importance: number;
  /** Kept cost per layer (heads + neurons). */
  perLayerMacs: number[];
}

/**
 * Neuron units of the search: single neurons, or with `multipleOf` N blocks of each layer's next N
 * best neurons (block score = their sum, the last block of a layer may be smaller so a full layer
 * stays reachable). Blocks of a layer have non-increasing scores, so ranking blocks globally keeps
 * a prefix of blocks per layer: every layer keeps a multiple of N (or all) of its neurons. A layer
 * with a `fixed` block size n instead has the aligned blocks j*n .. j*n+n-1 as units (block-quantized
 * weights), in order of their summed scores.
 */
export function neuronUnits(neurons: number[][], multipleOf: number, fixed: ReadonlyArray<number | undefined> = []): Array<{ l: number; b: number; idx: number[]; s: number }> {
  return neurons.flatMap((row, l) => {
    const n = fixed[l];
    const out: Array<{ l: number; b: number; idx: number[]; s: number }> = [];
    if (n) {
      const blocks = Array.from({ length: Math.ceil(row.length / n) }, (_, j) => Array.from({ length: Math.min(n, row.length - j * n) }, (_, k) => j * n + k));
      const scored = blocks.map((idx) => ({ idx, s: idx.reduce((x, j) => x + row[j]!, 0) })).sort((a, b) => b.s / b.idx.length - a.s / a.idx.length || a.idx[0]! - b.idx[0]!);
      scored.forEach((u, b) => out.push({ l, b, ...u }));
      return out;
    }
    const order = row.map((s, j) => ({ s, j })).sort((a, b) => b.s - a.s || a.j - b.j);
    for (let a = 0; a < order.length; a += multipleOf) {
      const part = order.slice(a, a + multipleOf);
      out.push({ l, b: out.length, idx: part.map((p) => p.j), s: part.reduce((x, p) => x + p.s, 0) });
    }
    return out;
  });
}

/** Every head ranked by score (ties: layer, then index). */
export function rankHeads(heads: number[][]): Array<{ l: number; i: number; s: number }> {
  return heads.flatMap((row, l) => row.map((s, h) => ({ l, i: h, s }))).sort((a, b) => b.s - a.s || a.l - b.l || a.i - b.i);
}

/** For n = 1, 2, ...: the cost and summed score of keeping the top n ranked heads. */
export function* headPrefixes(hs: Array<{ l: number; s: number }>, layers: number, costs: Pick<CostModel, 'head'>): Generator<{ n: number; cost: number; score: number }> {
  const taken = new Array<number>(layers).fill(0);
  let cost = 0, score = 0;
  for (let n = 1; n <= hs.length; n++) {
    const e = hs[n - 1]!;
    const c = taken[e.l]!;
    taken[e.l] = c + 1;
    cost += costs.head(e.l, c + 1) - costs.head(e.l, c);
    score += e.s;
    yield { n, cost, score };
  }
}

/**
 * docs/method.md §3: rank heads and neurons globally by score; for every n = 1..L*H keep the top
 * n heads, fill the remaining MAC capacity with neurons in rank order, and keep the n with the
 * largest total importance. With `multipleOf` N > 1 neurons are taken in per-layer blocks of N
 * (ranked by mean score), so kept widths are hardware-friendly by construction, not rounded after.
 * @throws OptinError('usage') for a budget outside (0, 1], a budget that fits not even one head, or a bad `multipleOf`
 */
export function searchMasks(layers: LayerGeometry[], hidden: number, seqLen: number, heads: number[][], neurons: number[][], budget: number, multipleOf = 1): SearchResult {
  if (!(budget > 0 && budget <= 1)) throw new OptinError('usage', `budget ${budget} is outside (0, 1]; it is the fraction of MACs to keep (0.6 = keep 60% of MACs)`);
  const costs = macCosts(layers, hidden, seqLen);
  const r = searchUnderCost(layers, heads, neurons, costs, (baseline) => budget * baseline, multipleOf);
  if (!r) throw new OptinError('usage', `budget ${budget} keeps less than one attention head; nothing valid to keep`);
  return r;
}

/**
 * The same search under any {@link CostModel}: `capacity(baseline)` is what may be spent on the
 * prunable part. Returns undefined when not even one head fits.
 * @throws OptinError('usage') for a bad `multipleOf`
 */
export function searchUnderCost(layers: LayerGeometry[], heads: number[][], neurons: number[][], costs: CostModel, capacity: (baseline: number) => number, multipleOf = 1): SearchResult | undefined {
  if (!(Number.isInteger(multipleOf) && multipleOf >= 1)) throw new OptinError('usage', `--multiple-of must be a whole number >= 1, got ${multipleOf}`);
  const baseline = layers.reduce((a, g, l) => a + costs.head(l, g.heads) + costs.neuron(l, g.ffn), 0);
  const cap = capacity(baseline);
  const hs = rankHeads(heads);
  const ns = neuronUnits(neurons, multipleOf, layers.map((g) => g.neuronBlock)).sort((a, b) => b.s / b.idx.length - a.s / a.idx.length || a.l - b.l || a.b - b.b);
  const nPrefix = [0], cPrefix = [0];
  const taken = layers.map(() => 0);
  for (const n of ns) {
    nPrefix.push(nPrefix[nPrefix.length - 1]! + n.s);
    if (costs.perNeuron !== undefined) cPrefix.push(cPrefix[cPrefix.length - 1]! + n.idx.length);
    else {
      const c = taken[n.l]!;
      taken[n.l] = c + n.idx.length;
      cPrefix.push(cPrefix[cPrefix.length - 1]! + costs.neuron(n.l, c + n.idx.length) - costs.neuron(n.l, c));
    }
  }
  /** Most units whose neurons fit in `room` (units are taken in rank order). */
  const fit = (room: number): number => {
    const most = costs.perNeuron !== undefined ? Math.floor(room / costs.perNeuron + 1e-9) : room * (1 + 1e-12);
    let lo = 0, hi = ns.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (cPrefix[mid]! <= most) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  let best = { n: -1, neurons: 0, importance: -Infinity };
  for (const { n, cost: hCost, score: hScore } of headPrefixes(hs, layers.length, costs)) {
    if (hCost > cap * (1 + 1e-12)) break;
    const k = fit(cap - hCost);
    const importance = hScore + nPrefix[k]!;
    if (importance > best.importance) best = { n, neurons: k, importance };
  }
  if (best.n < 0) return undefined;
  const keepH = layers.map((g) => new Array<boolean>(g.heads).fill(false));
  const keepN = layers.map((g) => new Array<boolean>(g.ffn).fill(false));
  hs.slice(0, best.n).forEach((e) => { keepH[e.l]![e.i] = true; });
  ns.slice(0, best.neurons).forEach((e) => { for (const j of e.idx) keepN[e.l]![j] = true; });
  const perLayerMacs = layers.map((_, l) => costs.head(l, keepH[l]!.filter(Boolean).length) + costs.neuron(l, keepN[l]!.filter(Boolean).length));
  return { heads: keepH, neurons: keepN, baseline, kept: perLayerMacs.reduce((a, b) => a + b, 0), importance: best.importance, perLayerMacs };
}
