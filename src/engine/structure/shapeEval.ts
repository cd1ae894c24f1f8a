import { GraphIndex, attrInts } from '../onnx/graph';

/** One element of a partially known integer vector, with the constant that supplies it. */
export interface ShapeElem {
  value: number | null;
  /** Constant tensor the value was read from (literal or via Unsqueeze/Concat/Cast). */
  holder?: string;
  index?: number;
  /** Set when the value is computed at run time from a constant operand (e.g. Div(dim, heads)). */
  computedFrom?: { node: string; holder: string; op: string; constant: number };
}

const PASS = new Set(['Cast', 'Squeeze', 'Unsqueeze', 'Identity']);

/**
 * Evaluate a shape-like int vector as far as constants allow. Unknown run-time entries are null.
 * Returns undefined when even the length is unknown.
 */
export function evalShape(ix: GraphIndex, value: string, depth = 0): ShapeElem[] | undefined {
  if (depth > 24) return undefined;
  const ints = ix.constInts(value);
  if (ints) {
    const holder = ix.initializer.has(value) ? value : (ix.producer.get(value)?.output[0] ?? value);
    return ints.map((v, index) => ({ value: v, holder, index }));
  }
  const n = ix.producer.get(value);
  if (!n) return undefined;
  if (PASS.has(n.opType)) return evalShape(ix, n.input[0]!, depth + 1);
  switch (n.opType) {
    case 'Concat': {
      const parts: ShapeElem[] = [];
      for (const i of n.input) {
        const p = evalShape(ix, i, depth + 1);
        if (!p) return undefined;
        parts.push(...p);
      }
      return parts;
    }
    case 'Gather': {
      const idx = ix.constInts(n.input[1]!);
      if (!idx) return undefined;
      const src = evalShape(ix, n.input[0]!, depth + 1);
      if (!src) return idx.map(() => ({ value: null }));
      return idx.map((i) => src[i < 0 ? src.length + i : i] ?? { value: null });
    }
    case 'Slice': {
      const starts = ix.constInts(n.input[1]!) ?? attrInts(n, 'starts');
      const ends = (n.input[2] ? ix.constInts(n.input[2]) : undefined) ?? attrInts(n, 'ends');
      if (!starts || !ends || starts.length !== 1) return undefined;
      const s = starts[0]!;
      const e = ends[0]!;
      const src = evalShape(ix, n.input[0]!, depth + 1);
      if (src) return src.slice(s, Number.isFinite(e) ? e : undefined);
      if (s >= 0 && Number.isFinite(e) && e >= s) return Array.from({ length: e - s }, () => ({ value: null }));
      return undefined;
    }
    case 'Div':
    case 'Mul': {
      const a = evalShape(ix, n.input[0]!, depth + 1);
      const b = evalShape(ix, n.input[1]!, depth + 1);
      if (!a || !b || a.length !== 1 || b.length !== 1) return undefined;
      const [x, y] = [a[0]!, b[0]!];
      if (x.value !== null && y.value !== null) {
        return [{ value: n.opType === 'Div' ? Math.trunc(x.value / y.value) : x.value * y.value }];
      }
      const k = y.value !== null ? y : x.value !== null ? x : undefined;
      if (k?.holder !== undefined && k.value !== null) {
        return [{ value: null, computedFrom: { node: n.name || n.output[0]!, holder: k.holder, op: n.opType, constant: k.value } }];
      }
      return [{ value: null }];
    }
    case 'ReduceProd':
    case 'ReduceSum':
      return [{ value: null }];
    default:
      return undefined;
  }
}
