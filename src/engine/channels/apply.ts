import { create } from '@bufbuild/protobuf';
import type { OnnxModel } from '../onnx/model';
import { AttributeProtoSchema, AttributeType, DataType, StringStringEntryProtoSchema, TensorProtoSchema, type NodeProto } from '../onnx/schema';
import { valueInfo } from '../graph/builder';
import { GraphIndex } from '../onnx/graph';
import { removeDeadNodes, shallowCopyModel } from '../graph/surgery';
import { TensorStore, take, type Dense } from '../graph/tensors';
import { OptinError } from '../errors';
import type { ChannelStructure } from './structure';
import type { ChannelGroup, Cut } from '../groups/types';

/**
 * Physically cut channel groups: `keep[l]` lists group l's kept channels (sorted). Every carried
 * tensor is sliced along its axis (one new initializer per reading node, so shared tensors stay
 * intact for other readers), depthwise convolutions get the new group count, and Reshape
 * literals of the width are rewritten. Returns a new in-memory model; the input is not touched.
 * @throws OptinError('usage') when a group would keep no channel
 */
export function applyChannelKeep(model: OnnxModel, cs: ChannelStructure, keep: number[][], metadata: Record<string, string> = {}): OnnxModel {
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  const store = new TensorStore(ix);
  const byName = new Map<string, NodeProto>(g.node.map((n) => [n.name || n.output[0]!, n]));
  const cut = new Map<string, { base: string; t: Dense }>();
  const shapes = new Map<NodeProto, number[]>();
  // Groups side by side on a concatenated axis are cut from the highest offset down, so each
  // group's offset still holds when it is cut.
  const pending: Array<{ c: Cut; grp: ChannelGroup; kept: number[] }> = [];
  cs.groups.forEach((grp, l) => {
    const kept = keep[l] ?? [];
    if (kept.length === grp.width) return;
    if (!kept.length) throw new OptinError('usage', `group ${grp.name} would keep no channel; every group keeps at least one`);
    const cuts = [...grp.cuts];
    for (const p of grp.producers) {
      const n = byName.get(p)!;
      if (n.opType === 'Conv' && n.input[2] && !cuts.some((c) => c.node === p && c.input === 2)) cuts.push({ tensor: n.input[2], axis: 0, node: p, input: 2 });
    }
    for (const c of cuts) pending.push({ c, grp, kept });
    for (const name of grp.depthwise) {
      const n = byName.get(name)!;
      n.attribute = n.attribute.filter((a) => a.name !== 'group');
      n.attribute.push(create(AttributeProtoSchema, { name: 'group', type: AttributeType.INT, i: BigInt(kept.length) }));
    }
    for (const r of grp.reshapes) {
      const n = byName.get(r.node)!;
      const shape = shapes.get(n) ?? [...ix.constInts(n.input[1]!)!];
      shape[r.index] = kept.length;
      shapes.set(n, shape);
    }
  });
  pending.sort((a, b) => (b.c.offset ?? 0) - (a.c.offset ?? 0));
  for (const { c, grp, kept } of pending) {
    const key = `${c.node}#${c.input}`;
    const current = byName.get(c.node)!.input[c.input]!;
    const cur = cut.get(key) ?? { base: c.tensor, t: store.read(current) };
    const offset = c.offset ?? 0;
    const extent = cur.t.dims[c.axis]!;
    if (c.offset === undefined ? extent !== grp.width : extent < offset + grp.width) throw new Error(`${c.tensor} axis ${c.axis} has ${extent}, not ${c.offset === undefined ? grp.width : `room for ${grp.width} at ${offset}`}`);
    const indices = c.offset === undefined ? kept : [
      ...Array.from({ length: offset }, (_, i) => i),
      ...kept.map((j) => offset + j),
      ...Array.from({ length: extent - offset - grp.width }, (_, i) => offset + grp.width + i),
    ];
    cut.set(key, { base: cur.base, t: take(cur.t, c.axis, indices) });
  }
  for (const [key, { base, t }] of cut) {
    const [node, input] = [key.slice(0, key.lastIndexOf('#')), Number(key.slice(key.lastIndexOf('#') + 1))];
    byName.get(node)!.input[input] = store.write(base, t);
  }
  for (const [n, shape] of shapes) {
    const name = `${n.input[1]}.optin.${n.name || n.output[0]}`;
    g.initializer.push(create(TensorProtoSchema, { name, dims: [BigInt(shape.length)], dataType: DataType.INT64, rawData: new Uint8Array(BigInt64Array.from(shape.map(BigInt)).buffer) }));
    n.input[1] = name;
  }
  g.valueInfo = [];
  removeDeadNodes(g);
  if (Number(proto.irVersion) < 4) {
    const listed = new Set(g.input.map((i) => i.name));
    for (const t of g.initializer) if (!listed.has(t.name)) g.input.push(valueInfo(t.name, t.dims.map(Number), t.dataType));
  }
  for (const [key, value] of Object.entries(metadata)) {
    proto.metadataProps = proto.metadataProps.filter((p) => p.key !== key);
    proto.metadataProps.push(create(StringStringEntryProtoSchema, { key, value }));
  }
  return { ...model, proto, path: `${model.path} (pruned)` };
}
