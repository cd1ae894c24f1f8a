import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { floatWeight } from '../graph/nbits';
import type { CalibrationBatch } from '../data/types';
import type { Linear, ModelStructure } from '../structure/types';
import { onOneScale } from './magnitude';
import { featureEnergies } from './activations';
import { projectionCuts } from '../structure/headUnits';
import { keptEntries } from '../groups/entries';

/** L2 norm of every feature (last axis) of the values over the batch's real tokens. */
async function featureNorms(model: OnnxModel, values: string[], batch: CalibrationBatch): Promise<Map<string, Float64Array>> {
  const { all } = await featureEnergies(model, values, batch);
  return new Map([...all].map(([v, e]) => [v, e.sums.map(Math.sqrt)]));
}

/** |W| weighted by its input feature's norm, summed per output feature (per input feature with `byInput`). */
function weighted(ix: GraphIndex, lin: Linear, inNorm: Float64Array, byInput: boolean): Float64Array {
  const { data: w, dims } = floatWeight(ix, lin.weight);
  const cols = dims[dims.length - 1]!, rows = w.length / cols;
  const out = new Float64Array(byInput ? lin.inFeatures : lin.outFeatures);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const [i, o] = lin.transposed ? [c, r] : [r, c];
      const v = Math.abs(w[r * cols + c]!) * inNorm[i]!;
      out[byInput ? i : o] = out[byInput ? i : o]! + v;
    }
  }
  return out;
}

const sum = (a: Float64Array, start: number, n: number): number => a.subarray(start, start + n).reduce((x, y) => x + y, 0);

/**
 * Activation-weighted magnitude (Wanda, Sun et al., 2023) for whole units, the second baseline
 * OPTIN is compared with: every weight of a unit counts |W_ij| * ||x_i|| (the norm of its input
 * feature over the calibration batch's real tokens), summed over the unit's Q/K/V columns (per
 * head, or per key/value group), its output-projection rows, and per neuron its up (and gate)
 * column and down row. Heads and neurons are put on one scale by {@link onOneScale}.
 */
export async function activationMagnitudeScores(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, seqLen: number): Promise<{ heads: number[][]; neurons: number[][] }> {
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const values = new Set<string>();
  for (const l of st.layers) {
    if (l.attention) {
      for (const p of l.attention.projections) values.add(p.input);
      values.add(l.attention.output.input);
    }
    if (l.ffn) values.add(l.ffn.up.input).add(l.ffn.down.input);
  }
  const norms = await featureNorms(model, [...values], batch);
  const heads = st.layers.map((l) => {
    const a = l.attention;
    if (!a) return [];
    const H = a.heads;
    const per = new Float64Array(H);
    for (const c of projectionCuts(a)) {
      const p = a.projections.find((x) => x.weight === c.tensor && x.node === c.node);
      if (!p) continue;
      const cols = weighted(ix, p, norms.get(p.input)!, false);
      for (let h = 0; h < H; h++) for (const i of keptEntries(c, H, [h])) per[h] = per[h]! + cols[i]!;
    }
    const rows = weighted(ix, a.output, norms.get(a.output.input)!, true);
    return Array.from(per, (x, h) => x + sum(rows, h * a.vHeadSize, a.vHeadSize));
  });
  const neurons = st.layers.map((l) => {
    const f = l.ffn;
    if (!f) return [];
    const up = weighted(ix, f.up, norms.get(f.up.input)!, false);
    const gate = f.gate ? weighted(ix, f.gate, norms.get(f.gate.input)!, false) : undefined;
    const down = weighted(ix, f.down, norms.get(f.down.input)!, true);
    return Array.from(up, (u, j) => u + (gate?.[j] ?? 0) + down[j]!);
  });
  return onOneScale(st, seqLen, heads, neurons);
}
