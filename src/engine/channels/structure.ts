import type { OnnxModel } from '../onnx/model';
import { GraphIndex, attr } from '../onnx/graph';
import { findScoresMatMul } from '../structure/attention';
import { OptinError } from '../errors';
import { hasDynamicSize, withInputSize } from '../data/inputSize';
import type { InputSize } from '../data/types';
import { modelInputs } from '../structure/inputs';
import { checkWeightTypes } from '../structure/dtypes';
import type { ModelInput } from '../structure/types';
import { measureShapes, type MeasuredShapes } from '../groups/shapes';
import { findChannelGroups } from '../groups/find';
import { BINARY, UNARY } from '../groups/rules';
import type { ChannelGroup, GroupRefusal } from '../groups/types';

/** A value whose channels the manifold term compares: spatial positions (or tokens) are its rows. */
export interface ChannelFeature {
  value: string;
  /** Axis holding the channels. */
  axis: number;
  /** Measured dims at the probe batch. */
  dims: number[];
  /** Graph position of the node producing it. */
  order: number;
}

/** A network pruned by channel groups (CNNs; any graph whose prunable units are coupled channels). */
export interface ChannelStructure {
  kind: 'channels';
  architecture: string;
  modality: 'vision' | 'text' | 'hidden-states';
  inputs: ModelInput[];
  /** The size dynamic image axes were measured at (absent when every axis but the batch is fixed). */
  inputSize?: InputSize;
  outputs: string[];
  groups: ChannelGroup[];
  /** Candidates that are not prunable alone (residual streams, the classifier...), with the reason. */
  refused: GroupRefusal[];
  features: ChannelFeature[];
  /** Index into `features` of each group's block output. */
  featureOf: number[];
  /** Measured shape of every value at the probe batch. */
  shapes: MeasuredShapes;
  /** Softmax-over-QK^T attention transformer detection did not recognise: its heads are not pruned. */
  unrecognisedAttention?: { count: number; example: string };
  opset: number;
  producer: string;
}

/** The value a group's block hands on: from its last consumer through single-use elementwise ops, norms, residual adds and transposes. */
function blockOutput(ix: GraphIndex, grp: ChannelGroup, shapes: MeasuredShapes, outputs: Set<string>): ChannelFeature {
  const nodes = grp.consumers.map((c) => ix.graph.node.find((n) => (n.name || n.output[0]) === c)!);
  const last = nodes.reduce((a, b) => (ix.order.get(a)! > ix.order.get(b)! ? a : b));
  let value = last.output[0]!;
  let axis = last.opType === 'Conv' ? 1 : shapes.get(value)!.length - 1;
  let at = last;
  for (;;) {
    const uses = ix.uses(value);
    if (uses.length !== 1 || outputs.has(value)) break;
    const n = uses[0]!;
    const rank = shapes.get(n.output[0]!)?.length;
    if (rank === undefined) break;
    if (UNARY.has(n.opType) || n.opType === 'BatchNormalization') { /* same axis */ }
    else if (BINARY.has(n.opType)) axis += rank - shapes.get(value)!.length;
    else if (n.opType === 'Transpose') axis = (attr(n, 'perm') as number[]).indexOf(axis);
    else break;
    value = n.output[0]!;
    at = n;
  }
  return { value, axis, dims: shapes.get(value)!, order: ix.order.get(at)! };
}

/**
 * Find the prunable channel groups of a graph on shapes measured in one onnxruntime run, and each
 * group's block output for the manifold term.
 * Dynamic image axes are measured at `size`; the structure's inputs carry it.
 * @throws OptinError('not-transformer') when no group is prunable (with the most common reasons)
 */
export async function analyzeChannels(model: OnnxModel, size?: InputSize, measured?: MeasuredShapes): Promise<ChannelStructure> {
  checkWeightTypes(model);
  const g = model.proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  const inputs = withInputSize(modelInputs(ix), size);
  const half = inputs.find((i) => i.dtype === 'float16');
  if (half) throw new OptinError('unsupported', `${model.path}: input "${half.name}" is float16; OPTIN needs a float32 model`);
  const shapes = measured ?? await measureShapes(model, size);
  const { groups, refused } = findChannelGroups(model, shapes);
  if (!groups.length) {
    const why = refused.slice(0, 3).map((r) => `${r.op} node "${r.node}": ${r.reason}`).join('; ');
    throw new OptinError('not-transformer', `${model.path}: no prunable attention heads, FFN neurons or channel groups found${why ? ` (${why})` : ''}`);
  }
  const outputs = new Set(g.output.map((o) => o.name));
  const features: ChannelFeature[] = [];
  const featureOf = groups.map((grp) => {
    const f = blockOutput(ix, grp, shapes, outputs);
    const i = features.findIndex((x) => x.value === f.value);
    if (i >= 0) return i;
    features.push(f);
    return features.length - 1;
  });
  const modality = inputs.some((i) => i.role === 'input_ids') ? 'text' : inputs.some((i) => i.role === 'pixel_values') ? 'vision' : 'hidden-states';
  const convs = g.node.filter((n) => n.opType === 'Conv').length;
  const attention = g.node.filter((n) => n.opType === 'Softmax' && findScoresMatMul(ix, n.input[0]!, 0, true));
  return {
    kind: 'channels', architecture: attention.length ? 'attention-not-recognised' : convs ? 'cnn' : 'mlp', modality, inputs, ...(size && modelInputs(ix).some(hasDynamicSize) ? { inputSize: size } : {}), outputs: g.output.map((o) => o.name), groups, refused, features, featureOf, shapes,
    ...(attention.length ? { unrecognisedAttention: { count: attention.length, example: ix.label(attention[0]!) } } : {}),
    opset: Number(model.proto.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0), producer: `${model.proto.producerName} ${model.proto.producerVersion}`.trim(),
  };
}

/** Features group l's trajectory compares: block outputs after its own (its own when none follows). */
export function comparedFeatures(cs: ChannelStructure, l: number): number[] {
  const own = cs.features[cs.featureOf[l]!]!;
  const later = cs.features.map((f, i) => ({ f, i })).filter((x) => x.f.order > own.order).map((x) => x.i);
  return later.length ? later : [cs.featureOf[l]!];
}
