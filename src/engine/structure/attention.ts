import type { NodeProto } from '../onnx/schema';
import { GraphIndex, attrInt, attrInts } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import { OptinError } from '../errors';
import { nodeId } from './linear';
import { evalShape, type ShapeElem } from './shapeEval';
import { LinearIndex, traceBackToLinear, traceForwardToLinear } from './trace';
import type { AttentionBlock, HeadBlock, HeadSlice, HeadWalk, Linear, ShapeSite } from './types';

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

/** A tensor laid out head after head from `offset`: head h owns offset + h * size .. + size. */
export const headBlock = (size: number, offset = 0): HeadBlock => ({ offset, stride: size, size });

/** Slices that cut a projection's output features with the heads: weight columns and bias entries. */
export function outputSlices(lin: Linear, blocks: HeadBlock[]): HeadSlice[] {
  const s: HeadSlice[] = [{ tensor: lin.weight, node: lin.node, axis: lin.transposed ? 0 : 1, blocks }];
  if (lin.bias && lin.biasNode) s.push({ tensor: lin.bias, node: lin.biasNode, axis: 0, blocks });
  return s;
}

/** The value a projection's MatMul/Gemm writes (before any separate bias Add). */
export function productOf(ix: GraphIndex, lin: Linear): string {
  const n = ix.graph.node.find((x) => nodeId(x) === lin.node);
  if (!n) throw new Error(`projection node ${lin.node} not in the graph`);
  return n.output[0]!;
}

/** The first producer of `value` through Where/Reshape/Cast/Identity (how exporters guard a shape against -1 entries), or undefined. */
function shapeSource(ix: GraphIndex, value: string, op: string): NodeProto | undefined {
  let v = value;
  for (let hop = 0; hop < 6; hop++) {
    const n = ix.producer.get(v);
    if (!n) return undefined;
    if (n.opType === op) return n;
    if (n.opType === 'Where') v = n.input[2]!;
    else if (['Reshape', 'Cast', 'Identity'].includes(n.opType)) v = n.input[0]!;
    else return undefined;
  }
  return undefined;
}

/**
 * Where a shared key/value head is repeated for `H` query heads (Expand to [b, 1, H, s, d], then
 * Reshape to [b, 1 * H, s, d]): the literal H in the Expand's shape Concat and in the Mul that
 * forms the Reshape's head count, which become the kept count.
 * @throws OptinError('unsupported') when the repeat count is not such a literal
 */
function repeatCount(ix: GraphIndex, path: NodeProto[], H: number, where: string): Array<{ node: string; input: number; perHead: number }> {
  const e = path.find((n) => n.opType === 'Expand')!;
  const after = ix.uses(e.output[0]!).find((n) => n.opType === 'Reshape');
  const concat = shapeSource(ix, e.input[1]!, 'Concat');
  const literal = concat?.input.findIndex((i, k) => k === 2 && ix.constInts(i)?.length === 1 && ix.constInts(i)![0] === H) ?? -1;
  const count = after ? evalShape(ix, after.input[1]!)?.[1]?.computedFrom : undefined;
  const mul = count?.op === 'Mul' && count.constant === H ? ix.graph.node.find((n) => nodeId(n) === count.node) : undefined;
  const mulInput = mul ? mul.input.findIndex((i) => ix.constInts(i)?.[0] === H) : -1;
  if (!concat || literal < 0 || !mul || mulInput < 0) {
    throw new OptinError('unsupported', `${where}: ${H} query heads share one key/value head, repeated at ${ix.label(e)} by a count that is not a literal ${H}; cannot prune its query heads`);
  }
  return [{ node: nodeId(concat), input: literal, perHead: 1 }, { node: nodeId(mul), input: mulInput, perHead: 1 }];
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

/** Walks from separate Q, K and V projections' products. */
export function projectionWalks(ix: GraphIndex, q: Linear, k: Linear, v: Linear, dq: number, dv: number): HeadWalk[] {
  return [[q, dq], [k, dq], [v, dv]].map(([lin, d]) => ({ value: productOf(ix, lin as Linear), headSize: d as number, parts: 1 }));
}

function siteKind(ix: GraphIndex, reshape: NodeProto, e: ShapeElem): ShapeSite['kind'] {
  if (e.computedFrom) return 'computed';
  return ix.constant(reshape.input[1]!) ? 'reshape-literal' : 'concat-constant';
}

function isShared(ix: GraphIndex, holder: string): boolean {
  const uses = ix.uses(holder);
  return uses.length > 1;
}

function site(ix: GraphIndex, reshape: NodeProto, e: ShapeElem, meaning: ShapeSite['meaning'], value: number): ShapeSite | undefined {
  const holder = e.computedFrom?.holder ?? e.holder;
  if (holder === undefined) return undefined;
  return {
    node: nodeId(reshape), kind: siteKind(ix, reshape, e), holder, index: e.computedFrom ? 0 : (e.index ?? 0),
    meaning, value, shared: isShared(ix, holder),
  };
}

interface HeadGeometry { heads: number; headSize: number; sites: ShapeSite[]; packedOrder?: 'qkv-heads' | 'heads-qkv'; foldedAt?: NodeProto }

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
  const sites = bh.computedFrom ? [site(ix, r, bh, 'heads', h)].filter((s): s is ShapeSite => !!s) : [];
  return { heads: h, headSize: unit / h, sites, foldedAt: r };
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
    const sites = [site(ix, r, hE, 'heads', h), site(ix, r, dE, 'headSize', d)].filter((s): s is ShapeSite => !!s);
    return { heads: h, headSize: d, sites, ...(order ? { packedOrder: order } : {}) };
  }
  return undefined;
}

