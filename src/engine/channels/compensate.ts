import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import type { OnnxModel } from '../onnx/model';
import { DataType, NodeProtoSchema, TensorProtoSchema, type AttributeProto, type NodeProto } from '../onnx/schema';
import { GraphIndex } from '../onnx/graph';
import { tensorFloat32 } from '../onnx/tensor';
import { GraphBuilder } from '../graph/builder';
import { defaultOpset, shallowCopyModel } from '../graph/surgery';
import type { CalibrationBatch } from '../data/calibration';
import { chunks } from '../data/batches';
import { sessionFor, toOrt } from '../optin/teacher';
import { runSession } from '../runtime/session';
import { OptinError } from '../errors';
import { channelMaskName, instrumentChannels } from './instrument';
import type { ChannelStructure } from './structure';

/** Per consumer node: what to add to each of its output channels (original indexing). */
export type BiasAdjust = Record<string, number[]>;

const removedName = (l: number): string => `optin_removed_${l}`;

function floatInit(name: string, data: Float32Array, dims: number[]) {
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength) });
}

/**
 * A copy of the model with `adjust` added to the consumers' biases: a Conv/Gemm bias input
 * (created when missing), the constant of a MatMul's bias Add, or a new Add after a MatMul.
 */
export function withBiasAdjust(model: OnnxModel, adjust: BiasAdjust): OnnxModel {
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  let k = 0;
  for (const [name, add] of Object.entries(adjust)) {
    const n = g.node.find((x) => (x.name || x.output[0]) === name);
    if (!n) throw new Error(`no node ${name}`);
    const delta = Float32Array.from(add);
    if (n.opType === 'Conv' || n.opType === 'Gemm') {
      const old = n.input[2] ? ix.constant(n.input[2]) : undefined;
      const base = old ? tensorFloat32(old, model.ext) : new Float32Array(delta.length);
      const t = `optin/bias_${k++}`;
      g.initializer.push(floatInit(t, base.map((v, i) => v + delta[i]!), [delta.length]));
      while (n.input.length < 2) n.input.push('');
      n.input[2] = t;
      continue;
    }
    const uses = ix.uses(n.output[0]!);
    const biasAdd = uses.length === 1 && uses[0]!.opType === 'Add' ? uses[0]! : undefined;
    const ci = biasAdd ? biasAdd.input.findIndex((v) => v !== n.output[0] && ix.constant(v)?.dims.length === 1) : -1;
    if (biasAdd && ci >= 0) {
      const base = tensorFloat32(ix.constant(biasAdd.input[ci]!)!, model.ext);
      const t = `optin/bias_${k++}`;
      g.initializer.push(floatInit(t, base.map((v, i) => v + delta[i]!), [delta.length]));
      biasAdd.input[ci] = t;
      continue;
    }
    const t = `optin/bias_${k++}`;
    g.initializer.push(floatInit(t, delta, [delta.length]));
    const out = `${t}_out`;
    const at = g.node.indexOf(n);
    for (const u of uses) u.input = u.input.map((v) => (v === n.output[0] ? out : v));
    for (const o of g.output) if (o.name === n.output[0]) o.name = out;
    g.node.splice(at + 1, 0, create(NodeProtoSchema, { opType: 'Add', name: t, input: [n.output[0]!, t], output: [out] }));
  }
  return { ...model, proto };
}

/** Consumers whose bias can follow a cut of their output channels too (not a MatMul producer without a bias Add). */
function adjustable(cs: ChannelStructure, ix: GraphIndex, n: NodeProto): boolean {
  if (n.opType !== 'MatMul') return true;
  if (!cs.groups.some((g) => g.producers.includes(n.name || n.output[0]!))) return true;
  const uses = ix.uses(n.output[0]!);
  return uses.length === 1 && uses[0]!.opType === 'Add' && uses[0]!.input.some((v) => ix.constant(v)?.dims.length === 1);
}

/**
 * Bias compensation of removed channels ("tuning" for channel groups): group by group in graph
 * order, with the earlier groups already cut and compensated, the mean over the calibration batch
 * (examples and positions) of what the removed channels contributed to each consumer's output is
 * added to that consumer's bias, so the pruned model keeps the dense model's mean pre-activations
 * (ReLU-family activations have non-zero means; dropping a channel otherwise shifts every later layer).
 */
