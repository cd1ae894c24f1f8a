import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import { shallowCopyModel } from '../graph/surgery';
import { TensorStore } from '../graph/tensors';

/** New weights (full original shape) and biases of consumer nodes, by node name. */
export type ConsumerUpdates = Record<string, { weight: Float32Array; bias?: number[] }>;

/** A copy of the model whose consumers read the updated weights and biases (a Conv/Gemm bias input is created when missing). */
export function withConsumerUpdates(model: OnnxModel, updates: ConsumerUpdates): OnnxModel {
  if (!Object.keys(updates).length) return model;
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  const store = new TensorStore(ix);
  for (const [name, u] of Object.entries(updates)) {
    const n = g.node.find((x) => (x.name || x.output[0]) === name);
    if (!n) throw new Error(`no node ${name}`);
    n.input[1] = store.write('optin/refit', { data: u.weight, dims: tensorShape(ix.constant(n.input[1]!)!) });
    if (u.bias) {
      while (n.input.length < 3) n.input.push('');
      n.input[2] = store.write('optin/refit', { data: Float32Array.from(u.bias), dims: [u.bias.length] });
    }
  }
  return { ...model, proto };
}