function mergeSites(ix: GraphIndex, path: NodeProto[], width: number): ShapeSite[] {
  const out: ShapeSite[] = [];
  for (const r of path) {
    if (r.opType !== 'Reshape') continue;
    const shape = evalShape(ix, r.input[1]!);
    if (!shape) continue;
    const last = shape[shape.length - 1];
    if (last && last.value === width) {
      const s = site(ix, r, last, 'width', width);
      if (s) out.push(s);
    }
  }
  return out;
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
    if (geom) {
      // Q, K and V may each be split into heads by their own Reshape (a chunk exported as Slices): every one must be rewritten.
      const seen = new Set(geom.sites.map((x) => `${x.node}|${x.holder}|${x.index}`));
      for (const path of [k.path, v.path]) {
        for (const x of (headsFromPath(ix, path, q.linear.outFeatures, true) ?? headsFromPath(ix, path, q.linear.outFeatures / 3, false))?.sites ?? []) {
          const key = `${x.node}|${x.holder}|${x.index}`;
          if (!seen.has(key)) { seen.add(key); geom.sites.push(x); }
        }
      }
    }
  } else {
    if (q.linear === k.linear || k.linear === v.linear || q.linear === v.linear) return undefined;
    geom = headsFromPath(ix, q.path, q.linear.outFeatures, false);
    const vGeom = headsFromPath(ix, v.path, v.linear.outFeatures, false);
    const kGeom = headsFromPath(ix, k.path, k.linear.outFeatures, false);
    if (geom) geom = { ...geom, sites: [...geom.sites, ...(kGeom?.sites ?? []), ...(vGeom?.sites ?? [])] };
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
  const heads = packed
    ? {
      layout: 'packed',
      projections: [q.linear],
      slices: outputSlices(q.linear, geom.packedOrder === 'heads-qkv' ? [{ offset: 0, stride: 3 * dq, size: 3 * dq }] : [0, 1, 2].map((p) => headBlock(dq, p * H * dq))),
      walks: [{ value: productOf(ix, q.linear), headSize: dq, parts: 3 }],
    }
    : {
      layout: 'separate',
      projections: [q.linear, k.linear, v.linear],
      slices: [...outputSlices(q.linear, [headBlock(dq)]), ...outputSlices(k.linear, [headBlock(dq)]), ...outputSlices(v.linear, [headBlock(dv)])],
      walks: projectionWalks(ix, q.linear, k.linear, v.linear, dq, dv),
    };
  return {
    heads: H,
    headSize: dq,
    vHeadSize: dv,
    ...heads,
    attrs: [],
    walks: [...heads.walks, { value: pv.output[0]!, headSize: dv, parts: 1 }],
    output: out.linear,
    input,
    context: out.linear.input,
    ...(folded ? { folded } : { perHead: pv.output[0]! }),
    ...withCache(ix, [k.path, v.path]),
    core: nodeId(softmax),
    shapeSites: [...geom.sites, ...mergeSites(ix, out.path, ctxWidth)],
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
      slices: outputSlices(p.q, [headBlock(dq)]),
      attrs: [],
      constants: kvPaths.flatMap((path) => repeatCount(ix, path, H, where)),
      walks: [{ value: productOf(ix, p.q), headSize: dq, parts: 1 }, { value: pv.output[0]!, headSize: dv, parts: 1 }],
      output: out.linear, input: p.q.input, context: out.linear.input, perHead: pv.output[0]!, core: nodeId(softmax),
      ...withCache(ix, kvPaths),
      shapeSites: [...geom.sites, ...mergeSites(ix, out.path, ctxWidth)],
    };
  }
  return {
    heads: kvHeads, headSize: dq, vHeadSize: group * dv, group,
    layout: 'grouped-query',
    projections: [p.q, p.k, p.v],
    slices: [...outputSlices(p.q, [headBlock(group * dq)]), ...outputSlices(p.k, [headBlock(dq)]), ...outputSlices(p.v, [headBlock(dv)])],
    attrs: [],
    walks: [
      { value: productOf(ix, p.q), headSize: dq, parts: 1, perUnit: group },
      { value: productOf(ix, p.k), headSize: dq, parts: 1 },
      { value: productOf(ix, p.v), headSize: dv, parts: 1 },
      { value: pv.output[0]!, headSize: dv, parts: 1, perUnit: group },
    ],
    output: out.linear, input: p.q.input, context: out.linear.input, kvValue: p.v.output, core: nodeId(softmax),
    ...withCache(ix, kvPaths),
    shapeSites: [...geom.sites, ...mergeSites(ix, out.path, ctxWidth)],
  };
}