export async function compensateBiases(model: OnnxModel, cs: ChannelStructure, keep: number[][], batch: CalibrationBatch, signal?: AbortSignal): Promise<BiasAdjust> {
  const adjust: BiasAdjust = {};
  const ix0 = new GraphIndex(model.proto.graph!, model.ext);
  for (let l = 0; l < cs.groups.length; l++) {
    const grp = cs.groups[l]!;
    if (keep[l]!.length === grp.width) continue;
    if (signal?.aborted) throw new OptinError('cancelled', 'tuning cancelled; nothing was written');
    const current = withBiasAdjust(model, adjust);
    const proto = instrumentChannels(current, cs, cs.groups.map((_, i) => i).filter((i) => i <= l), []);
    const g = proto.graph!;
    const b = new GraphBuilder(g, defaultOpset(proto));
    b.input(removedName(l), ['n', grp.width]);
    const outs: Array<{ node: string; value: string }> = [];
    for (const site of grp.masks) {
      const orig = ix0.graph.node.find((n) => (n.name || n.output[0]) === site.node)!;
      if (!adjustable(cs, ix0, orig)) continue;
      const consumer = g.node.find((n) => (n.name || n.output[0]) === site.node)!;
      const x = current.proto.graph!.node.find((n) => (n.name || n.output[0]) === site.node)!.input[site.input]!;
      const dims = Array.from({ length: site.rank }, (_, i) => (i === 0 ? -1 : i === site.axis ? grp.width : 1));
      const removed = b.node('Mul', [x, b.reshape(removedName(l), dims, 'removedMask')], {}, 'removed');
      const attrs: AttributeProto[] = consumer.attribute.filter((a) => a.name !== 'beta');
      const y = b.name('removedContribution');
      g.node.push(create(NodeProtoSchema, { opType: consumer.opType, name: y, input: [removed, consumer.input[1]!], output: [y], attribute: attrs }));
      const rank = consumer.opType === 'Conv' ? site.rank : consumer.opType === 'Gemm' ? 2 : site.rank;
      const axes = consumer.opType === 'Conv' ? [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)] : Array.from({ length: rank - 1 }, (_, i) => i);
      outs.push({ node: site.node, value: b.reduceMean(y, axes, 0, 'meanContribution') });
    }
    if (!outs.length) continue;
    for (const o of outs) b.output(o.value);
    const s = await sessionFor(current, proto, `${model.path} (bias compensation, group ${grp.name})`);
    const sums = new Map<string, Float64Array>();
    let seen = 0;
    try {
      for (const c of chunks(batch.feeds, batch.batch, Math.min(batch.batch, 16))) {
        const feeds = toOrt(c.feeds);
        const rows = Object.values(feeds)[0]!.dims[0]!;
        cs.groups.forEach((gr, i) => {
          if (i > l) return;
          const m = new Float32Array(rows * gr.width);
          for (let r = 0; r < rows; r++) for (const j of keep[i]!) m[r * gr.width + j] = 1;
          feeds[channelMaskName(i)] = new ort.Tensor('float32', m, [rows, gr.width]);
          if (i === l) feeds[removedName(l)] = new ort.Tensor('float32', m.map((v) => 1 - v), [rows, gr.width]);
        });
        const r = await runSession(s.session, feeds, `${model.path} (bias compensation)`);
        for (const o of outs) {
          const v = r[o.value]!.data as Float32Array;
          const acc = sums.get(o.node) ?? new Float64Array(v.length);
          for (let i = 0; i < v.length; i++) acc[i] = acc[i]! + v[i]! * rows;
          sums.set(o.node, acc);
        }
        seen += rows;
      }
    } finally {
      await s.session.release();
    }
    for (const [node, acc] of sums) {
      const prev = adjust[node] ?? new Array<number>(acc.length).fill(0);
      adjust[node] = prev.map((p, i) => p + acc[i]! / seen);
    }
  }
  return adjust;
}
