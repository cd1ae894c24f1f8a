import type { EncoderLayer, ModelStructure } from './structure/types';

/**
 * MACs of one attention head at sequence length s (docs/method.md §3):
 * Q/K/V projections, QK^T and PV, and its rows of the output projection.
 * With dq = dv = d this is 3*s*D*d + 2*s^2*d + s*d*D; with window attention each of the s query
 * rows attends to `keys` keys (the window) instead of s. With grouped-query attention the unit is
 * a key/value head and the `group` query heads that share it: `dv` is then the context width of
 * the whole unit (group x the value head size) and the unit costs group x (Q columns, QK^T, PV,
 * output rows) plus one K and one V head.
 */
export function headMacs(s: number, hidden: number, dq: number, dv: number = dq, keys: number = s, group = 1, sharedKv = false): number {
  const dHead = dv / group;
  return s * hidden * (group * dq + (sharedKv ? 0 : dq + dHead)) + group * s * keys * (dq + dHead) + s * dv * hidden;
}

/** Multi-query attention: MACs of the shared key and value projections, paid while any query head is kept. */
export function sharedKvMacs(s: number, hidden: number, dq: number, dv: number): number {
  return s * hidden * (dq + dv);
}

/** MACs of one FFN neuron at sequence length s: 2*s*D (3*s*D for a gated FFN: gate, up and down). */
export function neuronMacs(s: number, hidden: number, gated = false): number {
  return (gated ? 3 : 2) * s * hidden;
}

/** Where a layer's MACs are counted: query rows, keys per query, positions and width. */
export interface MacGeometry {
  queries: number;
  keys: number;
  tokens: number;
  hidden: number;
}

/** A layer's measured geometry (staged models such as Swin), or the model-wide sequence length and width. */
export function macGeometry(shape: MacGeometry | undefined, s: number, hidden: number): MacGeometry {
  return shape ?? { queries: s, keys: s, tokens: s, hidden };
}

/**
 * MACs of one head (one key/value group with `group` > 1) and of one FFN neuron at a geometry;
 * with `sharedKv` (multi-query attention) `kv` is the shared K/V projections' fixed cost.
 */
export function unitMacs(g: MacGeometry, dq: number, dv: number, gated: boolean, group = 1, sharedKv = false): { head: number; neuron: number; kv: number } {
  return {
    head: headMacs(g.queries, g.hidden, dq, dv, g.keys, group, sharedKv), neuron: neuronMacs(g.tokens, g.hidden, gated),
    kv: sharedKv ? sharedKvMacs(g.queries, g.hidden, dq, dv) : 0,
  };
}

/** MACs of `k` kept heads: k per-head costs, plus the shared K/V projections while any is kept. */
export function keptHeadMacs(u: { head: number; kv: number }, k: number): number {
  return k * u.head + (k > 0 ? u.kv : 0);
}

/** MACs of one layer split into its heads and its FFN neurons. */
export interface LayerMacs {
  perHead: number;
  perNeuron: number;
  heads: number;
  ffn: number;
  total: number;
}

/** Per-layer and total MACs of the prunable parts (embeddings, norms, softmax, biases, classifier excluded). */
export interface MacReport {
  seqLen: number;
  layers: LayerMacs[];
  total: number;
}

/** MACs of one layer with `heads` heads and `neurons` FFN neurons kept (its measured shape, when it has one, replaces s and hidden). */
export function layerMacs(l: EncoderLayer, s: number, hidden: number, heads = l.attention?.heads ?? 0, neurons = l.ffn?.width ?? 0): LayerMacs {
  const a = l.attention;
  const u = unitMacs(macGeometry(l.shape, s, hidden), a?.headSize ?? 0, a?.vHeadSize ?? 0, !!l.ffn?.gate, a?.group, a?.sharedKv);
  const h = keptHeadMacs(u, heads);
  return { perHead: u.head, perNeuron: u.neuron, heads: h, ffn: neurons * u.neuron, total: h + neurons * u.neuron };
}

/** MAC model of a whole structure at sequence length s. */
export function modelMacs(st: ModelStructure, s: number): MacReport {
  const layers = st.layers.map((l) => layerMacs(l, s, st.hidden));
  return { seqLen: s, layers, total: layers.reduce((a, l) => a + l.total, 0) };
}
