import { AttributeType, type AttributeProto, type GraphProto, type NodeProto, type TensorProto } from './schema';
import { tensorFloat32, tensorInts } from './tensor';
import type { ExternalDataContext } from './externalData';
import { DataType } from './schema';

/** Value of a node attribute, decoded to JS types. */
export type AttrValue = number | string | number[] | string[] | TensorProto | undefined;

/**
 * Read-only index over a graph: who produces and who consumes each value, which values are
 * constant (initializers or Constant nodes).
 */
export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializer = new Map<string, TensorProto>();
  readonly order = new Map<NodeProto, number>();

  constructor(
    readonly graph: GraphProto,
    readonly ext?: ExternalDataContext,
  ) {
    for (const t of graph.initializer) this.initializer.set(t.name, t);
    graph.node.forEach((n, i) => {
      this.order.set(n, i);
      for (const o of n.output) if (o) this.producer.set(o, n);
      for (const inp of n.input) {
        if (!inp) continue;
        const list = this.consumers.get(inp);
        if (list) list.push(n);
        else this.consumers.set(inp, [n]);
      }
    });
  }

  /** Readable label for a node in messages. */
  label(n: NodeProto): string {
    return `${n.opType} node "${n.name || n.output[0]}"`;
  }

  /** Consumers of a value (empty when none). */
  uses(value: string): NodeProto[] {
    return this.consumers.get(value) ?? [];
  }

  /**
   * Whether every value upstream of `value` (itself included, each once; false past `limit` values
   * that are not constants) passes `step`: 'go' continues into its producer's inputs, 'stop' does
   * not look past it, 'fail' ends the walk with false.
   */
  upstream(value: string, limit: number, step: (v: string, producer: NodeProto | undefined) => 'go' | 'stop' | 'fail'): boolean {
    const stack = [value];
    const seen = new Set<string>();
    let computed = 0;
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      if (!this.constant(v) && ++computed > limit) return false;
      const p = this.producer.get(v);
      const s = step(v, p);
      if (s === 'fail') return false;
      if (s === 'go' && p) for (const x of p.input) if (x) stack.push(x);
    }
    return true;
  }

  /** The single consumer of `value` with the given op type, if exactly one exists. */
  useOf(value: string, opType: string | string[]): NodeProto | undefined {
    const ops = Array.isArray(opType) ? opType : [opType];
    const hits = this.uses(value).filter((n) => ops.includes(n.opType));
    return hits.length === 1 ? hits[0] : undefined;
  }

  /** Constant tensor behind a value: an initializer, the output of a Constant node, or an Identity of either. */
  constant(value: string): TensorProto | undefined {
    const init = this.initializer.get(value);
    if (init) return init;
    const p = this.producer.get(value);
    if (p?.opType === 'Constant') {
      const a = p.attribute.find((x) => x.name === 'value');
      if (a?.t) return a.t;
    }
    // torch's exporter shares identical initializers (e.g. every LayerNorm's ones and zeros) through Identity nodes.
    if (p?.opType === 'Identity' && p.input[0] && p.input[0] !== value) return this.constant(p.input[0]);
    return undefined;
  }

  /** Constant integer values behind a value, or undefined if not constant/not integer. */
  constInts(value: string): number[] | undefined {
    const t = this.constant(value);
    if (!t || (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32)) return undefined;
    return tensorInts(t, this.ext);
  }

  /** Constant float32 values behind a value, or undefined. */
  constFloats(value: string): Float32Array | undefined {
    const t = this.constant(value);
    if (!t || t.dataType !== DataType.FLOAT) return undefined;
    return tensorFloat32(t, this.ext);
  }
}

/** Decode one attribute. */
export function attrValue(a: AttributeProto): AttrValue {
  switch (a.type) {
    case AttributeType.INT: return Number(a.i);
    case AttributeType.FLOAT: return a.f;
    case AttributeType.STRING: return new TextDecoder().decode(a.s);
    case AttributeType.INTS: return a.ints.map(Number);
    case AttributeType.FLOATS: return [...a.floats];
    case AttributeType.STRINGS: return a.strings.map((s) => new TextDecoder().decode(s));
    case AttributeType.TENSOR: return a.t;
    default: return undefined;
  }
}

/** Attribute of a node by name. */
export function attr(n: NodeProto, name: string): AttrValue {
  const a = n.attribute.find((x) => x.name === name);
  return a ? attrValue(a) : undefined;
}

/** Integer attribute with a default. */
export function attrInt(n: NodeProto, name: string, dflt: number): number {
  const v = attr(n, name);
  return typeof v === 'number' ? v : dflt;
}

/** Integer-list attribute, or undefined. */
export function attrInts(n: NodeProto, name: string): number[] | undefined {
  const v = attr(n, name);
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
}