function outputProjection(ix: GraphIndex, li: LinearIndex, value: string, heads: number): { linear: Linear & { einsum?: boolean }; sites: ShapeSite[] } | undefined {
  const direct = traceForwardToLinear(ix, li.all, value);
  if (direct) return { linear: direct.linear, sites: mergeSites(ix, direct.path, direct.linear.inFeatures) };
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
  const shape = evalShape(ix, r.input[1]!) ?? [];
  const sites = [
    shape[shape.length - 2] ? site(ix, r, shape[shape.length - 2]!, 'heads', h) : undefined,
    shape[shape.length - 1] ? site(ix, r, shape[shape.length - 1]!, 'headSize', d) : undefined,
  ].filter((s): s is ShapeSite => !!s);
  return {
    linear: {
      node: nodeId(e), op: 'MatMul', input: value, weight: e.input[1]!, transposed: false, inFeatures: h * d, outFeatures: D,
      ...(bias && add ? { bias, biasNode: nodeId(add) } : {}), output: add && bias ? add.output[0]! : e.output[0]!, einsum: true,
    },
    sites,
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
  const sites: ShapeSite[] = [{ node: nodeId(n), kind: 'attribute', holder: 'num_heads', index: 0, meaning: 'heads', value: heads, shared: false }];
  if (sizes) sites.push({ node: nodeId(n), kind: 'attribute', holder: 'qkv_hidden_sizes', index: 0, meaning: 'width', value: qh, shared: false });
  const bias = n.input[2] && ix.constant(n.input[2]) ? n.input[2] : undefined;
  const dq = qh / heads, dv = vh / heads;
  const blocks = [headBlock(dq), headBlock(dq, qh), headBlock(dv, qh + kh)];
  return {
    heads, headSize: dq, vHeadSize: dv,
    layout: 'fused-attention',
    projections: [],
    slices: [{ tensor: n.input[1]!, node: nodeId(n), axis: 1, blocks }, ...(bias ? [{ tensor: bias, node: nodeId(n), axis: 0, blocks }] : [])],
    attrs: [{ node: nodeId(n), name: 'num_heads', perHead: [1] }, ...(sizes ? [{ node: nodeId(n), name: 'qkv_hidden_sizes', perHead: [dq, dq, dv] }] : [])],
    walks: [{ value: n.output[0]!, headSize: dv, parts: 1 }],
    output: out.linear, input: n.input[0]!, context: n.output[0]!, core: nodeId(n), shapeSites: [...sites, ...out.sites],
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
  const packedBias = n.input[3] && ix.constant(n.input[3]) ? n.input[3] : undefined;
  const dq = q.linear.outFeatures / heads, dv = v.linear.outFeatures / heads;
  return {
    heads, headSize: dq, vHeadSize: dv,
    layout: 'mha',
    projections: [q.linear, k.linear, v.linear],
    slices: [
      ...outputSlices(q.linear, [headBlock(dq)]), ...outputSlices(k.linear, [headBlock(dq)]), ...outputSlices(v.linear, [headBlock(dv)]),
      ...(packedBias ? [{ tensor: packedBias, node: nodeId(n), axis: 0, blocks: [headBlock(dq), headBlock(dq, heads * dq), headBlock(dv, 2 * heads * dq)] }] : []),
    ],
    attrs: [{ node: nodeId(n), name: 'num_heads', perHead: [1] }],
    walks: [...projectionWalks(ix, q.linear, k.linear, v.linear, dq, dv), { value: n.output[0]!, headSize: dv, parts: 1 }],
    output: out.linear, input: q.linear.input, context: n.output[0]!, core: nodeId(n),
    shapeSites: [{ node: nodeId(n), kind: 'attribute', holder: 'num_heads', index: 0, meaning: 'heads', value: heads, shared: false }, ...out.sites],
  };
}
