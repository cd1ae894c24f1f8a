import type { NodeProto } from '../onnx/schema';
import type { GraphIndex } from '../onnx/graph';
import type { GraphBuilder } from '../graph/builder';
import { evalShape, type ShapeElem } from '../structure/shapeEval';

/** Ops a pruned width flows through unchanged on its way between two projections. */
const FLOW = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Erf', 'Tanh', 'Sigmoid', 'Relu', 'Gelu', 'FastGelu', 'BiasGelu', 'QuickGelu',
  'Cast', 'Identity', 'Dropout', 'Reshape', 'Transpose', 'Split', 'Gather', 'Squeeze', 'Unsqueeze', 'Slice',
]);

/** What a Reshape on a pruned path must produce in place of the original numbers. */
export interface WidthChange {
  heads: number;
  newHeads: number;
  /** Head size, or 0 for FFN neurons (no head axis). */
  headSize: number;
  /** Old and new width of the merged [.., heads*size] axis. */
  width: number;
  newWidth: number;
}

function positions(shape: Array<number | null>, c: WidthChange): Map<number, number> {
  const r = shape.length;
  const fix = new Map<number, number>();
  const eq = (i: number, v: number): boolean => shape[i] === v;
  if (c.headSize > 0 && r >= 5 && (eq(r - 3, 3) || eq(r - 2, 3))) {
    const h = eq(r - 3, 3) ? r - 2 : r - 3;
    fix.set(h, c.newHeads).set(r - 1, c.headSize);
    return fix;
  }
  if (c.headSize > 0 && r >= 4) {
    for (let i = r - 2; i >= 1; i--) {
      const open = (j: number): boolean => shape[j] === null || shape[j] === -1;
      if ((eq(i, c.heads) || open(i)) && (eq(i + 1, c.headSize) || open(i + 1))) {
        fix.set(i, c.newHeads).set(i + 1, c.headSize);
        return fix;
      }
    }
  }
  const last = shape[r - 1];
  if (last === c.width || last === null) fix.set(r - 1, c.newWidth);
  return fix;
}

/** [seq, batch*heads, size] (heads folded into the batch axis) becomes [seq, -1, size]. */
function folded(elems: ShapeElem[], c: WidthChange): Map<number, number> | undefined {
  if (c.headSize <= 0 || elems.length !== 3) return undefined;
  const bh = elems[1]!;
  const byHeads = bh.computedFrom?.op === 'Mul' && bh.computedFrom.constant === c.heads;
  if (!byHeads) return undefined;
  return new Map([[1, -1], [2, c.headSize]]);
}

/**
 * Rewrites the shape input of every Reshape between a pruned projection and the op that consumes
 * its heads (or neurons), so the graph computes the narrower width: constant shapes become new
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
    this.rewrite(n, elems, folded(elems, c) ?? positions(elems.map((e) => e.value), c));
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

  /**
   * A Reshape of the attention scores ([.., heads, queries, keys], e.g. Swin's 5-D view for its
   * shifted-window mask): the literal head count third from the end becomes `newHeads`.
   */
  scoresView(n: NodeProto, heads: number, newHeads: number): void {
    if (this.done.has(n)) return;
    this.done.add(n);
    const elems = evalShape(this.ix, n.input[1]!);
    const r = elems?.length ?? 0;
    if (!elems || r < 3 || elems[r - 3]!.value !== heads) return;
    this.rewrite(n, elems, new Map([[r - 3, newHeads]]));
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
