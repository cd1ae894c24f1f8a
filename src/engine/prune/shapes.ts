import type { NodeProto } from '../onnx/schema';
import type { GraphIndex } from '../onnx/graph';
import type { GraphBuilder } from '../graph/builder';
import { evalShape, type ShapeElem } from '../structure/shapeEval';

/** Ops a pruned width flows through unchanged on its way between two projections. */
const FLOW = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Erf', 'Tanh', 'Sigmoid', 'Relu', 'Gelu', 'FastGelu', 'BiasGelu', 'QuickGelu',
  'Cast', 'Identity', 'Dropout', 'Reshape', 'Transpose', 'Split', 'Gather', 'Squeeze', 'Unsqueeze', 'Slice',
]);

/** The old and new width of the feed-forward neurons' axis (the last) on a pruned path. */
export interface WidthChange {
  width: number;
  newWidth: number;
}

/** The last entry of a Reshape's shape holds the width (or is computed at run time): it becomes the new width. */
function positions(shape: Array<number | null>, c: WidthChange): Map<number, number> {
  const last = shape[shape.length - 1];
  return last === c.width || last === null ? new Map([[shape.length - 1, c.newWidth]]) : new Map();
}

/**
 * Rewrites the shape input of every Reshape between a pruned feed-forward projection and the
 * matrix that reads its neurons, so the graph computes the narrower width: constant shapes become new
 * initializers, run-time shapes are patched with Slice/Concat. -1 entries are left to infer.
 */
export class ReshapeFixer {
  private readonly done = new Set<NodeProto>();
  constructor(
    private readonly ix: GraphIndex,
    private readonly b: GraphBuilder,
  ) {}

  /** Walk forward from `start` through layout and elementwise ops, fixing Reshapes on the way. */
  walk(start: string, c: WidthChange): void {
    const stack = [start];
    const seen = new Set<string>();
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      for (const n of this.ix.uses(v)) {
        if (!FLOW.has(n.opType)) continue;
        if (n.opType === 'Reshape') {
          if (n.input[0] !== v) continue;
          this.fix(n, c);
        } else if (n.opType === 'Split') {
          if (n.input[0] !== v) continue;
          this.fixSplit(n, c);
        } else if (n.opType !== 'Add' && n.opType !== 'Mul' && n.opType !== 'Sub' && n.opType !== 'Div' && n.input[0] !== v) continue;
        for (const o of n.output) if (o) stack.push(o);
      }
    }
  }

  private fix(n: NodeProto, c: WidthChange): void {
    if (this.done.has(n)) return;
    this.done.add(n);
    const elems = evalShape(this.ix, n.input[1]!);
    if (!elems) return;
    this.rewrite(n, elems, positions(elems.map((e) => e.value), c));
  }

  /**
   * A Split of the pruned width into parts (a packed Q/K/V cut into Q, K and V): each part's
   * literal size scales with the kept width.
   */
  private fixSplit(n: NodeProto, c: WidthChange): void {
    if (this.done.has(n)) return;
    this.done.add(n);
    const attr = n.attribute.find((a) => a.name === 'split');
    const sizes = n.input[1] ? this.ix.constInts(n.input[1]) : attr?.ints.map(Number);
    if (!sizes || sizes.reduce((a, b) => a + b, 0) !== c.width || sizes.some((x) => (x * c.newWidth) % c.width !== 0)) return;
    const next = sizes.map((x) => (x * c.newWidth) / c.width);
    if (n.input[1]) n.input[1] = this.b.ints(next, [next.length], 'split');
    else attr!.ints = next.map(BigInt);
  }

  private rewrite(n: NodeProto, elems: ShapeElem[], fix: Map<number, number>): void {
    const shapeName = n.input[1]!;
    const values = elems.map((e) => e.value);
    for (const [i] of fix) if (values[i] === -1) fix.delete(i);
    if (fix.size === 0) return;
    const lit = this.ix.constInts(shapeName);
    if (lit) {
      const next = [...lit];
      for (const [i, v] of fix) next[i] = v;
      n.input[1] = this.b.ints(next, [next.length], 'shape');
      return;
    }
    const parts: string[] = [];
    let from = 0;
    for (const i of [...fix.keys()].sort((a, b) => a - b)) {
      if (i > from) parts.push(this.b.slice1d(shapeName, from, i));
      parts.push(this.b.ints([fix.get(i)!]));
      from = i + 1;
    }
    if (from < values.length) parts.push(this.b.slice1d(shapeName, from, values.length));
    n.input[1] = this.b.node('Concat', parts, { axis: 0 }, 'shape');
  }
}
