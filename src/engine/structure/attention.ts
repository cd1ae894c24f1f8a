import type { NodeProto } from '../onnx/schema';
import { GraphIndex, attrInt, attrInts } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import { OptinError } from '../errors';
import { nodeId } from './linear';
import { evalShape, type ShapeElem } from './shapeEval';
import { LinearIndex, traceBackToLinear, traceForwardToLinear } from './trace';
import type { AttentionBlock, Linear } from './types';

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

interface HeadGeometry { heads: number; headSize: number; packedOrder?: 'qkv-heads' | 'heads-qkv'; foldedAt?: NodeProto }

/**
 * A Reshape to [seq, batch*heads, size] followed by Transpose [1,0,2] (nn.MultiheadAttention's
 * export, or a FusedMatMul that transposes that operand's batch axes): heads come from the
 * constant the batch is multiplied by, or, once pruned, from the literal size after a -1.
 */
function foldedHeads(ix: GraphIndex, r: NodeProto, shape: ShapeElem[], unit: number): HeadGeometry | undefined {
  const uses = ix.uses(r.output[0]!);
  const u = uses.length === 1 ? uses[0]! : undefined;
  // onnxruntime's optimizer folds that Transpose into FusedMatMul's transBatchA/transBatchB.
  const unfolds = u?.opType === 'Transpose'
    ? attrInts(u, 'perm')?.join(',') === '1,0,2'
    : u?.opType === 'FusedMatMul' && attrInt(u, u.input[0] === r.output[0] ? 'transBatchA' : 'transBatchB', 0) === 1;
  if (!unfolds) return undefined;
  const [, bh, d] = shape as [ShapeElem, ShapeElem, ShapeElem];
  let h: number | undefined;
  if (bh.computedFrom?.op === 'Mul') h = bh.computedFrom.constant;
  else if (bh.value === -1 && d.value !== null && d.value > 0) h = unit / d.value;
  if (!h || !Number.isInteger(h) || unit % h) return undefined;
  return { heads: h, headSize: unit / h, foldedAt: r };
}

/** Read heads and head size from the Reshape that splits a projection into heads. */
function headsFromPath(ix: GraphIndex, path: NodeProto[], width: number, packed: boolean): HeadGeometry | undefined {
  for (const r of path) {
    if (r.opType !== 'Reshape') continue;
    const shape = evalShape(ix, r.input[1]!);
    if (shape?.length === 3) {
      const f = foldedHeads(ix, r, shape, packed ? width / 3 : width);
      if (f) return packed ? { ...f, packedOrder: 'qkv-heads' } : f;
    }
    if (!shape || shape.length < 4) continue;
    let hE: ShapeElem, dE: ShapeElem, order: HeadGeometry['packedOrder'];
    const tail = shape.slice(-3);
    if (packed && shape.length === 5) {
      if (tail[0]!.value === 3) { order = 'qkv-heads'; hE = tail[1]!; dE = tail[2]!; }
      else if (tail[1]!.value === 3) { order = 'heads-qkv'; hE = tail[0]!; dE = tail[2]!; }
      else continue;
    } else {
      hE = shape[shape.length - 2]!;
      dE = shape[shape.length - 1]!;
    }
    const unit = packed ? width / 3 : width;
    let h = hE.value, d = dE.value;
    if (d === -1) d = null;
    if (h === -1) h = null;
    if (h !== null && h > 0 && d === null) d = unit / h;
    if (d !== null && d > 0 && h === null) h = unit / d;
    if (h === null && d === null && dE.computedFrom?.op === 'Div') { h = dE.computedFrom.constant; d = unit / h; }
    if (h === null || d === null || !Number.isInteger(h) || !Number.isInteger(d) || h * d !== unit) continue;
    return { heads: h, headSize: d, ...(order ? { packedOrder: order } : {}) };
  }
  return undefined;
}

