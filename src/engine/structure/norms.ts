import type { GraphIndex } from '../onnx/graph';
import { nodeId } from './linear';
import type { NormInfo } from './types';

/** Fused norms onnxruntime writes (Simplified = RMSNorm). */
const FUSED = new Set(['LayerNormalization', 'SkipLayerNormalization', 'SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization']);

const LN_OPS = new Set(['ReduceMean', 'Sub', 'Pow', 'Mul', 'Add', 'Sqrt', 'Div', 'Reciprocal', 'Cast']);

/** The LayerNorm that produces `value`, when it is one. */
export function normProducing(ix: GraphIndex, value: string): NormInfo | undefined {
  const p = ix.producer.get(value);
  if (!p) return undefined;
  if (FUSED.has(p.opType)) {
    return { kind: p.opType as NormInfo['kind'], node: nodeId(p), output: value };
  }
  if (LN_OPS.has(p.opType) && reachesReduceMean(ix, value)) return { kind: 'decomposed', node: nodeId(p), output: value };
  return undefined;
}

function reachesReduceMean(ix: GraphIndex, value: string): boolean {
  const stack = [value];
  const seen = new Set<string>();
  while (stack.length && seen.size < 16) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = ix.producer.get(v);
    if (!p || !LN_OPS.has(p.opType)) continue;
    if (p.opType === 'ReduceMean') return true;
    for (const i of p.input) if (i && !ix.constant(i)) stack.push(i);
  }
  return false;
}

/** The LayerNorm applied to `input` (fused op, or the last node of a ReduceMean chain). */
export function normAfter(ix: GraphIndex, input: string): NormInfo | undefined {
  const uses = ix.uses(input);
  const fused = uses.find((u) => u.opType === 'LayerNormalization' || u.opType === 'SimplifiedLayerNormalization' || ((u.opType === 'SkipLayerNormalization' || u.opType === 'SkipSimplifiedLayerNormalization') && u.input[0] === input));
  if (fused) return { kind: fused.opType as NormInfo['kind'], node: nodeId(fused), output: fused.output[0]! };
  // LayerNorm reduces x itself; RMSNorm reduces x^2 (Pow or Mul first).
  const reduces = (n: typeof uses[number]): boolean => n.opType === 'ReduceMean';
  if (!uses.some((u) => reduces(u) || ((u.opType === 'Pow' || u.opType === 'Mul') && ix.uses(u.output[0]!).some(reduces)))) return undefined;
  const reached = new Set<string>([input]);
  let last: { node: string; output: string; order: number } | undefined;
  for (let round = 0; round < 16; round++) {
    let grew = false;
    for (const v of [...reached]) {
      for (const u of ix.uses(v)) {
        if (!LN_OPS.has(u.opType) || reached.has(u.output[0]!)) continue;
        if (!u.input.every((i) => !i || reached.has(i) || ix.constant(i))) continue;
        reached.add(u.output[0]!);
        grew = true;
        const order = ix.order.get(u)!;
        if (!last || order > last.order) last = { node: nodeId(u), output: u.output[0]!, order };
      }
    }
    if (!grew) break;
  }
  return last ? { kind: 'decomposed', node: last.node, output: last.output } : undefined;
}
