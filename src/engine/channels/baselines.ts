import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
import type { ChannelStructure } from './structure';
import { withinGroupPercentiles } from '../plan/channelSearch';

/** Sum of |x| (p = 1) or x^2 (p = 2) of each slice along `axis`. */
function sliceNorms(data: Float32Array, dims: number[], axis: number, p: 1 | 2): Float64Array {
  const n = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % n;
    out[c] = out[c]! + (p === 1 ? Math.abs(data[i]!) : data[i]! * data[i]!);
  }
  return out;
}

/**
 * Weight baselines for channel groups; raw norms of different layers are not comparable (fan-in
 * sets their scale), so each is made comparable across groups. 'l1': Li et al. (2017): within a
 * group, filters (the channel's output slice of the first producer) ranked by L1 norm; the score is
 * the channel's percentile in its group, so the global search keeps the same share of every group
 * (their uniform per-layer pruning, at the MAC budget). 'magnitude': the L2 norm of everything the
 * channel carries (producer rows and consumer columns), divided by its group's mean. Larger = more important.
 */
export function channelWeightScores(model: OnnxModel, cs: ChannelStructure, kind: 'l1' | 'magnitude'): number[][] {
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  return cs.groups.map((g) => {
    const weights = g.cuts.filter((c) => {
      const node = g.producers.includes(c.node) || g.consumers.includes(c.node);
      return c.input === 1 && node && (kind === 'magnitude' || c.node === g.producers[0]);
    });
    const acc = new Float64Array(g.width);
    for (const c of weights) {
      const t = ix.constant(c.tensor)!;
      const n = sliceNorms(tensorFloat32(t, ix.ext), tensorShape(t), c.axis, kind === 'l1' ? 1 : 2);
      for (let i = 0; i < g.width; i++) acc[i] = acc[i]! + n[(c.offset ?? 0) + i]!;
    }
    if (kind === 'magnitude') {
      const n = Array.from(acc, Math.sqrt);
      const mean = n.reduce((a, b) => a + b, 0) / n.length || 1;
      return n.map((x) => x / mean);
    }
    return withinGroupPercentiles([Array.from(acc)])[0]!;
  });
}