/** Detect an attention block around an unfused Softmax. */
export function attentionFromSoftmax(ix: GraphIndex, li: LinearIndex, softmax: NodeProto): AttentionBlock | undefined {
  const qk = findScoresMatMul(ix, softmax.input[0]!, 0, true);
  if (!qk) return undefined;
  let probs = softmax.output[0]!;
  for (let hop = 0; hop < 3; hop++) {
    const u = ix.uses(probs);
    if (u.length === 1 && ['Dropout', 'Cast', 'Identity'].includes(u[0]!.opType)) probs = u[0]!.output[0]!;
    else break;
  }
  const plainFused = (u: NodeProto): boolean => attrInt(u, 'transA', 0) === 0 && attrInt(u, 'transB', 0) === 0 && attrInt(u, 'transBatchA', 0) === 0 && attrInt(u, 'alpha', 1) === 1;
  const pv = ix.uses(probs).find((u) => (u.opType === 'MatMul' || (u.opType === 'FusedMatMul' && plainFused(u))) && u.input[0] === probs);
  if (!pv) return undefined;
  const q = traceBackToLinear(ix, li, qk.input[0]!);
  const k = traceBackToLinear(ix, li, qk.input[1]!);
  const v = traceBackToLinear(ix, li, pv.input[1]!);
  if (!q || !k || !v) return undefined;
  const out = traceForwardToLinear(ix, li.all, pv.output[0]!);
  if (!out) return undefined;
  const packed = q.linear === k.linear && k.linear === v.linear;
  let geom: HeadGeometry | undefined;
  if (packed) {
    geom = headsFromPath(ix, q.path, q.linear.outFeatures, true) ?? headsFromPath(ix, v.path, v.linear.outFeatures, true);
    if (!geom) {
      const perPart = headsFromPath(ix, q.path, q.linear.outFeatures / 3, false);
      if (perPart) geom = { ...perPart, packedOrder: 'qkv-heads' };
    }
  } else {
    if (q.linear === k.linear || k.linear === v.linear || q.linear === v.linear) return undefined;
    geom = headsFromPath(ix, q.path, q.linear.outFeatures, false);
    const vGeom = headsFromPath(ix, v.path, v.linear.outFeatures, false);
    const kGeom = headsFromPath(ix, k.path, k.linear.outFeatures, false);
    if (geom && kGeom && vGeom && kGeom.heads < geom.heads) {
      return groupedQuery(ix, softmax, pv, out, { q: q.linear, k: k.linear, v: v.linear }, geom, kGeom.heads, [k.path, v.path]);
    }
  }
  if (!geom) {
    const folded = q.path.find((r) => r.opType === 'Reshape' && evalShape(ix, r.input[1]!)?.length === 3);
    throw new OptinError(
      'unsupported',
      folded
        ? `attention at ${ix.label(softmax)}: the query path folds the heads into the batch axis (${ix.label(folded)} reshapes to 3 dims, [seq, batch*heads, head_size]) but not as nn.MultiheadAttention does (the batch multiplied by a constant head count, then Transpose [1,0,2]); cannot tell the number of heads`
        : `attention at ${ix.label(softmax)}: cannot tell the number of heads (no Reshape into [batch, seq, heads, head_size] found on the query path)`,
    );
  }
  const ctxWidth = out.linear.inFeatures;
  let folded: AttentionBlock['folded'];
  let input = q.linear.input;
  if (geom.foldedAt) {
    const vFold = headsFromPath(ix, v.path, v.linear.outFeatures, packed)?.foldedAt;
    const t = ix.producer.get(q.linear.input);
    if (!vFold) throw new OptinError('unsupported', `attention at ${ix.label(softmax)}: the query folds its heads into the batch axis but the value path does not`);
    if (t?.opType !== 'Transpose' || attrInts(t, 'perm')?.join(',') !== '1,0,2') {
      throw new OptinError('unsupported', `attention at ${ix.label(softmax)}: heads are folded into the batch axis of a sequence-first tensor that is not a Transpose [1,0,2] of the batch-first layer input; ${SEQUENCE_FIRST}`);
    }
    folded = { v: vFold.input[0]!, pv: pv.output[0]! };
    input = t.input[0]!;
  }
  const H = geom.heads, dq = geom.headSize, dv = ctxWidth / H;
  return {
    heads: H,
    headSize: dq,
    vHeadSize: dv,
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

/** The end of the message for a sequence-first stack the batch-first rewrite could not handle (structure/streamLayout.ts). */
export const SEQUENCE_FIRST = 'sequence-first models whose stream cannot be made batch-first are not supported';

/**
 * Grouped-query attention: `kvHeads` key/value heads, each repeated for `group` consecutive query
 * heads (Unsqueeze at axis 2, Expand, Reshape: Llama's repeat_kv). The unit is a key/value head with
 * its query heads: Q columns of the group, one K and one V head, the group's output rows. With one
 * key/value head (multi-query attention) the whole attention is one unit.
 */
function groupedQuery(
  ix: GraphIndex, softmax: NodeProto, pv: NodeProto, out: { linear: Linear; path: NodeProto[] }, p: { q: Linear; k: Linear; v: Linear },
  geom: HeadGeometry, kvHeads: number, kvPaths: NodeProto[][],
): AttentionBlock {
  const H = geom.heads, dq = geom.headSize, group = H / kvHeads, dv = p.v.outFeatures / kvHeads;
  const where = `attention at ${ix.label(softmax)}`;
  if (!Number.isInteger(group)) throw new OptinError('unsupported', `${where}: ${H} query heads do not split evenly over ${kvHeads} key/value heads`);
  for (const path of kvPaths) {
    const e = path.find((n) => n.opType === 'Expand');
    const u = e ? ix.producer.get(e.input[0]!) : undefined;
    const axes = u?.opType === 'Unsqueeze' ? (u.input[1] ? ix.constInts(u.input[1]) : attrInts(u, 'axes')) : undefined;
    if (!e || axes?.length !== 1 || axes[0] !== 2) {
      throw new OptinError('unsupported', `${where}: ${H} query heads share ${kvHeads} key/value heads, but not repeated as Unsqueeze(axis 2) + Expand + Reshape (Llama's repeat_kv); cannot tell which query heads share each key/value head`);
    }
  }
  const ctxWidth = out.linear.inFeatures;
  if (ctxWidth !== H * dv) throw new OptinError('unsupported', `${where}: the output projection reads ${ctxWidth} features, expected ${H} heads x ${dv}`);
  // One key/value head whose query heads' output rows split quantization blocks: the whole attention is one unit.
  if (kvHeads === 1 && !(out.linear.blockSize && dv % out.linear.blockSize)) {
    return {
      heads: H, headSize: dq, vHeadSize: dv, sharedKv: true,
      layout: 'multi-query',
      projections: [p.q, p.k, p.v],
      output: out.linear, input: p.q.input, context: out.linear.input, perHead: pv.output[0]!, core: nodeId(softmax),
      ...withCache(ix, kvPaths),
    };
  }
  return {
    heads: kvHeads, headSize: dq, vHeadSize: group * dv, group,
    layout: 'grouped-query',
    projections: [p.q, p.k, p.v],
    output: out.linear, input: p.q.input, context: out.linear.input, kvValue: p.v.output, core: nodeId(softmax),
    ...withCache(ix, kvPaths),
  };
}

function outputProjection(ix: GraphIndex, li: LinearIndex, value: string, heads: number): { linear: Linear & { einsum?: boolean } } | undefined {
  const direct = traceForwardToLinear(ix, li.all, value);
  if (direct) return { linear: direct.linear };
  const uses = ix.uses(value);
  const r = uses.length === 1 && uses[0]!.opType === 'Reshape' ? uses[0]! : undefined;
  const e = r ? ix.uses(r.output[0]!).find((u) => u.opType === 'Einsum') : undefined;
  const w = e ? ix.constant(e.input[1]!) : undefined;
  if (!r || !e || !w || w.dims.length !== 3) return undefined;
  const [h, d, D] = tensorShape(w) as [number, number, number];
  if (h !== heads) return undefined;
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

/** Detect a fused com.microsoft Attention block (causal with `unidirectional=1`: decoders). */
export function attentionFromFused(ix: GraphIndex, li: LinearIndex, n: NodeProto): AttentionBlock {
  const heads = attrInt(n, 'num_heads', 0);
  const w = ix.constant(n.input[1]!);
  if (!w || w.dims.length !== 2 || heads <= 0) {
    throw new OptinError('unsupported', `${ix.label(n)}: fused Attention without constant 2-D weights or num_heads is not supported`);
  }
  if (n.input[4] || n.output[1]) {
    throw new OptinError('unsupported', `${ix.label(n)}: fused Attention with a key/value cache (past input, present output) is not supported yet; prune the model exported without a cache`);
  }
  const total = tensorShape(w)[1]!;
  const sizes = attrInts(n, 'qkv_hidden_sizes');
  const [qh, kh, vh] = sizes && sizes.length === 3 ? (sizes as [number, number, number]) : [total / 3, total / 3, total / 3];
  if (qh + kh + vh !== total || qh % heads || vh % heads) {
    throw new OptinError('unsupported', `${ix.label(n)}: qkv widths ${qh}/${kh}/${vh} do not split into ${heads} heads`);
  }
  const out = outputProjection(ix, li, n.output[0]!, heads);
  if (!out) throw new OptinError('unsupported', `${ix.label(n)}: its output does not feed a recognisable output projection`);
  return {
    heads, headSize: qh / heads, vHeadSize: vh / heads,
    layout: 'fused-attention',
    projections: [],
    output: out.linear, input: n.input[0]!, context: n.output[0]!, core: nodeId(n),
  };
}

/**
 * Detect a com.microsoft MultiHeadAttention block with separate Q/K/V projections (q and k may pass
 * through RotaryEmbedding nodes); causal (`unidirectional=1`) in decoders.
 * @throws OptinError('unsupported') for a key/value cache or a per-head attention bias, naming the node.
 */
export function attentionFromMha(ix: GraphIndex, li: LinearIndex, n: NodeProto): AttentionBlock {
  const heads = attrInt(n, 'num_heads', 0);
  if (n.input[6] || n.input[7]) {
    throw new OptinError('unsupported', `${ix.label(n)}: MultiHeadAttention with a key/value cache (past_key/past_value inputs) is not supported yet; prune the model exported without a cache`);
  }
  if (n.input[5]) {
    throw new OptinError('unsupported', `${ix.label(n)}: MultiHeadAttention with an attention bias input (it has a head axis) is not supported yet; prune the model exported without it`);
  }
  const [qv, kv, vv] = [n.input[0], n.input[1], n.input[2]];
  const q = qv ? traceBackToLinear(ix, li, qv) : undefined;
  const k = kv ? traceBackToLinear(ix, li, kv) : undefined;
  const v = vv ? traceBackToLinear(ix, li, vv) : undefined;
  if (!q || !k || !v || heads <= 0) {
    throw new OptinError('unsupported', `${ix.label(n)}: MultiHeadAttention needs separate query/key/value projections and num_heads`);
  }
  const out = outputProjection(ix, li, n.output[0]!, heads);
  if (!out) throw new OptinError('unsupported', `${ix.label(n)}: its output does not feed a recognisable output projection`);
  return {
    heads, headSize: q.linear.outFeatures / heads, vHeadSize: v.linear.outFeatures / heads,
    layout: 'mha',
    projections: [q.linear, k.linear, v.linear],
    output: out.linear, input: q.linear.input, context: n.output[0]!, core: nodeId(n),
  };
}
