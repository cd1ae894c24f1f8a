import { create } from '@bufbuild/protobuf';
import { DataType, TensorProtoSchema } from '../onnx/schema';
import type { GraphIndex } from '../onnx/graph';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
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
 * Weights of a graph being pruned: reads originals (initializers or Constant nodes) and adds cut
 * copies under new names, so a tensor shared with untouched nodes is never changed behind their back.
 */
export class TensorStore {
  private n = 0;
  /** Names the graph already has (a model rewritten by an earlier store, e.g. refit after a consumer refit, keeps its `.optin.N` names). */
  private readonly taken: Set<string>;
  constructor(private readonly ix: GraphIndex) {
    this.taken = new Set([...ix.graph.initializer.map((t) => t.name), ...ix.graph.node.flatMap((n) => n.output)]);
  }

  /** Float32 contents of a constant (a view; never mutate it). */
  read(name: string): Dense {
    const t = this.ix.constant(name);
    if (!t) throw new OptinError('unsupported', `weight "${name}" is not a constant; cannot prune it`);
    if (t.dataType !== DataType.FLOAT) throw new OptinError('unsupported', `weight "${name}" is not float32`);
    return { data: tensorFloat32(t, this.ix.ext), dims: tensorShape(t) };
  }

  /** Add a new float32 initializer derived from `base`; returns its name. */
  write(base: string, t: Dense): string {
    return this.writeRaw(base, t.dims, DataType.FLOAT, new Uint8Array(t.data.buffer as ArrayBuffer, t.data.byteOffset, t.data.byteLength));
  }

  /** Add a new initializer of any type from its little-endian bytes; returns its name. */
  writeRaw(base: string, dims: number[], dataType: number, bytes: Uint8Array): string {
    let name: string;
    do name = `${base}.optin.${this.n++}`; while (this.taken.has(name));
    this.taken.add(name);
    this.ix.graph.initializer.push(create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType, rawData: bytes as Uint8Array<ArrayBuffer> }));
    return name;
  }
}

/** Column (or element) indices of the given heads in a [.., heads*size] layout. */
export function headColumns(heads: readonly number[], size: number, offset = 0): number[] {
  return heads.flatMap((h) => Array.from({ length: size }, (_, j) => offset + h * size + j));
}
