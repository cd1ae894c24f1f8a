import type { NodeProto } from '../onnx/schema';
import { GraphIndex, attrInt, attrInts } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import { OptinError } from '../errors';
import { nodeId } from './linear';
import { LinearIndex, traceBackToLinear, traceForwardToLinear } from './trace';
import type { AttentionSite, Linear } from './types';
import type { HeadOp } from '../groups/headOps';

/** Ops between the query-key MatMul and the Softmax: masks, scales, biases. */
export const SCORE_OPS = new Set(['Add', 'Sub', 'Div', 'Mul', 'Where', 'Cast', 'Identity']);

/**
 * The query-key MatMul (two activations) a Softmax's scores come from, through masks and scales
 * (and, with `throughReshape`, through Reshapes too: Swin's shifted-window mask is added on a 5-D view).
 */
export function findScoresMatMul(ix: GraphIndex, value: string, depth = 0, throughReshape = false): NodeProto | undefined {
  if (depth > 6) return undefined;
  const p = ix.producer.get(value);
  if (!p) return undefined;
  if ((p.opType === 'MatMul' || p.opType === 'FusedMatMul') && p.input.every((i) => !ix.constant(i))) return p;
  if (!SCORE_OPS.has(p.opType) && !(throughReshape && p.opType === 'Reshape')) return undefined;
  for (const i of p.input) {
    if (!i || ix.constant(i) || (p.opType === 'Reshape' && i !== p.input[0])) continue;
    const hit = findScoresMatMul(ix, i, depth + 1, throughReshape);
    if (hit) return hit;
  }
  return undefined;
}

/** `{ cache }` for an attention whose K/V paths join a key/value cache, else nothing. */
export function withCache(ix: GraphIndex, paths: NodeProto[][]): { cache?: string[] } {
  const cache = cacheOf(ix, paths);
  return cache.length ? { cache } : {};
}

/** Key/value-cache graph inputs joined into K or V on these paths, and the graph outputs those joins write. */
export function cacheOf(ix: GraphIndex, paths: NodeProto[][]): string[] {
  const inputs = new Set(ix.graph.input.map((i) => i.name)), outputs = new Set(ix.graph.output.map((o) => o.name));
  const found: string[] = [];
  for (const n of paths.flat()) {
    if (n.opType !== 'Concat') continue;
    for (const i of n.input) if (inputs.has(i)) found.push(i);
    if (n.input.some((i) => inputs.has(i)) && outputs.has(n.output[0]!)) found.push(n.output[0]!);
  }
  return [...new Set(found)];
}

/**
 * A Reshape on a Q or V path whose result is unfolded as nn.MultiheadAttention's export does (heads
 * folded into the batch axis, [seq, batch*heads, size], then Transpose [1,0,2], or a FusedMatMul
 * transposing that operand's batch axes).
 */
function foldOn(ix: GraphIndex, path: NodeProto[]): NodeProto | undefined {
  return path.find((r) => {
    if (r.opType !== 'Reshape') return false;
    const uses = ix.uses(r.output[0]!);
    const u = uses.length === 1 ? uses[0]! : undefined;
    // onnxruntime's optimizer folds that Transpose into FusedMatMul's transBatchA/transBatchB.
    return u?.opType === 'Transpose'
      ? attrInts(u, 'perm')?.join(',') === '1,0,2'
      : u?.opType === 'FusedMatMul' && attrInt(u, u.input[0] === r.output[0] ? 'transBatchA' : 'transBatchB', 0) === 1;
  });
}

/**
 * Find the attention around an unfused Softmax: scores from Q and K projections, the probabilities
 * times V, read by an output projection. Undefined when the Softmax's output is not multiplied by
 * another activation (not attention probabilities); why not, in words, when it is but the rest is
 * not found.
 */
export function attentionFromSoftmax(ix: GraphIndex, li: LinearIndex, softmax: NodeProto): AttentionSite | string | undefined {
  let probs = softmax.output[0]!;
  for (let hop = 0; hop < 3; hop++) {
    const u = ix.uses(probs);
    if (u.length === 1 && ['Dropout', 'Cast', 'Identity'].includes(u[0]!.opType)) probs = u[0]!.output[0]!;
    else break;
  }
  const plainFused = (u: NodeProto): boolean => attrInt(u, 'transA', 0) === 0 && attrInt(u, 'transB', 0) === 0 && attrInt(u, 'transBatchA', 0) === 0 && attrInt(u, 'alpha', 1) === 1;
  const pv = ix.uses(probs).find((u) => (u.opType === 'MatMul' || (u.opType === 'FusedMatMul' && plainFused(u))) && u.input[0] === probs);
  if (!pv) {
    const via = ix.uses(probs)[0];
    return via && productAhead(ix, probs) ? `its probabilities reach the product with the values through ${ix.label(via)}, which has no rule (they may be mixed across heads)` : undefined;
  }
  if (ix.constant(pv.input[1]!)) return undefined;
  const qk = findScoresMatMul(ix, softmax.input[0]!, 0, true);
  if (!qk) return 'its scores are not a product of two activations reached through masks and scales only';
  const q = traceBackToLinear(ix, li, qk.input[0]!);
  const k = traceBackToLinear(ix, li, qk.input[1]!);
  const v = traceBackToLinear(ix, li, pv.input[1]!);
  if (!q || !k || !v) return `its ${!q ? 'query' : !k ? 'key' : 'value'} does not come from a projection with a constant weight`;
  const out = traceForwardToLinear(ix, li.all, pv.output[0]!);
  if (!out) return 'its context does not reach an output projection';
  const packed = q.linear === k.linear && k.linear === v.linear;
  if (!packed && (q.linear === k.linear || k.linear === v.linear || q.linear === v.linear)) return 'two of its query, key and value come from one projection and the third from another';
  let folded: AttentionSite['folded'];
  let input = q.linear.input;
  if (foldOn(ix, q.path)) {
    const vFold = foldOn(ix, v.path);
    const t = ix.producer.get(q.linear.input);
    if (!vFold) throw new OptinError('unsupported', `attention at ${ix.label(softmax)}: the query folds its heads into the batch axis but the value path does not`);
    if (t?.opType !== 'Transpose' || attrInts(t, 'perm')?.join(',') !== '1,0,2') {
      throw new OptinError('unsupported', `attention at ${ix.label(softmax)}: heads are folded into the batch axis of a sequence-first tensor that is not a Transpose [1,0,2] of the batch-first layer input; ${SEQUENCE_FIRST}`);
    }
    folded = { v: vFold.input[0]!, pv: pv.output[0]! };
    input = t.input[0]!;
  }
  return {
    layout: packed ? 'packed' : 'separate',
    projections: packed ? [q.linear] : [q.linear, k.linear, v.linear],
    output: out.linear,
    input,
    context: out.linear.input,
    ...(folded ? { folded } : { perHead: pv.output[0]! }),
    ...withCache(ix, [k.path, v.path]),
    core: nodeId(softmax),
  };
}

