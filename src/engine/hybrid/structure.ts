import type { OnnxModel } from '../onnx/model';
import type { InputSize } from '../data/types';
import { OptinError } from '../errors';
import { GraphIndex } from '../onnx/graph';
import { BINARY, UNARY } from '../groups/rules';
import { analyzeChannels, type ChannelStructure } from '../channels/structure';
import type { ModelStructure } from '../structure/types';
import { projectionCuts } from '../structure/headUnits';
import type { MeasuredShapes } from '../groups/shapes';

/** Every node a transformer's heads and neurons live in (projections, FFN matrices, fused attention). */
function transformerNodes(st: ModelStructure): Set<string> {
  const nodes = new Set<string>();
  for (const l of st.layers) {
    const a = l.attention;
    if (a) {
      nodes.add(a.output.node).add(a.core);
      for (const x of [...a.projections, ...projectionCuts(a)]) nodes.add(x.node);
    }
    if (l.ffn) {
      nodes.add(l.ffn.up.node).add(l.ffn.down.node);
      if (l.ffn.gate) nodes.add(l.ffn.gate.node);
    }
  }
  return nodes;
}

/** Ops a conv's channels pass through on their way to the next weighted node (a cheap pre-check). */
const PASS = new Set([...UNARY, ...BINARY, 'BatchNormalization', 'Transpose', 'Cast']);

/**
 * True when some Conv's output reaches another Conv (or a MatMul/Gemm with a constant weight)
 * through elementwise ops: only then can a channel group exist outside the transformer, and only
 * then is the graph probed for one (a ViT's patch embedding feeds the residual stream: no probe).
 */
function convFeedsWeights(ix: GraphIndex): boolean {
  for (const conv of ix.graph.node.filter((n) => n.opType === 'Conv')) {
    const stack = [conv.output[0]!];
    const seen = new Set<string>();
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v) || seen.size > 64) continue;
      seen.add(v);
      for (const u of ix.uses(v)) {
        if (u.opType === 'Conv' || ((u.opType === 'MatMul' || u.opType === 'Gemm') && u.input[1] && ix.constant(u.input[1]))) return true;
        if (PASS.has(u.opType)) stack.push(...u.output.filter(Boolean));
      }
    }
  }
  return false;
}

/**
 * Hybrid models (a transformer with convolution channels outside its layers: a conv stem, an
 * FPN-style decoder): the coupled-channel groups that touch none of the transformer's projections,
 * with the features the channel scorer compares, or undefined when the graph has none (no Conv, or
 * every channel feeds the residual stream, as a ViT's patch embedding does). The transformer's FFN
 * widths are channel groups too; they stay neurons of the transformer.
 */
export async function channelsOutside(model: OnnxModel, st: ModelStructure, size?: InputSize, shapes?: MeasuredShapes): Promise<ChannelStructure | undefined> {
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  if (!convFeedsWeights(ix)) return undefined;
  let cs: ChannelStructure;
  try {
    cs = await analyzeChannels(model, size, shapes);
  } catch (e) {
    if (e instanceof OptinError && (e.code === 'not-transformer' || e.code === 'unsupported')) return undefined;
    throw e;
  }
  const inside = transformerNodes(st);
  const keep = cs.groups.map((grp, l) => ({ grp, l })).filter(({ grp }) => ![...grp.producers, ...grp.consumers, ...grp.depthwise].some((n) => inside.has(n)));
  if (!keep.length) return undefined;
  const features = [...new Set(keep.map(({ l }) => cs.featureOf[l]!))];
  const { unrecognisedAttention: _recognised, ...rest } = cs;
  return {
    ...rest,
    architecture: `${st.architecture}+channels`,
    groups: keep.map(({ grp }) => grp),
    features: features.map((f) => cs.features[f]!),
    featureOf: keep.map(({ l }) => features.indexOf(cs.featureOf[l]!)),
  };
}
