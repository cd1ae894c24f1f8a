import type { ModelProto } from '../onnx/schema';
import { GraphIndex, attrInt } from '../onnx/graph';
import { defaultOpset } from './surgery';

/**
 * The value whose softmax scoring compares for graph output `output`: the input of a final Softmax
 * over the last axis (classifiers exported from Keras, tf2onnx and others output probabilities),
 * reached through Identity nodes; otherwise `output` itself. The output term is a KL after a
 * softmax, so scoring the probabilities would apply the softmax twice and flatten every difference.
 */
export function scoredOutput(proto: ModelProto, output: string): string {
  const g = proto.graph!;
  const { producer } = new GraphIndex(g);
  const t = g.output.find((o) => o.name === output)?.type;
  const rank = t?.value.case === 'tensorType' ? t.value.value.shape?.dim.length : undefined;
  let n = producer.get(output);
  while (n?.opType === 'Identity') n = producer.get(n.input[0]!);
  if (!n || n.opType !== 'Softmax' || (n.domain && n.domain !== 'ai.onnx') || !rank) return output;
  const axis = attrInt(n, 'axis', defaultOpset(proto) >= 13 ? -1 : 1);
  return (axis + rank) % rank === rank - 1 ? n.input[0]! : output;
}
