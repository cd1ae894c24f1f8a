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
 * OPTIN.md section 3: rank heads and neurons globally by score; for every n = 1..L*H keep the top
 * n heads, fill the remaining MAC capacity with neurons in rank order, and keep the n with the
 * largest total importance.
 * @throws OptinError('usage') for a budget outside (0, 1] or a budget that fits not even one head
 */
export function searchMasks(layers: LayerGeometry[], hidden: number, seqLen: number, heads: number[][], neurons: number[][], budget: number): SearchResult {
  if (!(budget > 0 && budget <= 1)) throw new OptinError('usage', `budget ${budget} is outside (0, 1]; it is the fraction of MACs to keep (0.6 = keep 60% of MACs)`);
  const hm = layers.map((g) => headMacs(seqLen, hidden, g.headSize, g.vHeadSize));
  const nm = neuronMacs(seqLen, hidden);
  const baseline = layers.reduce((a, g, l) => a + g.heads * hm[l]! + g.ffn * nm, 0);
  const capacity = budget * baseline;
  const hs = heads.flatMap((row, l) => row.map((s, h) => ({ l, i: h, s }))).sort((a, b) => b.s - a.s || a.l - b.l || a.i - b.i);
  const ns = neurons.flatMap((row, l) => row.map((s, j) => ({ l, i: j, s }))).sort((a, b) => b.s - a.s || a.l - b.l || a.i - b.i);
  const nPrefix = [0];
  for (const n of ns) nPrefix.push(nPrefix[nPrefix.length - 1]! + n.s);
  let best = { n: -1, neurons: 0, importance: -Infinity };
  let hCost = 0;
  let hScore = 0;
  for (let n = 1; n <= hs.length; n++) {
    const e = hs[n - 1]!;
    hCost += hm[e.l]!;
    hScore += e.s;
    if (hCost > capacity * (1 + 1e-12)) break;
    const k = Math.min(ns.length, Math.floor((capacity - hCost) / nm + 1e-9));
    const importance = hScore + nPrefix[k]!;
    if (importance > best.importance) best = { n, neurons: k, importance };
  }
  if (best.n < 0) throw new OptinError('usage', `budget ${budget} keeps less than one attention head; nothing valid to keep`);
  const keepH = layers.map((g) => new Array<boolean>(g.heads).fill(false));
  const keepN = layers.map((g) => new Array<boolean>(g.ffn).fill(false));
  hs.slice(0, best.n).forEach((e) => { keepH[e.l]![e.i] = true; });
  ns.slice(0, best.neurons).forEach((e) => { keepN[e.l]![e.i] = true; });
  const perLayerMacs = layers.map((_, l) => keepH[l]!.filter(Boolean).length * hm[l]! + keepN[l]!.filter(Boolean).length * nm);
  return { heads: keepH, neurons: keepN, baseline, kept: perLayerMacs.reduce((a, b) => a + b, 0), importance: best.importance, perLayerMacs };
}
