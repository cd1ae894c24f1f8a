import { create } from '@bufbuild/protobuf';
import type { OnnxModel } from '../onnx/model';
import { attrInt, attrInts, GraphIndex } from '../onnx/graph';
import { BINARY as CHANNEL_BINARY, UNARY as CHANNEL_UNARY } from '../groups/rules';
import { AttributeProtoSchema, AttributeType, NodeProtoSchema, type GraphProto, type NodeProto } from '../onnx/schema';

const SWAP = [1, 0, 2];

/** Elementwise ops of one data input (the channel rules' list, groups/rules.ts, less PRelu, whose slope is an operand). */
const UNARY = new Set([...CHANNEL_UNARY, 'Cast'].filter((op) => op !== 'PRelu'));
/** Elementwise ops whose every input is data (broadcast against the others). */
const BINARY = new Set([...CHANNEL_BINARY, 'PRelu', 'Equal', 'Less', 'Greater']);
const SAME_RANK = new Set([...UNARY, ...BINARY, 'Softmax', 'LogSoftmax', 'LayerNormalization', 'Conv', 'BatchNormalization']);

function perm(n: NodeProto): number[] | undefined {
  return attrInts(n, 'perm');
}

function transposeNode(input: string, output: string, p: number[], name: string): NodeProto {
  const identity = p.every((x, i) => x === i);
  return create(NodeProtoSchema, {
    opType: identity ? 'Identity' : 'Transpose', name, input: [input], output: [output],
    attribute: identity ? [] : [create(AttributeProtoSchema, { name: 'perm', type: AttributeType.INTS, ints: p.map(BigInt) })],
  });
}

/** Static rank of a value where the graph states it (inputs, constants, shape arithmetic, rank-preserving ops), else undefined. */
class Ranks {
  private memo = new Map<string, number | undefined>();
  constructor(private ix: GraphIndex) {}

  of(v: string): number | undefined {
    if (this.memo.has(v)) return this.memo.get(v);
    this.memo.set(v, undefined);
    const r = this.compute(v);
    this.memo.set(v, r);
    return r;
  }

  private compute(v: string): number | undefined {
    const ix = this.ix;
    const c = ix.constant(v);
    if (c) return c.dims.length;
    const gi = ix.graph.input.find((i) => i.name === v);
    if (gi) return gi.type?.value.case === 'tensorType' ? gi.type.value.value.shape?.dim.length : undefined;
    const p = ix.producer.get(v);
    if (!p) return undefined;
    const ins = p.input.filter((x) => x);
    const max = (xs: string[]): number | undefined => {
      const rs = xs.map((x) => this.of(x));
      return rs.some((r) => r === undefined) ? undefined : Math.max(...(rs as number[]));
    };
    switch (p.opType) {
      case 'Transpose': return perm(p)?.length ?? this.of(p.input[0]!);
      case 'Shape': return 1;
      case 'Gemm': case 'Flatten': return 2;
      case 'Unsqueeze': {
        const axes = attrInts(p, 'axes') ?? ix.constInts(p.input[1] ?? '');
        const r = this.of(p.input[0]!);
        return axes && r !== undefined ? r + axes.length : undefined;
      }
      case 'Gather': {
        const idx = ix.constant(p.input[1]!);
        const r = this.of(p.input[0]!);
        return idx && r !== undefined ? r - 1 + idx.dims.length : undefined;
      }
      case 'Concat': return this.of(ins[0]!);
      case 'Reshape': return this.lengthOf(p.input[1]!);
      case 'MatMul': return max(ins);
      case 'ReduceMean': case 'ReduceSum': case 'ReduceMax':
        return attrInt(p, 'keepdims', 1) === 1 ? this.of(p.input[0]!) : undefined;
      default:
        return SAME_RANK.has(p.opType) ? max(p.opType === 'Where' || BINARY.has(p.opType) ? ins : [p.input[0]!]) : undefined;
    }
  }

  /** Number of elements of a 1-D shape tensor: a constant, or a Concat of constants and unsqueezed scalars. */
  private lengthOf(v: string): number | undefined {
    const c = this.ix.constant(v);
    if (c) return Number(c.dims[0] ?? 1);
    const p = this.ix.producer.get(v);
    if (p?.opType !== 'Concat') return undefined;
    let n = 0;
    for (const x of p.input) {
      const k = this.ix.constant(x);
      if (k && k.dims.length === 1) { n += Number(k.dims[0]); continue; }
      const u = this.ix.producer.get(x);
      if (u?.opType === 'Unsqueeze' && this.of(u.input[0]!) === 0) { n += 1; continue; }
      return undefined;
    }
    return n;
  }
}

/**
 * A copy of the graph whose residual stream, made sequence-first ([seq, batch, width]) by the
 * Transpose `entry`, runs batch-first ([batch, seq, width]) instead; computes the same function.
 * Every op on the stream that treats the first two axes alike (elementwise ops with operands that
 * broadcast over them, norms and softmax over the last axis, projections, slices along the width)
 * runs on the batch-first values; an op that depends on the layout (the attention's reshapes, shape
 * reads) reads a Transpose back to the original layout, and values re-entering the stream are
 * transposed to it. Transposes that read or write the stream get their permutations composed with
 * the swap. Undefined when the graph has control flow (subgraphs could read the stream by name).
 */
