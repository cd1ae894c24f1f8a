import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
import { layerMacs } from '../flops';
import type { Linear, ModelStructure } from '../structure/types';

/** Squared L2 norm of every row and every column of a 2-D (or [h, d, D]) weight, in [in, out] terms. */
function norms(ix: GraphIndex, weight: string, transposed: boolean): { rows: Float64Array; cols: Float64Array } {
  const t = ix.constant(weight)!;
  const w = tensorFloat32(t, ix.ext);
  const dims = tensorShape(t);
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

function sumRange(a: Float64Array, start: number, n: number): number {
  let s = 0;
  for (let i = start; i < start + n; i++) s += a[i]!;
  return s;
}

/**
 * Weight-magnitude importance, the baseline OPTIN is compared with: per head the L2 norm of its
 * Q/K/V columns and output-projection rows together, per neuron the norm of its first-matrix column
 * times the norm of its second-matrix row. Heads and neurons are then put on one scale by making
 * their mean importance per MAC equal, so the global search trades them off neutrally.
 */
export function magnitudeScores(model: OnnxModel, st: ModelStructure, seqLen: number): { heads: number[][]; neurons: number[][] } {
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const heads = st.layers.map((l) => {
    const a = l.attention, H = a.heads, dq = a.headSize, dv = a.vHeadSize;
    const o = norms(ix, a.output.weight, a.output.transposed).rows;
    const per = new Float64Array(H);
    const addCols = (lin: Linear, size: number, offset = 0): void => {
      const c = norms(ix, lin.weight, lin.transposed).cols;
      for (let h = 0; h < H; h++) per[h] = per[h]! + sumRange(c, offset + h * size, size);
    };
    const q = a.qkv;
    if (q.kind === 'separate' || q.kind === 'mha') { addCols(q.q, dq); addCols(q.k, dq); addCols(q.v, dv); }
    else if (q.kind === 'packed') {
      const c = norms(ix, q.qkv.weight, q.qkv.transposed).cols;
      for (let h = 0; h < H; h++) {
        per[h] = per[h]! + (q.order === 'qkv-heads' ? [0, 1, 2].reduce((s, p) => s + sumRange(c, p * H * dq + h * dq, dq), 0) : sumRange(c, h * 3 * dq, 3 * dq));
      }
    } else {
      const c = norms(ix, q.weight, false).cols;
      const [qh, kh] = q.qkvHiddenSizes;
      for (let h = 0; h < H; h++) per[h] = per[h]! + sumRange(c, h * dq, dq) + sumRange(c, qh + h * dq, dq) + sumRange(c, qh + kh + h * dv, dv);
    }
    return Array.from(per, (s, h) => Math.sqrt(s + sumRange(o, h * dv, dv)));
  });
  const neurons = st.layers.map((l) => {
    if (!l.ffn) return [];
    const up = norms(ix, l.ffn.up.weight, l.ffn.up.transposed).cols;
    const down = norms(ix, l.ffn.down.weight, l.ffn.down.transposed).rows;
    return Array.from(up, (u, j) => Math.sqrt(u) * Math.sqrt(down[j]!));
  });
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
