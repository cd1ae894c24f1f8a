import { create } from '@bufbuild/protobuf';
import type { OnnxModel } from '../onnx/model';
import { DataType, TensorProtoSchema } from '../onnx/schema';
import { GraphIndex } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import { shallowCopyModel } from '../graph/surgery';

/** New weights (full original shape) and biases of consumer nodes, by node name. */
export type ConsumerUpdates = Record<string, { weight: Float32Array; bias?: number[] }>;

function floatInit(name: string, data: Float32Array, dims: number[]) {
  return create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength) });
}

/** A copy of the model whose consumers read the updated weights and biases (a Conv/Gemm bias input is created when missing). */
export function withConsumerUpdates(model: OnnxModel, updates: ConsumerUpdates): OnnxModel {
  if (!Object.keys(updates).length) return model;
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  let k = 0;
  for (const [name, u] of Object.entries(updates)) {
    const n = g.node.find((x) => (x.name || x.output[0]) === name);
    if (!n) throw new Error(`no node ${name}`);
    const w = `optin/refit_${k++}`;
    g.initializer.push(floatInit(w, u.weight, tensorShape(ix.constant(n.input[1]!)!)));
    n.input[1] = w;
    if (u.bias) {
      const b = `optin/refit_${k++}`;
      g.initializer.push(floatInit(b, Float32Array.from(u.bias), [u.bias.length]));
      while (n.input.length < 3) n.input.push('');
      n.input[2] = b;
    }
  }
  return { ...model, proto };
}
