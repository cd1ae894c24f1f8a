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
  const found: Linear[] = [];
  let steps = 0;
  while (stack.length && steps++ < 40) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const l = li.at(v, ix);
    if (l && l !== down) {
      if (!found.includes(l)) found.push(l);
      if (found.length > 2) return undefined;
      continue;
    }
    const p = ix.producer.get(v);
    if (!p || !ACT_OPS.has(p.opType)) return undefined;
    ops.add(p.opType);
    const ins = p.opType === 'Reshape' ? [p.input[0]!] : p.input;
    for (const i of ins) if (i && !ix.constant(i) && !isShapeValue(ix, i)) stack.push(i);
  }
  const fits = (l: Linear): boolean => !taken.has(l) && l.outFeatures === down.inFeatures && l.inFeatures === down.outFeatures;
  if (!found.length || !found.every(fits)) return undefined;
  const act = classify(ops);
  if (act === 'unknown' && ops.size === 0) return undefined;
  if (found.length === 1) return { up: found[0]!, down, activation: act, hidden: down.input, width: found[0]!.outFeatures };
  // Gated FFN (SwiGLU, GeGLU): down(act(gate(x)) * up(x)); the gate is the projection the activation reads.
  const activated = found.filter((l) => ix.uses(l.output).some((u) => ACTIVATIONS.has(u.opType)));
  if (activated.length !== 1 || found[0]!.input !== found[1]!.input) return undefined;
  const gate = activated[0]!;
  const up = found.find((l) => l !== gate)!;
  return { up, gate, down, activation: act, hidden: down.input, width: up.outFeatures };
}

const ACTIVATIONS = new Set(['Sigmoid', 'Erf', 'Tanh', 'Relu', 'Gelu', 'FastGelu', 'QuickGelu', 'Div']);
