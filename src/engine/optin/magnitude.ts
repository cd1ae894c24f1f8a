import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { floatWeight } from '../graph/nbits';
import { layerMacs } from '../flops';
import type { ModelStructure } from '../structure/types';
import { projectionCuts } from '../structure/headUnits';
import { keptEntries } from '../groups/entries';

/**
 * Squared L2 norm of every row and every column of a 2-D (or [h, d, D]) weight, in [in, out] terms.
 * @throws when the weight is not a float constant
 */
export function weightNorms(ix: GraphIndex, weight: string, transposed: boolean): { rows: Float64Array; cols: Float64Array } {
  const { data: w, dims } = floatWeight(ix, weight);
  const outF = transposed ? dims[0]! : dims[dims.length - 1]!;
  const inF = w.length / outF;
  const rows = new Float64Array(inF), cols = new Float64Array(outF);
  for (let i = 0; i < inF; i++) {
    for (let o = 0; o < outF; o++) {
      const x = transposed ? w[o * inF + i]! : w[i * outF + o]!;
      rows[i] = rows[i]! + x * x;
      cols[o] = cols[o]! + x * x;
    }
  }
  return { rows, cols };
}

/** Squared entries of a weight (rank >= 2; biases are not counted) summed per index of one axis. */
function alongAxis(ix: GraphIndex, name: string, axis: number): Float64Array | undefined {
  const { data: w, dims } = floatWeight(ix, name);
  if (dims.length < 2) return undefined;
  const n = dims[axis]!, inner = dims.slice(axis + 1).reduce((p, x) => p * x, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < w.length; i++) {
    const x = w[i]!;
    const j = Math.floor(i / inner) % n;
    out[j] = out[j]! + x * x;
  }
  return out;
}

function sumRange(a: Float64Array, start: number, n: number): number {
  let s = 0;
  for (let i = start; i < start + n; i++) s += a[i]!;
  return s;
}

/**
 * Weight-magnitude importance, the baseline OPTIN is compared with: per head the L2 norm of its
 * Q/K/V columns and output-projection rows together (per key/value group with grouped-query
 * attention), per neuron the norm of its first-matrix column (with its gate column, for gated FFNs)
 * times the norm of its second-matrix row; then {@link onOneScale}.
 */
export function magnitudeScores(model: OnnxModel, st: ModelStructure, seqLen: number): { heads: number[][]; neurons: number[][] } {
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const heads = st.layers.map((l) => {
    const a = l.attention;
    if (!a) return [];
    const H = a.heads, dv = a.vHeadSize;
    const o = weightNorms(ix, a.output.weight, a.output.transposed).rows;
    const per = new Float64Array(H);
    for (const c of projectionCuts(a)) {
      const along = alongAxis(ix, c.tensor, c.axis);
      if (!along) continue;
      for (let h = 0; h < H; h++) for (const i of keptEntries(c, H, [h])) per[h] = per[h]! + along[i]!;
    }
    return Array.from(per, (s, h) => Math.sqrt(s + sumRange(o, h * dv, dv)));
  });
  const neurons = st.layers.map((l) => {
    if (!l.ffn) return [];
    const up = weightNorms(ix, l.ffn.up.weight, l.ffn.up.transposed).cols;
    const gate = l.ffn.gate ? weightNorms(ix, l.ffn.gate.weight, l.ffn.gate.transposed).cols : undefined;
    const down = weightNorms(ix, l.ffn.down.weight, l.ffn.down.transposed).rows;
    return Array.from(up, (u, j) => Math.sqrt(u + (gate?.[j] ?? 0)) * Math.sqrt(down[j]!));
  });
  return onOneScale(st, seqLen, heads, neurons);
}

/**
 * Heads and neurons of a weight-based ranking put on one scale: heads rescaled so that their mean
 * importance per MAC equals the neurons', so the global search trades them off neutrally.
 */
export function onOneScale(st: ModelStructure, seqLen: number, heads: number[][], neurons: number[][]): { heads: number[][]; neurons: number[][] } {
  const macs = st.layers.map((l) => layerMacs(l, seqLen, st.hidden));
  const hCost = macs.reduce((s, m) => s + m.heads, 0);
  const nCost = macs.reduce((s, m) => s + m.ffn, 0);
  const hSum = heads.flat().reduce((a, b) => a + b, 0), nSum = neurons.flat().reduce((a, b) => a + b, 0);
  if (nSum > 0 && hSum > 0 && nCost > 0) {
    const f = (nSum / nCost) / (hSum / hCost);
    return { heads: heads.map((r) => r.map((x) => x * f)), neurons };
  }
  return { heads, neurons };
}
