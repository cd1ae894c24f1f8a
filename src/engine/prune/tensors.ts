import { create } from '@bufbuild/protobuf';
import { DataType, TensorProtoSchema, type GraphProto, type TensorProto } from '../onnx/schema';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
import type { ExternalDataContext } from '../onnx/externalData';
import { OptinError } from '../errors';

/** A float32 tensor held in memory while it is being cut. */
export interface Dense {
  data: Float32Array;
  dims: number[];
}

/** Select indices `idx` along `axis` of a row-major tensor. */
export function take(t: Dense, axis: number, idx: readonly number[]): Dense {
  const outer = t.dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = t.dims[axis]!;
  const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * idx.length * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < idx.length; k++) {
      const src = (o * n + idx[k]!) * inner;
      out.set(t.data.subarray(src, src + inner), (o * idx.length + k) * inner);
    }
  }
  const dims = [...t.dims];
  dims[axis] = idx.length;
  return { data: out, dims };
}

/** Multiply slice i along `axis` by s[i] (in place). */
export function scaleAlong(t: Dense, axis: number, s: ArrayLike<number>): Dense {
  const outer = t.dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = t.dims[axis]!;
  const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < n; k++) {
      const f = s[k]!;
      if (f === 1) continue;
      const base = (o * n + k) * inner;
      for (let r = 0; r < inner; r++) t.data[base + r]! *= f;
    }
  }
  return t;
}

/**
 * Initializers of a graph being pruned: reads originals once and writes cut copies under new
 * names, so a tensor shared with untouched nodes is never changed behind their back.
 */
export class TensorStore {
  private readonly byName = new Map<string, TensorProto>();
  private readonly cache = new Map<string, Dense>();
  private n = 0;
  constructor(
    private readonly graph: GraphProto,
    private readonly ext?: ExternalDataContext,
  ) {
    for (const t of graph.initializer) this.byName.set(t.name, t);
  }

  /** Has an initializer of this name. */
  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Float32 contents of an initializer (or a Constant node's tensor, passed in). */
  read(name: string, constant?: TensorProto): Dense {
    const hit = this.cache.get(name);
    if (hit) return { data: hit.data.slice(), dims: [...hit.dims] };
    const t = constant ?? this.byName.get(name);
    if (!t) throw new OptinError('unsupported', `weight "${name}" is not an initializer; cannot prune it`);
    if (t.dataType !== DataType.FLOAT) throw new OptinError('unsupported', `weight "${name}" is not float32`);
    const d = { data: tensorFloat32(t, this.ext), dims: tensorShape(t) };
    this.cache.set(name, d);
    return { data: d.data.slice(), dims: [...d.dims] };
  }

  /** Add a new float32 initializer derived from `base`; returns its name. */
  write(base: string, t: Dense): string {
    const name = `${base}.optin.${this.n++}`;
    const bytes = new Uint8Array(t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength);
    const proto = create(TensorProtoSchema, { name, dims: t.dims.map(BigInt), dataType: DataType.FLOAT, rawData: bytes });
    this.graph.initializer.push(proto);
    this.byName.set(name, proto);
    return name;
  }

  /** Add a new int64 initializer; returns its name. */
  writeInts(base: string, values: number[]): string {
    const name = `${base}.optin.${this.n++}`;
    const bytes = new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
    const proto = create(TensorProtoSchema, { name, dims: [BigInt(values.length)], dataType: DataType.INT64, rawData: bytes });
    this.graph.initializer.push(proto);
    this.byName.set(name, proto);
    return name;
  }
}

/** Column (or element) indices of the given heads in a [.., heads*size] layout. */
export function headColumns(heads: readonly number[], size: number, offset = 0): number[] {
  return heads.flatMap((h) => Array.from({ length: size }, (_, j) => offset + h * size + j));
}