export function batchFirstGraph(g: GraphProto, entry: NodeProto, opset: number, ext?: OnnxModel['ext']): { graph: GraphProto; transposes: number } | undefined {
  if (g.node.some((n) => n.attribute.some((a) => a.g || a.graphs.length))) return undefined;
  const ix = new GraphIndex(g, ext);
  const ranks = new Ranks(ix);
  const outputs = new Set(g.output.map((o) => o.name));
  const flipped = new Set<string>();
  const nodes: NodeProto[] = [];
  let fresh = 0;
  const name = (hint: string): string => `optin/stream_${hint}_${fresh++}`;

  /** An operand that broadcasts over the first two axes of a rank-3 value (a constant with 1s there, or a scalar). */
  const broadcasts = (v: string): boolean => {
    const c = ix.constant(v);
    if (c) {
      const d = c.dims.map(Number);
      if (d.length > 3) return false;
      const at = (axis: number): number => d[d.length - 3 + axis] ?? 1;
      return at(0) === 1 && at(1) === 1;
    }
    const r = ranks.of(v);
    return r !== undefined && r <= 1;
  };
  const lastAxis = (a: number): boolean => a === -1 || a === 2;
  /** Whether node n computes the same on a value with its first two axes swapped (given every rank-3 operand swapped). */
  const agnostic = (n: NodeProto): boolean => {
    const data = n.input.filter((x) => x);
    const rank3 = (v: string): boolean => flipped.has(v) || ranks.of(v) === 3;
    if (n.output.filter((o) => o).length !== 1 && !['Split', 'Dropout'].includes(n.opType)) return false;
    if (UNARY.has(n.opType)) return n.opType !== 'Dropout' || !n.output[1];
    if (BINARY.has(n.opType)) return data.every((v) => rank3(v) || broadcasts(v));
    switch (n.opType) {
      case 'LayerNormalization':
        return lastAxis(attrInt(n, 'axis', -1)) && data.slice(1).every((v) => (ix.constant(v)?.dims.length ?? 2) <= 1);
      case 'Softmax': case 'LogSoftmax':
        return lastAxis(attrInt(n, 'axis', opset >= 13 ? -1 : 1));
      case 'ReduceMean': case 'ReduceSum': case 'ReduceMax': {
        const axes = attrInts(n, 'axes') ?? (n.input[1] ? ix.constInts(n.input[1]) : undefined);
        return attrInt(n, 'keepdims', 1) === 1 && !!axes && axes.every(lastAxis);
      }
      case 'MatMul': {
        const w = ix.constant(n.input[1]!);
        return !!w && w.dims.length === 2;
      }
      case 'Slice': {
        const axes = n.input[3] ? ix.constInts(n.input[3]) : undefined;
        return !!axes && axes.every(lastAxis);
      }
      case 'Split':
        return lastAxis(attrInt(n, 'axis', 0));
      default:
        return false;
    }
  };

  const needO = new Map<string, boolean>();
  /** The value must be in the original layout: a graph output, or every reader needs it so. */
  const wantsOriginal = (v: string): boolean => {
    const hit = needO.get(v);
    if (hit !== undefined) return hit;
    needO.set(v, true);
    const uses = ix.uses(v);
    const r = outputs.has(v) || uses.every((c) => c.opType !== 'Transpose' && (!agnostic(c) || (c.opType !== 'LayerNormalization' && c.output.every((o) => !o || wantsOriginal(o)))));
    needO.set(v, r);
    return r;
  };

  const original = new Map<string, string>();
  const batchFirst = new Map<string, string>();
  const toOriginal = (v: string): string => {
    let t = original.get(v);
    if (!t) { t = name('seq_first'); nodes.push(transposeNode(v, t, SWAP, t)); original.set(v, t); }
    return t;
  };
  const toBatchFirst = (v: string): string => {
    let t = batchFirst.get(v);
    if (!t) { t = name('batch_first'); nodes.push(transposeNode(v, t, SWAP, t)); batchFirst.set(v, t); }
    return t;
  };

  let moved = 0;
  for (const n of g.node) {
    const p = n.opType === 'Transpose' ? perm(n) : undefined;
    if (n === entry) {
      const out = n.output[0]!;
      if (!p || p.length !== 3 || outputs.has(out)) return undefined;
      nodes.push(transposeNode(n.input[0]!, out, [p[1]!, p[0]!, p[2]!], n.name));
      flipped.add(out);
      moved++;
      continue;
    }
    if (!n.input.some((v) => flipped.has(v))) { nodes.push(n); continue; }
    if (p && p.length === 3) {
      const fromFlipped = p.map((x) => SWAP[x]!);
      const out = n.output[0]!;
      const keepFlipped = !wantsOriginal(out);
      nodes.push(transposeNode(n.input[0]!, out, keepFlipped ? SWAP.map((i) => fromFlipped[i]!) : fromFlipped, n.name));
      if (keepFlipped) flipped.add(out);
      moved++;
      continue;
    }
    if (agnostic(n) && (n.opType === 'LayerNormalization' || !n.output.every((o) => !o || wantsOriginal(o))) && !n.output.some((o) => outputs.has(o))) {
      const elementwise = BINARY.has(n.opType);
      const input = n.input.map((v, i) => (!v || flipped.has(v) || (i > 0 && !elementwise) || broadcasts(v) ? v : toBatchFirst(v)));
      nodes.push(create(NodeProtoSchema, { ...n, input }));
      for (const o of n.output) if (o) flipped.add(o);
      continue;
    }
    const input = n.input.map((v) => (flipped.has(v) ? toOriginal(v) : v));
    nodes.push(create(NodeProtoSchema, { ...n, input }));
  }
  return { graph: { ...g, node: nodes }, transposes: moved + original.size + batchFirst.size };
}

/**
 * Rank-3 Transposes that could make a residual stream sequence-first, in graph order: the
 * candidates {@link batchFirstGraph} is tried from.
 */
export function streamEntries(g: GraphProto): NodeProto[] {
  return g.node.filter((n) => n.opType === 'Transpose' && perm(n)?.length === 3 && perm(n)![0] !== 0).slice(0, 32);
}
