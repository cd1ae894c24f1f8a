import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import type { OnnxModel } from '../onnx/model';
import { NodeProtoSchema, type ModelProto, type NodeProto } from '../onnx/schema';
import { GraphBuilder } from '../graph/builder';
import { defaultOpset, shallowCopyModel } from '../graph/surgery';
import type { ChannelStructure } from './structure';

/** Name of group l's channel-mask input ([n, width]). */
export const channelMaskName = (l: number): string => `optin_channel_mask_${l}`;

/** Mask feeds of a keep set for `rows` examples: 1 for kept channels, 0 for cut ones; for the given groups (default every group). */
export function channelMaskFeeds(cs: ChannelStructure, keep: number[][], rows: number, groups: number[] = cs.groups.map((_, l) => l)): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const l of groups) {
    const g = cs.groups[l]!;
    const m = new Float32Array(rows * g.width);
    for (let r = 0; r < rows; r++) for (const j of keep[l]!) m[r * g.width + j] = 1;
    feeds[channelMaskName(l)] = new ort.Tensor('float32', m, [rows, g.width]);
  }
  return feeds;
}

/**
 * An in-memory copy of the model where group l's channels are multiplied by a mask input right
 * before every consumer reads them (so a 0 removes exactly what cutting the channel removes), with
 * the batch axis made symbolic and `outputs` exposed. The user's file is never touched.
 */
export function instrumentChannels(model: OnnxModel, cs: ChannelStructure, groups: number[], outputs: string[]): ModelProto {
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const b = new GraphBuilder(g, defaultOpset(proto));
  for (const v of [...g.input, ...g.output]) {
    if (v.type?.value.case !== 'tensorType') continue;
    const dim0 = v.type.value.value.shape?.dim[0];
    if (dim0?.value.case === 'dimValue') dim0.value = { case: 'dimParam', value: 'optin_batch' };
  }
  for (const l of groups) {
    const grp = cs.groups[l]!;
    const mask = channelMaskName(l);
    b.input(mask, ['n', grp.width]);
    for (const site of grp.masks) {
      const at = g.node.findIndex((n) => (n.name || n.output[0]) === site.node);
      const consumer = g.node[at]!;
      const extent = site.extent ?? grp.width;
      const dims = Array.from({ length: site.rank }, (_, i) => (i === 0 ? -1 : i === site.axis ? extent : 1));
      const shape = b.ints(dims, [site.rank], 'maskShape');
      const r = b.name('mask');
      const m = b.name('masked');
      const before: NodeProto[] = [];
      let source = mask;
      if (site.offset !== undefined) {
        // The group's mask placed at its offset of the concatenated axis, 1 elsewhere: mask x E + ones
        // outside the range (E selects; every product is by 1 or 0, so the values are exact).
        const select = new Float32Array(grp.width * extent);
        for (let j = 0; j < grp.width; j++) select[j * extent + site.offset + j] = 1;
        const rest = new Float32Array(extent).fill(1).fill(0, site.offset, site.offset + grp.width);
        const placed = b.name('maskPlaced'), full = b.name('maskFull');
        before.push(
          create(NodeProtoSchema, { opType: 'MatMul', name: placed, input: [mask, b.floats(select, [grp.width, extent], 'maskSelect')], output: [placed] }),
          create(NodeProtoSchema, { opType: 'Add', name: full, input: [placed, b.floats(rest, [extent], 'maskRest')], output: [full] }));
        source = full;
      }
      g.node.splice(at, 0, ...before,
        create(NodeProtoSchema, { opType: 'Reshape', name: r, input: [source, shape], output: [r] }),
        create(NodeProtoSchema, { opType: 'Mul', name: m, input: [consumer.input[site.input]!, r], output: [m] }));
      consumer.input[site.input] = m;
    }
  }
  const have = new Set(g.output.map((o) => o.name));
  for (const o of outputs) if (!have.has(o)) b.output(o);
  return proto;
}
