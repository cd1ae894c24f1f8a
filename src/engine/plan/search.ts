import { OptinError } from '../errors';
import { headMacs, neuronMacs } from '../flops';
import type { LayerGeometry } from './schema';

/** Result of the mask search. */
export interface SearchResult {
  heads: boolean[][];
  neurons: boolean[][];
  baseline: number;
  kept: number;
  importance: number;
  perLayerMacs: number[];
}

/**
 * Neuron units of the search: single neurons, or with `multipleOf` N blocks of each layer's next N
 * best neurons (block score = their sum, the last block of a layer may be smaller so a full layer
 * stays reachable). Blocks of a layer have non-increasing scores, so ranking blocks globally keeps
 * a prefix of blocks per layer: every layer keeps a multiple of N (or all) of its neurons.
 */
function neuronUnits(neurons: number[][], multipleOf: number): Array<{ l: number; b: number; idx: number[]; s: number }> {
  return neurons.flatMap((row, l) => {
    const order = row.map((s, j) => ({ s, j })).sort((a, b) => b.s - a.s || a.j - b.j);
    const out: Array<{ l: number; b: number; idx: number[]; s: number }> = [];
    for (let a = 0; a < order.length; a += multipleOf) {
      const part = order.slice(a, a + multipleOf);
      out.push({ l, b: out.length, idx: part.map((p) => p.j), s: part.reduce((x, p) => x + p.s, 0) });
    }
    return out;
  });
}

/**
 * OPTIN.md section 3: rank heads and neurons globally by score; for every n = 1..L*H keep the top
 * n heads, fill the remaining MAC capacity with neurons in rank order, and keep the n with the
 * largest total importance. With `multipleOf` N > 1 neurons are taken in per-layer blocks of N
 * (ranked by mean score), so kept widths are hardware-friendly by construction, not rounded after.
 * @throws OptinError('usage') for a budget outside (0, 1], a budget that fits not even one head, or a bad `multipleOf`
 */
export function searchMasks(layers: LayerGeometry[], hidden: number, seqLen: number, heads: number[][], neurons: number[][], budget: number, multipleOf = 1): SearchResult {
  if (!(Number.isInteger(multipleOf) && multipleOf >= 1)) throw new OptinError('usage', `--multiple-of must be a whole number >= 1, got ${multipleOf}`);
  if (!(budget > 0 && budget <= 1)) throw new OptinError('usage', `budget ${budget} is outside (0, 1]; it is the fraction of MACs to keep (0.6 = keep 60% of MACs)`);
  const hm = layers.map((g) => headMacs(seqLen, hidden, g.headSize, g.vHeadSize));
  const nm = neuronMacs(seqLen, hidden);
  const baseline = layers.reduce((a, g, l) => a + g.heads * hm[l]! + g.ffn * nm, 0);
  const capacity = budget * baseline;
  const hs = heads.flatMap((row, l) => row.map((s, h) => ({ l, i: h, s }))).sort((a, b) => b.s - a.s || a.l - b.l || a.i - b.i);
  const ns = neuronUnits(neurons, multipleOf).sort((a, b) => b.s / b.idx.length - a.s / a.idx.length || a.l - b.l || a.b - b.b);
  const nPrefix = [0], cPrefix = [0];
  for (const n of ns) {
    nPrefix.push(nPrefix[nPrefix.length - 1]! + n.s);
    cPrefix.push(cPrefix[cPrefix.length - 1]! + n.idx.length);
  }
  /** Most units whose neurons fit in `room` MACs (units are taken in rank order). */
  const fit = (room: number): number => {
    const most = Math.floor(room / nm + 1e-9);
    let lo = 0, hi = ns.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (cPrefix[mid]! <= most) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  let best = { n: -1, neurons: 0, importance: -Infinity };
  let hCost = 0;
  let hScore = 0;
  for (let n = 1; n <= hs.length; n++) {
    const e = hs[n - 1]!;
    hCost += hm[e.l]!;
    hScore += e.s;
    if (hCost > capacity * (1 + 1e-12)) break;
    const k = fit(capacity - hCost);
    const importance = hScore + nPrefix[k]!;
    if (importance > best.importance) best = { n, neurons: k, importance };
  }
  if (best.n < 0) throw new OptinError('usage', `budget ${budget} keeps less than one attention head; nothing valid to keep`);
  const keepH = layers.map((g) => new Array<boolean>(g.heads).fill(false));
  const keepN = layers.map((g) => new Array<boolean>(g.ffn).fill(false));
  hs.slice(0, best.n).forEach((e) => { keepH[e.l]![e.i] = true; });
  ns.slice(0, best.neurons).forEach((e) => { for (const j of e.idx) keepN[e.l]![j] = true; });
  const perLayerMacs = layers.map((_, l) => keepH[l]!.filter(Boolean).length * hm[l]! + keepN[l]!.filter(Boolean).length * nm);
  return { heads: keepH, neurons: keepN, baseline, kept: perLayerMacs.reduce((a, b) => a + b, 0), importance: best.importance, perLayerMacs };
}
