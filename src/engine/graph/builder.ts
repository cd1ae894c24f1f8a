import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeType,
  DataType,
  ModelProtoSchema,
  NodeProtoSchema,
  TensorProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
} from '../onnx/schema';

/** Attribute values the builder knows how to encode. */
export type Attr = number | number[] | string | { floats: number[] } | { float: number };

function attribute(name: string, v: Attr): AttributeProto {
  if (typeof v === 'number') return create(AttributeProtoSchema, { name, type: AttributeType.INT, i: BigInt(v) });
  if (typeof v === 'string') return create(AttributeProtoSchema, { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return create(AttributeProtoSchema, { name, type: AttributeType.INTS, ints: v.map(BigInt) });
  if ('floats' in v) return create(AttributeProtoSchema, { name, type: AttributeType.FLOATS, floats: v.floats });
  return create(AttributeProtoSchema, { name, type: AttributeType.FLOAT, f: v.float });
}

/**
 * Appends nodes, constants, inputs and outputs to a graph with unique "optin/" names, emitting
 * opset-appropriate forms (e.g. ReduceSum axes as input from opset 13, attribute before).
 */
export class GraphBuilder {
  private n = 0;
  private taken: Set<string> | undefined;
  constructor(
    readonly graph: GraphProto,
    readonly opset: number,
  ) {}

  /** A fresh value name, never one the graph already uses (a model OPTIN wrote has "optin/" names too). */
  name(hint: string): string {
    if (!this.taken) {
      const g = this.graph;
      this.taken = new Set([...g.input, ...g.output, ...g.initializer].map((v) => v.name));
      for (const nd of g.node) {
        this.taken.add(nd.name);
        for (const o of nd.output) this.taken.add(o);
      }
    }
    let name: string;
    do name = `optin/${hint}_${this.n++}`; while (this.taken.has(name));
    this.taken.add(name);
    return name;
  }

  /** Append a node; returns its first output. */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, hint = op, domain = ''): string {
    const out = this.name(hint);
    this.graph.node.push(create(NodeProtoSchema, {
      opType: op, domain, name: out, input: inputs, output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    }));
    return out;
  }

  /** Insert a node right after `after` in node order (keeps the list topologically sorted). */
  nodeAfter(after: NodeProto | undefined, op: string, inputs: string[], hint = op): string {
    const out = this.name(hint);
    const node = create(NodeProtoSchema, { opType: op, name: out, input: inputs, output: [out] });
    const at = after ? this.graph.node.indexOf(after) + 1 : 0;
    this.graph.node.splice(at, 0, node);
    return out;
  }

  /** Float32 initializer. */
  floats(data: Float32Array, dims: number[], hint = 'const'): string {
    const name = this.name(hint);
    const bytes = new Uint8Array(Float32Array.from(data).buffer);
    this.graph.initializer.push(create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.FLOAT, rawData: bytes }));
    return name;
  }

  /** Int64 (or, with `type`, int32) initializer. */
  ints(data: number[], dims: number[] = [data.length], hint = 'ints', type: number = DataType.INT64): string {
    const name = this.name(hint);
    const bytes = type === DataType.INT32 ? new Uint8Array(Int32Array.from(data).buffer) : new Uint8Array(BigInt64Array.from(data.map(BigInt)).buffer);
    this.graph.initializer.push(create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: type === DataType.INT32 ? DataType.INT32 : DataType.INT64, rawData: bytes }));
    return name;
  }

  /** Declare a float graph input with symbolic or fixed dims. */
  input(name: string, dims: Array<number | string>, elemType = DataType.FLOAT): string {
    this.graph.input.push(valueInfo(name, dims, elemType));
    return name;
  }

  /** Declare a graph output (shape left open). */
  output(name: string, elemType = DataType.FLOAT): void {
    if (!this.graph.output.some((o) => o.name === name)) this.graph.output.push(valueInfo(name, undefined, elemType));
  }

  /** ReduceMean over axes (axes are an input from opset 18, an attribute before). */
  reduceMean(x: string, axes: number[], keepdims: 0 | 1, hint = 'mean'): string {
    if (this.opset >= 18) return this.node('ReduceMean', [x, this.ints(axes)], { keepdims }, hint);
    return this.node('ReduceMean', [x], { axes, keepdims }, hint);
  }

  /** ReduceSum over axes (opset-appropriate). */
  reduceSum(x: string, axes: number[], keepdims: 0 | 1, hint = 'sum'): string {
    if (this.opset >= 13) return this.node('ReduceSum', [x, this.ints(axes)], { keepdims }, hint);
    return this.node('ReduceSum', [x], { axes, keepdims }, hint);
  }

  /** Entries start .. end - 1 of a 1-D tensor (a shape), opset-appropriate. */
  slice1d(v: string, start: number, end: number, hint = 'shape_part'): string {
    if (this.opset >= 10) return this.node('Slice', [v, this.ints([start]), this.ints([end]), this.ints([0])], {}, hint);
    return this.node('Slice', [v], { starts: [start], ends: [end], axes: [0] }, hint);
  }

  /** Reshape to a constant shape (0 copies, -1 infers). */
  reshape(x: string, shape: number[], hint = 'reshape'): string {
    return this.node('Reshape', [x, this.ints(shape)], {}, hint);
  }
}

/** A tensor ValueInfo; dims undefined leaves the shape unspecified. */
export function valueInfo(name: string, dims: Array<number | string> | undefined, elemType: number) {
  return create(ValueInfoProtoSchema, {
    name,
    type: {
      value: {
        case: 'tensorType',
        value: {
          elemType,
          ...(dims
            ? { shape: { dim: dims.map((d) => ({ value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d } })) } }
            : {}),
        },
      },
    },
  });
}

/** A small standalone model (opset 17, IR 8) around `graph`, serialised for onnxruntime. */
export function modelBytes(graph: GraphProto, producerName: string): Uint8Array {
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, { irVersion: 8n, producerName, opsetImport: [{ domain: '', version: 17n }], graph }));
}
