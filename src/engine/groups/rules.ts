import type { NodeProto } from '../onnx/schema';
import { attrInt, attrInts, type GraphIndex } from '../onnx/graph';

/** The product of dims (1 for none). */
export const prod = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);

/** Ops applied element by element to one input: channel i in, channel i out. */
export const UNARY = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Erf', 'Gelu', 'QuickGelu', 'Softplus',
  'Softsign', 'Mish', 'Clip', 'Identity', 'Dropout', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'ThresholdedRelu',
]);

/**
 * Elementwise ops of several inputs (with broadcasting); onnxruntime's fused `BiasGelu` and
 * `FastGelu` add their (optional) bias, one value per channel, before the activation.
 */
export const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'BiasGelu', 'FastGelu']);

/** Ops that sum their inputs: two computed inputs carrying the channels make a residual stream. */
export const SUMS = new Set(['Add', 'Sub', 'Sum', 'Mean']);

/** Pooling ops that keep the channel axis (1) and change the spatial ones. */
export const POOLS = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalLpPool']);

/** Reductions whose axes come from an attribute (or input 1 from opset 18). */
export const REDUCES = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceL2', 'ReduceL1', 'ReduceProd', 'ReduceSumSquare', 'ReduceLogSumExp']);

/**
 * A node whose output channels a group can start from: a Conv with group 1 or a MatMul / Gemm with a
 * constant 2-D weight, reading an activation (not a constant).
 */
export function isWeightProducer(ix: GraphIndex, n: NodeProto): boolean {
  const w = n.input[1] ? ix.constant(n.input[1]) : undefined;
  if (!w || !n.input[0] || ix.constant(n.input[0])) return false;
  if (n.opType === 'Conv') return attrInt(n, 'group', 1) === 1;
  return (n.opType === 'MatMul' || n.opType === 'Gemm') && w.dims.length === 2;
}

/** A Conv whose every output channel reads one input channel (group == in channels == out channels). */
export function isDepthwise(n: NodeProto, weightDims: number[]): boolean {
  const group = attrInt(n, 'group', 1);
  return group > 1 && weightDims[1] === 1 && weightDims[0] === group;
}

/** Axes a reduction removes or collapses (normalised to non-negative), or undefined when not constant. */
export function reducedAxes(ix: GraphIndex, n: NodeProto, rank: number): number[] | undefined {
  const fromAttr = attrInts(n, 'axes');
  const axes = fromAttr ?? (n.input[1] ? ix.constInts(n.input[1]) : Array.from({ length: rank }, (_, i) => i));
  return axes?.map((a) => (a < 0 ? a + rank : a));
}

/**
 * The axis of a Reshape/Flatten output that carries input axis `a`: the one with the same size
 * and the same product of preceding dims (undefined when the channels are split or merged).
 */
export function reshapedAxis(inDims: number[], outDims: number[], a: number): number | undefined {
  const before = inDims.slice(0, a).reduce((x, y) => x * y, 1);
  let p = 1;
  for (let j = 0; j < outDims.length; j++) {
    if (p === before && outDims[j] === inDims[a]) return j;
    p *= outDims[j]!;
  }
  return undefined;
}

/**
 * Where a Reshape puts `width` units held on input axis `a` as `parts` parts of all units, each unit
 * `block` consecutive entries: the output axis holding them, found from the flat layout (the
 * entries before the units, parts included, and each unit's entries with everything after it, are
 * the same in both shapes). A split `[H*d] -> [H, d]` gives block 1, the merge back block `d`,
 * `[kv, g, ...] -> [kv*g, ...]` block `g`, packed `[3*H*d] -> [3, H, d]` moves the parts onto an axis of
 * their own, heads folded into the batch (`[B, H*d] -> [B*H, d]`) become parts. Every output axis
 * that can hold them, the likeliest first (several only when one unit is left: a size-1 axis can hold
 * it, or any axis its entries fill); none when no output axis holds them.
 */
export function reshapedUnits(inDims: number[], outDims: number[], a: number, width: number, u: { block: number; parts: number }): Array<{ axis: number; block: number; parts: number }> {
  if (inDims[a] !== width * u.block * u.parts) return [];
  const outer = prod(inDims.slice(0, a)) * u.parts;
  const unit = u.block * prod(inDims.slice(a + 1));
  const found: Array<{ axis: number; block: number; parts: number }> = [];
  let p = 1;
  for (let j = 0; j < outDims.length; j++) {
    const inner = prod(outDims.slice(j + 1));
    if (unit % inner === 0 && outDims[j]! % (width * (unit / inner)) === 0) {
      const parts = outDims[j]! / (width * (unit / inner));
      if (p * parts === outer) found.push({ axis: j, block: unit / inner, parts });
    }
    p *= outDims[j]!;
  }
  // Several axes fit only when an axis of size 1 can hold the units (one unit left); first an axis of the
  // units alone, where more units would lie ([.., 3, 1, d]: packed Q/K/V of one head), then those that keep the parts.
  const rank = (f: { axis: number; block: number; parts: number }): number => (outDims[f.axis] === width && f.block === 1 && f.parts === 1 ? 0 : f.parts === u.parts ? 1 : 2);
  return found.map((f, i) => ({ f, i })).sort((x, y) => rank(x.f) - rank(y.f) || x.i - y.i).map((x) => x.f);
}

/**
 * The axis of a Gather's output holding data axis `a` (or, `inverse`, the data axis holding output
 * axis `a`), with `indexRank` index dims replacing the gathered axis; -1 when `a` is the gathered
 * axis (or one of the index dims).
 */
export function gatheredAxis(n: NodeProto, a: number, dataRank: number, indexRank: number, inverse = false): number {
  const g = (attrInt(n, 'axis', 0) + dataRank) % dataRank;
  if (a < g) return a;
  if (!inverse) return a === g ? -1 : a + indexRank - 1;
  return a < g + indexRank ? -1 : a - indexRank + 1;
}
