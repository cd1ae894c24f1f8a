import type { NodeProto } from '../onnx/schema';
import { DataType } from '../onnx/schema';
import { GraphIndex, attrInt } from '../onnx/graph';
import { tensorBytes, tensorFloat32, tensorShape } from '../onnx/tensor';
import { OptinError } from '../errors';
import type { Dense, TensorStore } from './tensors';

/**
 * One onnxruntime `MatMulNBits` (com.microsoft) weight: Y = A W^T (+ bias) with W [N, K] stored as
 * `bits`-bit codes in blocks of `blockSize` along K, code c of block b of row n read as
 * (c - zero_point[n, b]) * scale[n, b] (docs/formats.md, "Block-quantized weights").
 */
export interface NBitsWeight {
  node: NodeProto;
  K: number;
  N: number;
  bits: number;
  blockSize: number;
  /** Blocks per row: ceil(K / blockSize). */
  blocks: number;
  /** Input names: packed codes [N, blocks, blockSize * bits / 8], scales [N * blocks] or [N, blocks], zero points (optional). */
  codes: string;
  scales: string;
  zeroPoints?: string;
  bias?: string;
}

/** The quantized weight a `MatMulNBits` node holds, or undefined for any other node. */
export function nbitsWeight(n: NodeProto): NBitsWeight | undefined {
  if (n.opType !== 'MatMulNBits') return undefined;
  const K = attrInt(n, 'K', 0), N = attrInt(n, 'N', 0), bits = attrInt(n, 'bits', 4), blockSize = attrInt(n, 'block_size', 0);
  const zp = n.input[3] || undefined, bias = n.input[5] || undefined;
  return { node: n, K, N, bits, blockSize, blocks: Math.ceil(K / blockSize), codes: n.input[1]!, scales: n.input[2]!, ...(zp ? { zeroPoints: zp } : {}), ...(bias ? { bias } : {}) };
}

/**
 * Why a `MatMulNBits` node cannot be read or cut (non-constant weights, act-order `g_idx`,
 * unusual bit widths), or undefined when it can.
 */
export function nbitsUnsupported(ix: GraphIndex, w: NBitsWeight): string | undefined {
  if (![2, 4, 8].includes(w.bits)) return `${w.bits}-bit codes (2, 4 and 8 are read)`;
  if (w.node.input[4]) return 'an act-order g_idx input';
  if (!w.K || !w.N || !w.blockSize || w.blockSize % 8) return `attributes K=${w.K}, N=${w.N}, block_size=${w.blockSize}`;
  for (const name of [w.codes, w.scales, w.zeroPoints, w.bias]) {
    if (name && !ix.constant(name)) return `input "${name}" is not a constant`;
  }
  const s = ix.constant(w.scales)!;
  if (s.dataType !== DataType.FLOAT) return 'scales that are not float32';
  const z = w.zeroPoints ? ix.constant(w.zeroPoints)! : undefined;
  if (z && z.dataType !== DataType.UINT8) return 'zero points that are not packed uint8';
  if (tensorShape(ix.constant(w.codes)!).join(',') !== [w.N, w.blocks, (w.blockSize * w.bits) / 8].join(',')) return 'codes whose shape is not [N, blocks, block_size * bits / 8]';
  return undefined;
}

/** Unsigned `bits`-bit value i of a low-first packed byte stream starting at `start`. */
function unpack(bytes: Uint8Array, start: number, i: number, bits: number): number {
  const bit = i * bits;
  return (bytes[start + (bit >> 3)]! >> (bit & 7)) & ((1 << bits) - 1);
}

function pack(values: number[], bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((values.length * bits) / 8));
  values.forEach((v, i) => { out[(i * bits) >> 3]! |= v << ((i * bits) & 7); });
  return out;
}

function zeroPointRows(ix: GraphIndex, w: NBitsWeight): number[][] {
  const per = Math.ceil((w.blocks * w.bits) / 8);
  const z = w.zeroPoints ? tensorBytes(ix.constant(w.zeroPoints)!, ix.ext) : undefined;
  return Array.from({ length: w.N }, (_, n) => Array.from({ length: w.blocks }, (_, b) => (z ? unpack(z, n * per, b, w.bits) : 1 << (w.bits - 1))));
}

/** The weight as float32 [N, K] (the [out, in] layout of a transposed Gemm weight), exactly as onnxruntime dequantizes it. */
export function dequantize(ix: GraphIndex, w: NBitsWeight): Dense {
  const codes = tensorBytes(ix.constant(w.codes)!, ix.ext);
  const scales = tensorFloat32(ix.constant(w.scales)!, ix.ext);
  const zp = zeroPointRows(ix, w);
  const blob = (w.blockSize * w.bits) / 8;
  const out = new Float32Array(w.N * w.K);
  for (let n = 0; n < w.N; n++) {
    for (let k = 0; k < w.K; k++) {
      const b = Math.floor(k / w.blockSize);
      const code = unpack(codes, (n * w.blocks + b) * blob, k % w.blockSize, w.bits);
      out[n * w.K + k] = (code - zp[n]![b]!) * scales[n * w.blocks + b]!;
    }
  }
  return { data: out, dims: [w.N, w.K] };
}

