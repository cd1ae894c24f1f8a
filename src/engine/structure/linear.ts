import type { NodeProto } from '../onnx/schema';
import { DataType } from '../onnx/schema';
import { GraphIndex, attrInt } from '../onnx/graph';
import { tensorShape, dataTypeName } from '../onnx/tensor';
import { OptinError } from '../errors';
import type { Linear } from './types';
import { nbitsUnsupported, nbitsWeight } from '../graph/nbits';

/** Ops a value may pass through between a MatMul and its bias Add (keras Tensordot reshapes). */
const BIAS_PASSTHROUGH = new Set(['Reshape']);

/** Node name used to identify a node in structures (its name or first output). */
export function nodeId(n: NodeProto): string {
  return n.name || n.output[0]!;
}

function biasOf(ix: GraphIndex, value: string, width: number): { bias: string; node: NodeProto; output: string } | undefined {
  let v = value;
  for (let hop = 0; hop < 2; hop++) {
    const uses = ix.uses(v);
    for (const u of uses) {
      if (u.opType !== 'Add' || uses.length !== 1) continue;
      const other = u.input[0] === v ? u.input[1]! : u.input[0]!;
      const c = ix.constant(other);
      if (c && c.dims.length === 1 && Number(c.dims[0]) === width) return { bias: other, node: u, output: u.output[0]! };
    }
    const pass = uses.length === 1 && BIAS_PASSTHROUGH.has(uses[0]!.opType) ? uses[0]! : undefined;
    if (!pass) return undefined;
    v = pass.output[0]!;
  }
  return undefined;
}

/** Fused consumers that absorb the bias of the MatMul feeding them, with the bias input index. */
const FUSED_BIAS_INPUT: Record<string, number> = { BiasGelu: 1, FastGelu: 1, SkipLayerNormalization: 4, BiasAdd: 1 };

function fusedBias(ix: GraphIndex, value: string, width: number): { bias: string; node: NodeProto } | undefined {
  const uses = ix.uses(value);
  if (uses.length !== 1) return undefined;
  const u = uses[0]!;
  const idx = FUSED_BIAS_INPUT[u.opType];
  if (idx === undefined || u.input[0] !== value) return undefined;
  const b = u.input[idx];
  const c = b ? ix.constant(b) : undefined;
  if (!c || c.dims.length !== 1 || Number(c.dims[0]) !== width) return undefined;
  return { bias: b!, node: u };
}

/**
 * Interpret a node as a dense projection when its weight is a constant 2-D float matrix.
 * @throws OptinError('unsupported') for float16/quantized weights, naming the node.
 */
export function asLinear(ix: GraphIndex, n: NodeProto): Linear | undefined {
  if (n.opType === 'MatMulNBits') return quantizedLinear(ix, n);
  if (n.opType !== 'MatMul' && n.opType !== 'Gemm') return undefined;
  const wName = n.input[1]!;
  const w = ix.constant(wName);
  if (!w || w.dims.length !== 2) return undefined;
  if (w.dataType !== DataType.FLOAT) {
    throw new OptinError(
      'unsupported',
      `${ix.label(n)} has ${dataTypeName(w.dataType)} weights "${wName}"; OPTIN needs a float32 model (convert float16 or quantized models back to float32 first)`,
    );
  }
  const [r, c] = tensorShape(w) as [number, number];
  if (n.opType === 'Gemm') {
    if (attrInt(n, 'transA', 0) !== 0) return undefined;
    const transposed = attrInt(n, 'transB', 0) === 1;
    const out = transposed ? r : c;
    const cName = n.input[2];
    const cT = cName ? ix.constant(cName) : undefined;
    const bias = cT && cT.dims.length === 1 && Number(cT.dims[0]) === out ? cName : undefined;
    return {
      node: nodeId(n), op: 'Gemm', input: n.input[0]!, weight: wName, transposed,
      inFeatures: transposed ? c : r, outFeatures: out,
      ...(bias ? { bias, biasNode: nodeId(n) } : {}), output: n.output[0]!,
    };
  }
  const base: Linear = {
    node: nodeId(n), op: 'MatMul', input: activationInput(ix, n.input[0]!), weight: wName, transposed: false,
    inFeatures: r, outFeatures: c, output: n.output[0]!,
  };
  const b = biasOf(ix, n.output[0]!, c);
  if (b) return { ...base, bias: b.bias, biasNode: nodeId(b.node), output: b.output };
  const f = fusedBias(ix, n.output[0]!, c);
  if (f) return { ...base, bias: f.bias, biasNode: nodeId(f.node) };
  return base;
}

/** A `MatMulNBits` projection: its weight is the packed codes, read as [out, in] (docs/formats.md). */
function quantizedLinear(ix: GraphIndex, n: NodeProto): Linear {
  const q = nbitsWeight(n)!;
  const why = nbitsUnsupported(ix, q);
  if (why) throw new OptinError('unsupported', `${ix.label(n)} (MatMulNBits) has ${why}; OPTIN reads 2-, 4- and 8-bit block-quantized weights with constant codes, float32 scales and packed zero points: prune the float32 model and quantize the pruned model`);
  const base: Linear = {
    node: nodeId(n), op: 'MatMulNBits', blockSize: q.blockSize, input: n.input[0]!, weight: q.codes, transposed: true, inFeatures: q.K, outFeatures: q.N, output: n.output[0]!,
  };
  if (q.bias) return { ...base, bias: q.bias, biasNode: nodeId(n) };
  const b = biasOf(ix, n.output[0]!, q.N);
  return b ? { ...base, bias: b.bias, biasNode: nodeId(b.node), output: b.output } : base;
}

/** Skip a Reshape that only flattens [batch, seq, D] to [batch*seq, D] before a MatMul (keras Tensordot). */
function activationInput(ix: GraphIndex, value: string): string {
  const p = ix.producer.get(value);
  if (p?.opType === 'Reshape' && !ix.constant(p.input[0]!)) {
    const prev = ix.producer.get(p.input[0]!);
    if (prev && prev.opType !== 'Transpose') return p.input[0]!;
  }
  return value;
}

/** All dense projections of a graph, keyed by the MatMul/Gemm output value. */
export function findLinears(ix: GraphIndex): Map<string, Linear> {
  const out = new Map<string, Linear>();
  for (const n of ix.graph.node) {
    const l = asLinear(ix, n);
    if (l) out.set(n.output[0]!, l);
  }
  return out;
}

/**
 * Refuse a repair that rewrites weights when one of them is block-quantized (`MatMulNBits`):
 * re-quantizing the solved weights would not give the model that was verified.
 * @throws OptinError('unsupported') naming the node and the way on
 */
export function requireFloatWeights(where: string, lins: Linear[], repair: string): void {
  const q = lins.find((l) => l.op === 'MatMulNBits');
  if (q) throw new OptinError('unsupported', `${where}: ${repair} rewrites the weights of "${q.node}", which are block-quantized (MatMulNBits); prune without it, or prune the float32 model and quantize the pruned model`);
}
