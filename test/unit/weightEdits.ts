import { create } from '@bufbuild/protobuf';
import { decodeModel, type OnnxModel } from '../../src/engine/onnx/model';
import { serializeModel } from '../../src/engine/onnx/writer';
import { tensorFloat32 } from '../../src/engine/onnx/tensor';
import { DataType, TensorProtoSchema } from '../../src/engine/onnx/schema';
import type { Linear, ModelStructure } from '../../src/engine/structure/types';

/** A float32 weight initializer read out of a model, to be edited in copies. */
export interface EditableWeight { name: string; dims: number[]; data: Float32Array }

/** The weight of a projection as an editable copy. */
export function weightOf(model: OnnxModel, lin: Linear): EditableWeight {
  const init = model.proto.graph!.initializer.find((t) => t.name === lin.weight);
  if (!init) throw new Error(`weight ${lin.weight} is not an initializer`);
  return { name: lin.weight, dims: init.dims.map(Number), data: Float32Array.from(tensorFloat32(init, model.ext)) };
}

/**
 * A copy of `w` with the slice that multiplies input features [from, to) of `lin` zeroed: rows of a
 * [in, out] MatMul weight, columns of a transposed [out, in] Gemm weight, heads of an Einsum [heads, d, out] weight.
 */
export function zeroInputs(w: EditableWeight, lin: Linear, from: number, to: number): Float32Array {
  const out = Float32Array.from(w.data);
  if (lin.transposed) {
    const cols = w.dims[w.dims.length - 1]!;
    for (let r = 0; r < out.length / cols; r++) out.fill(0, r * cols + from, r * cols + to);
  } else {
    const per = out.length / lin.inFeatures;
    out.fill(0, from * per, to * per);
  }
  return out;
}

/** An in-memory copy of the model (same path, so its tokenizer and config are found) with initializers replaced. */
export function withWeights(model: OnnxModel, edits: Array<{ name: string; data: Float32Array }>): OnnxModel {
  const copy = decodeModel(serializeModel(model), model.path);
  const g = copy.proto.graph!;
  for (const e of edits) {
    const i = g.initializer.findIndex((t) => t.name === e.name);
    const old = g.initializer[i]!;
    g.initializer[i] = create(TensorProtoSchema, { name: e.name, dims: old.dims, dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.from(e.data).buffer) });
  }
  return copy;
}

/** The model with one head of layer l removed from its output projection (its contribution is exactly zero). */
export function withoutHead(model: OnnxModel, st: ModelStructure, l: number, head: number): OnnxModel {
  const a = st.layers[l]!.attention!;
  const w = weightOf(model, a.output);
  return withWeights(model, [{ name: w.name, data: zeroInputs(w, a.output, head * a.vHeadSize, (head + 1) * a.vHeadSize) }]);
}

/** The model with one FFN neuron of layer l removed from the second matrix (its contribution is exactly zero). */
export function withoutNeuron(model: OnnxModel, st: ModelStructure, l: number, neuron: number): OnnxModel {
  const down = st.layers[l]!.ffn!.down;
  const w = weightOf(model, down);
  return withWeights(model, [{ name: w.name, data: zeroInputs(w, down, neuron, neuron + 1) }]);
}