/** The quantization blocks that indices `keep` along K cover whole, or undefined when one is split. */
export function wholeBlocks(w: NBitsWeight, keep: readonly number[]): number[] | undefined {
  const kept = new Set(keep);
  const blocks: number[] = [];
  for (let b = 0; b < w.blocks; b++) {
    const span = Array.from({ length: Math.min(w.K, (b + 1) * w.blockSize) - b * w.blockSize }, (_, j) => b * w.blockSize + j);
    const n = span.filter((k) => kept.has(k)).length;
    if (n === span.length) blocks.push(b);
    else if (n) return undefined;
  }
  return blocks;
}

function rawWrite(store: TensorStore, ix: GraphIndex, name: string, dims: number[], bytes: Uint8Array): string {
  return store.writeRaw(name, dims, ix.constant(name)!.dataType, bytes);
}

/**
 * Cut a `MatMulNBits` weight along its output axis (rows of N: codes, scales, zero points, bias)
 * or its input axis (whole blocks of K), rewriting the node's inputs and its N or K attribute. The
 * kept codes are copied, never re-quantized, so the cut weight dequantizes to exactly the kept
 * part of the original.
 * @throws OptinError('unsupported') when the kept input indices split a quantization block
 */
export function cutNBits(ix: GraphIndex, store: TensorStore, w: NBitsWeight, axis: 'out' | 'in', keep: readonly number[], setAttr: (name: string, v: number) => void): void {
  const n = w.node;
  const codes = tensorBytes(ix.constant(w.codes)!, ix.ext);
  const scales = tensorFloat32(ix.constant(w.scales)!, ix.ext);
  const blob = (w.blockSize * w.bits) / 8;
  const zp = zeroPointRows(ix, w);
  const rows = axis === 'out' ? [...keep] : Array.from({ length: w.N }, (_, i) => i);
  let blocks = Array.from({ length: w.blocks }, (_, b) => b);
  if (axis === 'in') {
    const whole = wholeBlocks(w, keep);
    if (!whole) {
      throw new OptinError('unsupported', `${ix.label(n)}: the ${w.bits}-bit weights are quantized in blocks of ${w.blockSize} input rows; the cut keeps part of a block (${keep.length} of ${w.K} rows), which cannot be stored without re-quantizing; prune the float32 model and quantize the pruned model`);
    }
    blocks = whole;
  }
  const outCodes = new Uint8Array(rows.length * blocks.length * blob);
  const outScales = new Float32Array(rows.length * blocks.length);
  rows.forEach((r, i) => blocks.forEach((b, j) => {
    const src = (r * w.blocks + b) * blob;
    outCodes.set(codes.subarray(src, src + blob), (i * blocks.length + j) * blob);
    outScales[i * blocks.length + j] = scales[r * w.blocks + b]!;
  }));
  const scaleDims = tensorShape(ix.constant(w.scales)!).length === 2 ? [rows.length, blocks.length] : [rows.length * blocks.length];
  n.input[1] = rawWrite(store, ix, w.codes, [rows.length, blocks.length, blob], outCodes);
  n.input[2] = store.write(w.scales, { data: outScales, dims: scaleDims });
  if (w.zeroPoints) {
    const per = rows.map((r) => pack(blocks.map((b) => zp[r]![b]!), w.bits));
    const bytes = new Uint8Array(per.reduce((a, p) => a + p.length, 0));
    per.reduce((at, p) => { bytes.set(p, at); return at + p.length; }, 0);
    const zDims = tensorShape(ix.constant(w.zeroPoints)!).length === 2 ? [rows.length, per[0]?.length ?? 0] : [bytes.length];
    n.input[3] = rawWrite(store, ix, w.zeroPoints, zDims, bytes);
  }
  if (axis === 'out') {
    if (w.bias) {
      const bias = tensorFloat32(ix.constant(w.bias)!, ix.ext);
      n.input[5] = store.write(w.bias, { data: Float32Array.from(rows, (r) => bias[r]!), dims: [rows.length] });
    }
    setAttr('N', rows.length);
  } else {
    setAttr('K', keep.length);
  }
}

/** The `MatMulNBits` node that reads `codes` as its packed weight, if any. */
export function nbitsReading(ix: GraphIndex, codes: string): NBitsWeight | undefined {
  const n = ix.uses(codes).find((u) => u.opType === 'MatMulNBits' && u.input[1] === codes);
  return n ? nbitsWeight(n) : undefined;
}

/**
 * A weight's float32 values: a float constant as stored, or the packed codes of a `MatMulNBits`
 * node dequantized to [N, K].
 */
export function floatWeight(ix: GraphIndex, name: string): Dense {
  const q = nbitsReading(ix, name);
  if (q) return dequantize(ix, q);
  const t = ix.constant(name);
  if (!t) throw new OptinError('unsupported', `weight "${name}" is not a constant`);
  return { data: tensorFloat32(t, ix.ext), dims: tensorShape(t) };
}