/** Whether a product of two activations (probabilities times values) lies within a few single-path steps after `value`. */
function productAhead(ix: GraphIndex, value: string): boolean {
  let v = value;
  for (let hop = 0; hop < 4; hop++) {
    const uses = ix.uses(v);
    if (uses.length !== 1) return false;
    const u = uses[0]!;
    if ((u.opType === 'MatMul' || u.opType === 'FusedMatMul') && u.input.every((i) => !ix.constant(i))) return hop > 0;
    v = u.output[0]!;
  }
  return false;
}

/** The end of the message for a sequence-first stack the batch-first rewrite could not handle (structure/streamLayout.ts). */
export const SEQUENCE_FIRST = 'sequence-first models whose stream cannot be made batch-first are not supported';

function outputProjection(ix: GraphIndex, li: LinearIndex, value: string): { linear: Linear & { einsum?: boolean } } | undefined {
  const direct = traceForwardToLinear(ix, li.all, value);
  if (direct) return { linear: direct.linear };
  const uses = ix.uses(value);
  const r = uses.length === 1 && uses[0]!.opType === 'Reshape' ? uses[0]! : undefined;
  const e = r ? ix.uses(r.output[0]!).find((u) => u.opType === 'Einsum') : undefined;
  const w = e ? ix.constant(e.input[1]!) : undefined;
  if (!r || !e || !w || w.dims.length !== 3) return undefined;
  const [h, d, D] = tensorShape(w) as [number, number, number];
  const addU = ix.uses(e.output[0]!);
  const add = addU.length === 1 && addU[0]!.opType === 'Add' ? addU[0]! : undefined;
  const bias = add?.input.find((i) => { const c = ix.constant(i); return c && c.dims.length === 1 && Number(c.dims[0]) === D; });
  return {
    linear: {
      node: nodeId(e), op: 'MatMul', input: value, weight: e.input[1]!, transposed: false, inFeatures: h * d, outFeatures: D,
      ...(bias && add ? { bias, biasNode: nodeId(add) } : {}), output: add && bias ? add.output[0]! : e.output[0]!, einsum: true,
    },
  };
}

/** Find a fused com.microsoft Attention layer (causal with `unidirectional=1`: decoders). */
export function attentionFromFused(ix: GraphIndex, li: LinearIndex, n: NodeProto): AttentionSite {
  const w = ix.constant(n.input[1]!);
  if (!w || w.dims.length !== 2 || attrInt(n, 'num_heads', 0) <= 0) {
    throw new OptinError('unsupported', `${ix.label(n)}: fused Attention without constant 2-D weights or num_heads is not supported`);
  }
  if (n.input[4] || n.output[1]) {
    throw new OptinError('unsupported', `${ix.label(n)}: fused Attention with a key/value cache (past input, present output) is not supported yet; prune the model exported without a cache`);
  }
  const out = outputProjection(ix, li, n.output[0]!);
  if (!out) throw new OptinError('unsupported', `${ix.label(n)}: its output does not feed a recognisable output projection`);
  return { layout: 'fused-attention', projections: [], output: out.linear, input: n.input[0]!, context: n.output[0]!, core: nodeId(n) };
}

/**
 * Find the attention at a fused attention op ({@link HeadOp}: MultiHeadAttention, GroupQueryAttention,
 * ONNX Attention): its query, key and value traced back to separate projections, its output to the
 * output projection. Its heads come from the propagation's rule for the op (groups/headOps.ts).
 * @throws OptinError with the op's refusal (a cache, a bias with a head axis...), or when the
 * projections are not found, naming the node.
 */
export function attentionFromHeadOp(ix: GraphIndex, li: LinearIndex, n: NodeProto, op: HeadOp): AttentionSite {
  const refusal = op.refuse(n);
  if (refusal) throw new OptinError(refusal.code, `${ix.label(n)}${refusal.code === 'decoder' ? ' ' : ': '}${refusal.why}`);
  const [q, k, v] = op.heads.map((i) => (n.input[i] ? traceBackToLinear(ix, li, n.input[i]!)?.linear : undefined));
  const out = outputProjection(ix, li, n.output[0]!);
  if (!q || !k || !v || new Set([q, k, v]).size < 3 || !out) {
    throw new OptinError('unsupported', `${ix.label(n)}: expected separate query, key and value projections (MatMul or Gemm with constant weights) and an output projection`);
  }
  return { layout: op.layout, projections: [q, k, v], output: out.linear, input: q.input, context: n.output[0]!, core: nodeId(n) };
}
