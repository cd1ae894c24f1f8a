import type * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import { create } from '@bufbuild/protobuf';
import { ValueInfoProtoSchema, type ModelProto } from '../onnx/schema';
import type { CalibrationBatch } from '../data/calibration';
import type { TensorData } from '../data/types';
import type { EpChoice } from '../runtime/providers';
import { runSession, sessionFor, toOrt } from '../runtime/session';
import { extractSubgraph } from '../graph/surgery';
import { instrumentChannels } from './instrument';
import type { ChannelStructure } from './structure';

/** A masked graph cut down to what follows its mask, and the dense values it starts from. */
export interface ChannelSuffix {
  proto: ModelProto;
  /** Dense values of the cut points ([batch, ...], one example per row), fed like the model's inputs. */
  values: Record<string, TensorData>;
}

/** Values the nodes downstream of `mask` read from outside that closure (neither initializers, graph inputs nor the mask). */
function frontier(proto: ModelProto, mask: string): string[] {
  const g = proto.graph!;
  const readers = new Map<string, number[]>();
  g.node.forEach((n, i) => n.input.forEach((x) => readers.set(x, [...(readers.get(x) ?? []), i])));
  const after = new Set([mask]);
  const nodes = new Set<number>();
  const stack = [mask];
  while (stack.length) {
    for (const i of readers.get(stack.pop()!) ?? []) {
      if (nodes.has(i)) continue;
      nodes.add(i);
      for (const o of g.node[i]!.output) if (o && !after.has(o)) { after.add(o); stack.push(o); }
    }
  }
  const constants = new Set(g.initializer.map((t) => t.name));
  const inputs = new Set(g.input.map((i) => i.name));
  const out = new Set<string>();
  for (const i of nodes) for (const x of g.node[i]!.input) if (x && !after.has(x) && !constants.has(x) && !inputs.has(x)) out.add(x);
  return [...out];
}

/**
 * The masked graph of one channel group (docs/method.md §2, prefix reuse as for transformer
 * layers): whatever the mask cannot change is computed once. The values the nodes after the mask
 * read from before it are taken from one dense run of the batch and become inputs; float values
 * with the batch axis first are cut there, anything else (shapes, values without a batch axis)
 * stays computed in the graph. `proto` (the caller's own copy) is cut in place. Returns undefined
 * when nothing can be cut.
 */
export async function channelSuffix(model: OnnxModel, cs: ChannelStructure, proto: ModelProto, mask: string, batch: CalibrationBatch, ep: EpChoice): Promise<ChannelSuffix | undefined> {
  const original = new Set(model.proto.graph!.node.flatMap((n) => n.output));
  const names = frontier(proto, mask).filter((n) => original.has(n));
  if (!names.length) return undefined;
  const probe = instrumentChannels(model, cs, [], []);
  // Untyped outputs: onnxruntime takes each value's own type (shapes and indices are not float).
  probe.graph!.output.push(...names.map((name) => create(ValueInfoProtoSchema, { name })));
  const s = await sessionFor(model, probe, `${model.path} (values before a channel mask)`, ep);
  let dense: Record<string, ort.Tensor>;
  try {
    dense = await runSession(s.session, toOrt(batch.feeds), `${model.path} (values before a channel mask)`) as Record<string, ort.Tensor>;
  } finally {
    await s.session.release();
  }
  const cuts = new Map<string, Array<number | string>>();
  const values: Record<string, TensorData> = {};
  for (const n of names) {
    const t = dense[n]!;
    if (t.type !== 'float32' || t.dims[0] !== batch.batch) continue;
    cuts.set(n, ['n', ...t.dims.slice(1)]);
    values[n] = { type: 'float32', dims: [...t.dims], data: t.data as Float32Array };
  }
  if (!cuts.size) return undefined;
  const g = proto.graph!;
  proto.graph = extractSubgraph(g, cuts, g.output.map((o) => o.name));
  return { proto, values };
}
