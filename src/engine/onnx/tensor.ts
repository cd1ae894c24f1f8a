import { DataLocation, DataType, type ModelProto, type TensorProto } from './schema';
import { OptinError } from '../errors';
import { readExternal, type ExternalDataContext } from './externalData';

/** Human name of an ONNX element type, e.g. "float16". */
export function dataTypeName(dt: number): string {
  const name = DataType[dt as DataType];
  return name ? name.toLowerCase() : `type ${dt}`;
}

/** Number of elements of a tensor from its dims (int64 dims checked against 2^53). */
export function elementCount(dims: readonly bigint[]): number {
  let n = 1;
  for (const d of dims) n *= dimToNumber(d);
  return n;
}

/** Convert an int64 dimension to a JS number, refusing values that would lose precision. */
export function dimToNumber(d: bigint): number {
  if (d > BigInt(Number.MAX_SAFE_INTEGER) || d < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new OptinError('unsupported', `dimension ${d} does not fit in a double without loss`);
  }
  return Number(d);
}

/**
 * Move values stored in typed repeated fields (float_data, int32_data, int64_data, double_data...)
 * into raw_data once, so every later access is a byte view. Returns true if it changed the tensor.
 */
export function normalizeToRaw(t: TensorProto): boolean {
  if (t.dataLocation === DataLocation.EXTERNAL || t.rawData.length > 0) return false;
  const dt = t.dataType as DataType;
  let bytes: Uint8Array | undefined;
  if (dt === DataType.FLOAT && t.floatData.length) bytes = u8(Float32Array.from(t.floatData));
  else if (dt === DataType.DOUBLE && t.doubleData.length) bytes = u8(Float64Array.from(t.doubleData));
  else if (dt === DataType.INT64 && t.int64Data.length) bytes = u8(BigInt64Array.from(t.int64Data));
  else if (dt === DataType.UINT64 && t.uint64Data.length) bytes = u8(BigUint64Array.from(t.uint64Data));
  else if (dt === DataType.UINT32 && t.uint64Data.length)
    bytes = u8(Uint32Array.from(t.uint64Data, (v) => Number(v)));
  else if (t.int32Data.length) {
    switch (dt) {
      case DataType.INT32: bytes = u8(Int32Array.from(t.int32Data)); break;
      case DataType.INT16: bytes = u8(Int16Array.from(t.int32Data)); break;
      case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16:
        bytes = u8(Uint16Array.from(t.int32Data)); break;
      case DataType.INT8: bytes = u8(Int8Array.from(t.int32Data)); break;
      case DataType.UINT8: case DataType.BOOL: bytes = u8(Uint8Array.from(t.int32Data)); break;
    }
  }
  if (!bytes) return false;
  t.rawData = bytes as Uint8Array<ArrayBuffer>;
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.uint64Data = [];
  return true;
}

function u8(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The raw little-endian bytes of a tensor, reading external data on demand. */
export function tensorBytes(t: TensorProto, ext?: ExternalDataContext): Uint8Array {
  if (t.dataLocation === DataLocation.EXTERNAL) {
    if (!ext) throw new OptinError('io', `tensor "${t.name}" uses external data but the model folder is unknown`);
    return readExternal(t, ext);
  }
  normalizeToRaw(t);
  return t.rawData;
}

function aligned(bytes: Uint8Array, width: number): Uint8Array {
  if (bytes.byteOffset % width === 0) return bytes;
  return new Uint8Array(bytes);
}

function checkType(t: TensorProto, expected: DataType[]): void {
  if (!expected.includes(t.dataType as DataType)) {
    throw new OptinError(
      'unsupported',
      `tensor "${t.name}" has element type ${dataTypeName(t.dataType)}; expected ${expected.map(dataTypeName).join(' or ')}`,
    );
  }
}

/** Tensor values as Float32Array (float32 tensors only). The view may alias the model buffer. */
export function tensorFloat32(t: TensorProto, ext?: ExternalDataContext): Float32Array {
  checkType(t, [DataType.FLOAT]);
  const b = aligned(tensorBytes(t, ext), 4);
  const n = elementCount(t.dims);
  if (b.byteLength !== n * 4) {
    throw new OptinError('corrupt', `tensor "${t.name}" holds ${b.byteLength} bytes but its shape needs ${n * 4}`);
  }
  return new Float32Array(b.buffer, b.byteOffset, n);
}

/** Integer tensor values (int64 or int32) as JS numbers, refusing values beyond 2^53. */
export function tensorInts(t: TensorProto, ext?: ExternalDataContext): number[] {
  checkType(t, [DataType.INT64, DataType.INT32]);
  const b = tensorBytes(t, ext);
  const n = elementCount(t.dims);
  if (t.dataType === DataType.INT64) {
    const a = aligned(b, 8);
    if (a.byteLength !== n * 8) throw new OptinError('corrupt', `tensor "${t.name}" has ${a.byteLength} bytes, expected ${n * 8}`);
    return Array.from(new BigInt64Array(a.buffer, a.byteOffset, n), intOrInfinity);
  }
  const a = aligned(b, 4);
  if (a.byteLength !== n * 4) throw new OptinError('corrupt', `tensor "${t.name}" has ${a.byteLength} bytes, expected ${n * 4}`);
  return Array.from(new Int32Array(a.buffer, a.byteOffset, n));
}

/** int64 value as a number; values beyond 2^53 (INT64_MAX "to the end" sentinels) become +/-Infinity. */
function intOrInfinity(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Infinity;
  if (v < BigInt(Number.MIN_SAFE_INTEGER)) return -Infinity;
  return Number(v);
}

/** Shape of a tensor as numbers. */
export function tensorShape(t: TensorProto): number[] {
  return t.dims.map(dimToNumber);
}

/** Floating-point element types (float32, float16, float64, bfloat16). */
export const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);

/**
 * Parameters of a model: the elements of its floating-point weights, in initializers and in
 * `Constant` nodes (as paddle2onnx writes them); a block-quantized `MatMulNBits` weight counts its
 * K x N entries (its scales are not counted).
 */
export function countParameters(proto: ModelProto): number {
  const g = proto.graph!;
  let n = 0;
  const scales = new Set<string>();
  for (const node of g.node) {
    if (node.opType !== 'MatMulNBits') continue;
    const attr = (name: string): number => Number(node.attribute.find((a) => a.name === name)?.i ?? 0);
    n += attr('K') * attr('N');
    if (node.input[2]) scales.add(node.input[2]);
  }
  for (const t of g.initializer) if (FLOAT_TYPES.has(t.dataType) && !scales.has(t.name)) n += elementCount(t.dims);
  for (const node of g.node) {
    if (node.opType !== 'Constant') continue;
    const t = node.attribute.find((a) => a.name === 'value')?.t;
    if (t && FLOAT_TYPES.has(t.dataType)) n += elementCount(t.dims);
  }
  return n;
}
