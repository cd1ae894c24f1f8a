import type { GraphIndex } from '../onnx/graph';
import { isShapeValue, type LinearIndex } from './trace';
import type { Activation, FfnBlock, Linear } from './types';

const ACT_OPS = new Set([
  'Mul', 'Add', 'Div', 'Sub', 'Erf', 'Tanh', 'Pow', 'Sigmoid', 'Relu', 'Gelu', 'FastGelu', 'BiasGelu', 'QuickGelu',
  'Cast', 'Identity', 'Dropout', 'Sqrt', 'Reshape',
]);

function classify(ops: Set<string>): Activation {
  if (ops.has('BiasGelu')) return 'bias-gelu';
  if (ops.has('FastGelu')) return 'fast-gelu';
  if (ops.has('Gelu')) return 'gelu';
  if (ops.has('QuickGelu')) return 'quick-gelu';
  if (ops.has('Erf')) return 'gelu-erf';
  if (ops.has('Tanh')) return 'gelu-tanh';
  if (ops.has('Relu')) return 'relu';
  if (ops.has('Sigmoid')) return 'silu';
  return 'unknown';
}

/** Find the first FFN matrix feeding `down` through an elementwise activation subgraph. */
export function ffnFromDown(ix: GraphIndex, li: LinearIndex, down: Linear, taken: Set<Linear>): FfnBlock | undefined {
  const ops = new Set<string>();
  const seen = new Set<string>();
  const stack = [down.input];
  let up: Linear | undefined;
  let steps = 0;
  while (stack.length && steps++ < 40) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const l = li.at(v, ix);
    if (l && l !== down) {
      if (up && up !== l) return undefined;
      up = l;
      continue;
    }
    const p = ix.producer.get(v);
    if (!p || !ACT_OPS.has(p.opType)) return undefined;
    ops.add(p.opType);
    const ins = p.opType === 'Reshape' ? [p.input[0]!] : p.input;
    for (const i of ins) if (i && !ix.constant(i) && !isShapeValue(ix, i)) stack.push(i);
  }
  if (!up || taken.has(up) || up.outFeatures !== down.inFeatures || up.inFeatures !== down.outFeatures) return undefined;
  const act = classify(ops);
  if (act === 'unknown' && ops.size === 0) return undefined;
  return { up, down, activation: act, hidden: down.input, width: up.outFeatures };
}
