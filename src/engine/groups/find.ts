import type { MeasuredShapes } from './shapes';
import type { OnnxModel } from '../onnx/model';
import type { NodeProto } from '../onnx/schema';
import { GraphIndex } from '../onnx/graph';
import { GroupStop, Propagation, channelSplit } from './propagate';
import { isWeightProducer } from './rules';
import type { ChannelGroup, GroupRefusal } from './types';

/** Every coupled-channel group of a graph, and the candidates that are not prunable (with why). */
export interface GroupAnalysis {
  groups: ChannelGroup[];
  refused: GroupRefusal[];
}

/**
 * "layer1.0.conv1" from torch's scoped node name "/layer1/layer1.0/conv1/Conv" (falls back to the
 * node name or its output).
 */
export function modulePath(n: NodeProto): string {
  const segs = (n.name || '').split('/').filter(Boolean).slice(0, -1);
  if (!segs.length) return n.name || n.output[0]!;
  let out = '';
  let prev = '';
  for (const s of segs) {
    out = prev && s.startsWith(`${prev}.`) ? out.slice(0, out.length - prev.length) + s : out ? `${out}.${s}` : s;
    prev = s;
  }
  return out;
}

/**
 * Propagate from every Conv (group 1), MatMul and Gemm with a constant weight; candidates whose
 * closure is the same group are found once. Groups are returned in graph order of their first producer.
 */
export function findChannelGroups(model: OnnxModel, shapes: MeasuredShapes): GroupAnalysis {
  const g = model.proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  const outputs = new Set(g.output.map((o) => o.name));
  const covered = new Set<string>();
  const groups: ChannelGroup[] = [];
  const refused: GroupRefusal[] = [];
  for (const n of g.node) {
    const id = n.name || n.output[0]!;
    if (covered.has(id) || !isWeightProducer(ix, n)) continue;
    const dims = shapes.get(n.output[0]!);
    if (!dims) continue;
    const width = (n.opType === 'Conv' ? dims[1]! : dims[dims.length - 1]!) / (channelSplit(ix, shapes, n)?.parts ?? 1);
    try {
      const grp = new Propagation(ix, shapes, width, outputs).run(n, modulePath(n));
      for (const p of grp.producers) covered.add(p);
      groups.push(grp);
    } catch (e) {
      if (!(e instanceof GroupStop)) throw e;
      covered.add(id);
      const at = e.node ?? n;
      refused.push({ start: id, node: at.name || at.output[0]!, op: at.opType, reason: e.reason, width });
    }
  }
  groups.sort((a, b) => a.order - b.order);
  return { groups, refused };
}
