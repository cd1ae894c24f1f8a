import type { NodeProto } from '../onnx/schema';
import type { GraphIndex } from '../onnx/graph';
import type { Linear } from './types';

/** Index from values to the linear that produces them (MatMul output or biased output). */
export class LinearIndex {
  private readonly byValue = new Map<string, Linear>();
  constructor(readonly all: Linear[]) {
    for (const l of all) {
      this.byValue.set(l.output, l);
    }
  }
  /** Linear whose MatMul output or post-bias output is `value`. */
  at(value: string, ix: GraphIndex): Linear | undefined {
    const l = this.byValue.get(value);
    if (l) return l;
    const p = ix.producer.get(value);
    if (p && (p.opType === 'MatMul' || p.opType === 'Gemm' || p.opType === 'MatMulNBits')) return this.all.find((x) => x.node === (p.name || p.output[0]));
    return undefined;
  }
}

/** Ops that only move, split or rescale a projection's output on its way into attention. */
export const LAYOUT_OPS = new Set([
  'Transpose', 'Reshape', 'Squeeze', 'Unsqueeze', 'Gather', 'Split', 'Slice', 'Cast', 'Identity', 'Div', 'Mul', 'Dropout', 'Expand',
  // onnxruntime's fused rotary (com.microsoft): rotations inside each head.
  'RotaryEmbedding',
]);

/** Walk back from `value` through layout ops (first non-constant input) to a linear. */
export function traceBackToLinear(
  ix: GraphIndex,
  li: LinearIndex,
  value: string,
  path: NodeProto[] = [],
): { linear: Linear; path: NodeProto[] } | undefined {
  let v = value;
  for (let hop = 0; hop < 16; hop++) {
    const l = li.at(v, ix);
    if (l) return { linear: l, path };
    const p = ix.producer.get(v);
    if (!p) return undefined;
    const ins = p.input.filter((i) => i && !ix.constant(i) && !isShapeValue(ix, i));
    if (ins.length > 1 && MERGE_OPS.has(p.opType)) return traceMerge(ix, li, p, ins, path);
    if (!LAYOUT_OPS.has(p.opType) && !(ins.length === 1 && MERGE_OPS.has(p.opType))) return undefined;
    path.push(p);
    if (!ins[0]) return undefined;
    v = ins[0];
  }
  return undefined;
}

/**
 * Elementwise ops whose activation inputs may all come from one projection, as in rotary position
 * embeddings (q*cos + rotate_half(q)*sin, rotate_half = Concat(-x2, x1)): the per-element work stays
 * inside each head, so the head structure of that projection carries through.
 */
const MERGE_OPS = new Set(['Add', 'Sub', 'Mul', 'Concat', 'Neg']);

/**
 * True when `value` is computed from the graph inputs without any weighted op (a rotary cos/sin
 * table gathered at run-time positions, a mask): a factor that does not carry a projection's heads.
 */
function fromInputsOnly(ix: GraphIndex, value: string): boolean {
  return ix.upstream(value, 96, (v, p) => {
    if (ix.constant(v) && v !== value) return 'stop';
    if (!p) return 'stop';
    return WEIGHTED.includes(p.opType) ? 'fail' : 'go';
  });
}

const WEIGHTED = ['MatMul', 'MatMulNBits', 'Gemm', 'Conv', 'FusedMatMul', 'Attention', 'MultiHeadAttention', 'Softmax'];

function traceMerge(ix: GraphIndex, li: LinearIndex, p: NodeProto, ins: string[], path: NodeProto[]): { linear: Linear; path: NodeProto[] } | undefined {
  if (p.opType === 'Mul' || p.opType === 'Add' || p.opType === 'Sub') {
    const carried = ins.filter((i) => !fromInputsOnly(ix, i));
    if (carried.length === 1) return traceBackToLinear(ix, li, carried[0]!, [...path, p]);
    ins = carried;
  }
  if (p.opType === 'Concat') {
    // A key/value cache: the past (a graph input) joined with this step's keys or values.
    const carried = ins.filter((i) => !ix.graph.input.some((g) => g.name === i));
    if (carried.length === 1) return traceBackToLinear(ix, li, carried[0]!, [...path, p]);
  }
  const branches = ins.map((i) => traceBackToLinear(ix, li, i, []));
  const first = branches[0];
  if (!first || branches.some((b) => b?.linear !== first.linear)) return undefined;
  return { linear: first.linear, path: [...path, p, ...first.path] };
}

/** True for values computed from Shape ops (run-time shape arithmetic), not activations. */
export function isShapeValue(ix: GraphIndex, value: string, depth = 0): boolean {
  if (depth > 12) return false;
  const p = ix.producer.get(value);
  if (!p) return false;
  if (p.opType === 'Shape' || p.opType === 'Constant' || p.opType === 'ConstantOfShape') return true;
  if (['Concat', 'Unsqueeze', 'Squeeze', 'Gather', 'Cast', 'Slice', 'Div', 'Mul', 'Where', 'Equal', 'Reshape', 'Range', 'ReduceProd', 'Sub', 'Add', 'Transpose', 'Pow', 'Sqrt', 'Mod', 'Floor', 'Ceil'].includes(p.opType)) {
    const ins = p.input.filter((i) => i && !ix.constant(i));
    return ins.length > 0 && ins.every((i) => isShapeValue(ix, i, depth + 1));
  }
  return false;
}

/** Follow single-consumer layout ops forward from `value` until a linear consumes it. */
export function traceForwardToLinear(
  ix: GraphIndex,
  linears: Linear[],
  value: string,
): { linear: Linear; path: NodeProto[] } | undefined {
  let v = value;
  const path: NodeProto[] = [];
  for (let hop = 0; hop < 8; hop++) {
    const uses = ix.uses(v).filter((u) => !onlyFeedsShapes(ix, u));
    if (uses.length !== 1) return undefined;
    const u = uses[0]!;
    const l = linears.find((x) => x.node === (u.name || u.output[0]));
    if (l) return { linear: l, path };
    if (!['Transpose', 'Reshape', 'Identity', 'Cast', 'Dropout'].includes(u.opType)) return undefined;
    path.push(u);
    v = u.output[0]!;
  }
  return undefined;
}

/** True for Shape nodes and nodes whose outputs are only read by Shape nodes (or nothing). */
export function onlyFeedsShapes(ix: GraphIndex, n: NodeProto, depth = 0): boolean {
  if (n.opType === 'Shape') return true;
  if (depth > 2) return false;
  const isOut = n.output.some((o) => ix.graph.output.some((g) => g.name === o));
  if (isOut) return false;
  return n.output.every((o) => ix.uses(o).every((u) => onlyFeedsShapes(ix, u, depth + 1)));
}
