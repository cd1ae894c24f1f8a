import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { DataType } from '../onnx/schema';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
import type { EncoderLayer } from '../structure/types';

/**
 * Where removing one FFN neuron is a rank-1 change of a graph value: the FFN's second matrix reads
 * the activations directly (nothing else does), so its product without neuron j is the dense
 * product minus activation j times row j of the weight. A neuron's suffix can then start after that
 * matrix, fed the corrected product, instead of multiplying the masked activations again.
 */
export interface RankOneStart {
  /** Output of the second matrix's MatMul node (before any separate bias Add). */
  value: string;
  /** Row j of the weight in [in, out] terms, for neuron j. */
  row(j: number): Float32Array;
  width: number;
  out: number;
}

/**
 * The rank-1 start of a layer's neurons, when the graph allows it: the activations feed exactly one
 * node, a MatMul with a constant float32 [I, D] weight; otherwise undefined (the neurons then start
 * at the activations). `ix`: the model's graph index, when the caller asks for several layers.
 */
export function rankOneStart(model: OnnxModel, layer: EncoderLayer, ix = new GraphIndex(model.proto.graph!, model.ext)): RankOneStart | undefined {
  const ffn = layer.ffn;
  if (!ffn) return undefined;
  const uses = ix.uses(ffn.hidden);
  const node = uses[0];
  if (uses.length !== 1 || !node || node.input[0] !== ffn.hidden || !node.output[0]) return undefined;
  // A Gemm reads 2-D activations [tokens, I] (no row per example), which keep the activation start.
  if (node.opType !== 'MatMul') return undefined;
  const t = ix.constant(node.input[1] ?? '');
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  const dims = tensorShape(t);
  if (dims.length !== 2 || dims[0] !== ffn.width) return undefined;
  const [I, D] = [dims[0]!, dims[1]!];
  let w: Float32Array | undefined;
  return {
    value: node.output[0],
    width: I,
    out: D,
    row: (j) => {
      w ??= tensorFloat32(t, ix.ext);
      return w.slice(j * D, (j + 1) * D);
    },
  };
}

/**
 * Write the product without neuron `j` into `out` at `offset`: `dense` [rows, D] minus
 * `act`[r, j] x `row` for every row r (`act` is [rows, I]).
 */
export function withoutNeuron(dense: Float32Array, act: Float32Array, row: Float32Array, j: number, I: number, out: Float32Array, offset: number): void {
  const D = row.length;
  const rows = dense.length / D;
  out.set(dense, offset);
  for (let r = 0; r < rows; r++) {
    const a = act[r * I + j]!;
    if (a === 0) continue;
    const base = offset + r * D;
    for (let d = 0; d < D; d++) out[base + d]! -= a * row[d]!;
  }
}
