import type { OnnxModel } from '../onnx/model';
import { DataType } from '../onnx/schema';
import { dataTypeName, elementCount } from '../onnx/tensor';
import { OptinError } from '../errors';

const HALF = new Set<number>([DataType.FLOAT16, DataType.BFLOAT16]);
const QUANT_OPS = new Set([
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'MatMulInteger', 'ConvInteger', 'QLinearMatMul', 'QLinearConv',
  'QAttention', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat', 'QOrderedAttention', 'QGemm',
]);

/**
 * Refuse models whose weights are not float32: any float16/bfloat16 initializer or constant, or a
 * quantization op, named with the count of such weights.
 * @throws OptinError('unsupported') naming the first offending initializer or node
 */
export function checkWeightTypes(model: OnnxModel): void {
  const g = model.proto.graph!;
  const quant = g.node.find((n) => QUANT_OPS.has(n.opType));
  if (quant) {
    throw new OptinError('unsupported', `${model.path}: node "${quant.name || quant.output[0]}" (${quant.opType}) belongs to a quantized model; OPTIN needs the float32 model (prune it first, then quantize the pruned model)`);
  }
  const half = g.initializer.filter((t) => HALF.has(t.dataType) && elementCount(t.dims) > 1);
  const halfConst = g.node.filter((n) => n.opType === 'Constant' && n.attribute.some((a) => a.t && HALF.has(a.t.dataType)));
  if (half.length || halfConst.length) {
    const first = half[0] ?? halfConst[0]!.attribute.find((a) => a.t)!.t!;
    const name = half[0]?.name ?? halfConst[0]!.output[0]!;
    const user = g.node.find((n) => n.input.includes(name));
    const of = user ? ` of ${user.opType} node "${user.name || user.output[0]}"` : '';
    throw new OptinError('unsupported', `${model.path}: weight "${name}"${of} is ${dataTypeName(first.dataType)} (${half.length + halfConst.length} ${dataTypeName(first.dataType)} weights in all); OPTIN needs a float32 model: export it in float32 (or convert it back) and prune that`);
  }
}
