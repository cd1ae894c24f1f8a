import type { NodeProto } from '../onnx/schema';
import { FLOAT_TYPES, elementCount, tensorShape } from '../onnx/tensor';
import { attr, attrInt, attrInts, type GraphIndex } from '../onnx/graph';
import { BINARY, POOLS, REDUCES, SUMS, UNARY, isDepthwise, isWeightProducer, reducedAxes, reshapedAxis, reshapedUnits, gatheredAxis, prod } from './rules';
import type { ChannelGroup, Cut, ExtentEntry, MaskSite, Slot } from './types';
import type { MeasuredShapes } from './shapes';
import { headOp, isFusedAttention, isRotary, type HeadOp } from './headOps';

/** Propagation stopped: the node and the reason (the candidate is not a prunable group). */
export class GroupStop extends Error {
  constructor(readonly node: NodeProto | undefined, readonly reason: string) {
    super(reason);
  }
}


/** How a slot holds the units (units mode): each unit `block` consecutive entries, repeated in `parts` parts of all units (packed Q/K/V: 3). */
interface Layout { block: number; parts: number }
const ONE: Layout = { block: 1, parts: 1 };
const isOne = (u: Layout): boolean => u.block === 1 && u.parts === 1;
/** The group's channels as entries offset.. of a concatenated axis of `extent` entries. */
type Range = { offset: number; extent: number };
/** A node's name, or its first output's when unnamed (how groups name nodes). */
export const nodeName = (n: NodeProto): string => n.name || n.output[0]!;

/** Sizes of a Split's outputs along its axis (from its sizes input or attribute, or equal parts), or undefined when not constant. */
function splitSizes(ix: GraphIndex, shapes: MeasuredShapes, split: NodeProto): number[] | undefined {
  const given = split.input[1] ? ix.constInts(split.input[1]) : attrInts(split, 'split');
  if (given) return given;
  const d = shapes.get(split.input[0]!);
  if (!d) return undefined;
  const axis = (attrInt(split, 'axis', 0) + d.length) % d.length;
  const n = split.output.length;
  return d[axis]! % n === 0 ? new Array<number>(n).fill(d[axis]! / n) : undefined;
}

/**
 * Which axis of operand `k` of a product each axis of its matrix view is: the identity for MatMul;
 * onnxruntime's `FusedMatMul` first moves the operand's first axis behind its other batch axes
 * (`transBatchA`/`transBatchB`), then swaps the last two (`transA`/`transB`).
 */
function operandAxes(n: NodeProto, k: number, rank: number): number[] {
  const axes = Array.from({ length: rank }, (_, i) => i);
  if (n.opType !== 'FusedMatMul') return axes;
  const ab = k === 0 ? 'A' : 'B';
  const perm = attrInt(n, `transBatch${ab}`, 0) && rank > 2 ? [...axes.slice(1, rank - 1), 0, rank - 1] : axes;
  if (attrInt(n, `trans${ab}`, 0)) [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return perm;
}

/**
 * The Split a producer's output goes to, alone, when it divides the channels into equal parts (a
 * GLU's value and gate halves): the group is then one part wide.
 */
export function channelSplit(ix: GraphIndex, shapes: MeasuredShapes, n: NodeProto): { node: NodeProto; parts: number } | undefined {
  let out = n.output[0]!;
  let uses = ix.uses(out);
  // A projection's bias added before the Split (torch's Linear: MatMul + Add).
  if (uses.length === 1 && uses[0]!.opType === 'Add' && uses[0]!.input.some((v) => ix.constant(v))) {
    out = uses[0]!.output[0]!;
    uses = ix.uses(out);
  }
  const d = shapes.get(out);
  if (uses.length !== 1 || uses[0]!.opType !== 'Split' || !d) return undefined;
  const axis = n.opType === 'Conv' ? 1 : d.length - 1;
  if ((attrInt(uses[0]!, 'axis', 0) + d.length) % d.length !== axis) return undefined;
  const sizes = splitSizes(ix, shapes, uses[0]!);
  if (!sizes || sizes.length < 2 || sizes.some((x) => x !== sizes[0])) return undefined;
  return { node: uses[0]!, parts: sizes.length };
}

/**
 * The closure of one candidate's coupled channel slots (docs/units.md): from a producer's output
 * axis, every slot reachable through pass-through ops (forward and backward), every producer and
 * consumer weight that carries the channels, on measured shapes. Throws {@link GroupStop} where a
 * rule is missing or the channels cannot be cut alone (residual sums, norms over them, the graph output).
 *
 * With `units` set, the closure finds a transformer's feed-forward neurons, which the transformer
 * cutter cuts (src/engine/prune/apply.ts): block-quantized `MatMulNBits` projections are producers
 * and consumers, and Reshapes whose shape is computed at run time pass when the measured shapes
 * keep the channel axis (the cutter rewrites the literals those shapes hold).
 */
export class Propagation {
  private readonly seen = new Map<string, Slot>();
  private readonly passed = new Set<NodeProto>();
  private readonly producers = new Set<NodeProto>();
  private readonly consumers = new Set<NodeProto>();
  private readonly depthwise = new Set<NodeProto>();
  private readonly cuts: Cut[] = [];
  private readonly masks: MaskSite[] = [];
  private readonly reshapes: Array<{ node: string; index: number }> = [];
  private readonly extents: ExtentEntry[] = [];
  private macs = 0;
  private readonly resizes: Array<{ node: NodeProto; slot: string }> = [];
  /**
   * Units mode with one unit left: the steps met that can be read several ways (a Reshape that could
   * put the unit on several axes, a size-1 axis that could hold it or broadcast over it), in the order
   * met, with their number of readings ({@link choices} picks one; a caller may run again with another).
   */
  readonly ambiguous: Array<{ key: string; options: number }> = [];

  /** `choices`: which reading of an ambiguous step to take ({@link ambiguous}; default the likeliest). */
  constructor(
    private readonly ix: GraphIndex,
    private readonly shapes: MeasuredShapes,
    private readonly width: number,
    private readonly outputs: Set<string>,
    private readonly units = false,
    private readonly choices: ReadonlyMap<string, number> = new Map(),
  ) {}

  /**
   * Run from a producer node (Conv with group 1, MatMul or Gemm with a constant weight). With
   * `block` (units mode), each unit is `block` consecutive output features (a head's `d` columns);
   * with `parts`, the features are that many parts of all units each (packed Q/K/V: 3).
   */
  run(start: NodeProto, name: string, block = 1, parts = 1): ChannelGroup {
    const out = start.output[0]!;
    const axis = start.opType === 'Conv' ? 1 : this.dims(out, start).length - 1;
    const split = block === 1 && parts === 1 && !isFusedAttention(start) ? channelSplit(this.ix, this.shapes, start) : undefined;
    if (split) this.splitParts(split.node, axis);
    else if (this.units && isFusedAttention(start)) this.visit(out, axis, { block: this.fusedAttention(start), parts: 1 });
    else {
      this.producer(start, { block, parts });
      this.visit(out, axis, { block, parts });
    }
    if (!this.consumers.size) throw new GroupStop(start, 'no weight reads these channels');
    for (const r of this.resizes) if (!this.seen.has(r.slot)) throw new GroupStop(r.node, 'resizes another tensor to a channel count read from these channels');
    const first = Math.min(...[...this.producers].map((n) => this.ix.order.get(n)!));
    return {
      name, width: this.width, producers: [...this.producers].map(nodeName), consumers: [...this.consumers].map(nodeName),
      cuts: this.cuts, depthwise: [...this.depthwise].map(nodeName), reshapes: this.reshapes, masks: this.masks,
      macsPerChannel: this.macs, order: first, slots: [...this.seen.values()], ...(this.units ? { extents: this.extents } : {}),
    };
  }

  private dims(value: string, at?: NodeProto): number[] {
    const c = this.shapes.has(value) ? undefined : this.ix.constant(value);
    const d = c ? tensorShape(c) : this.shapes.get(value);
    if (!d) throw new GroupStop(at, `no measured shape for "${value}"`);
    return d;
  }

  private visit(value: string, axis: number, u: Layout = ONE): void {
    const key = `${value}#${axis}`;
    const had = this.seen.get(key);
    if (had) {
      if ((had.block ?? 1) !== u.block || (had.parts ?? 1) !== u.parts) throw new GroupStop(this.ix.producer.get(value), `axis ${axis} of "${value}" is reached with two different unit layouts`);
      return;
    }
    this.seen.set(key, { value, axis, ...(u.block > 1 ? { block: u.block } : {}), ...(u.parts > 1 ? { parts: u.parts } : {}) });
    const p = this.ix.producer.get(value);
    const d = this.dims(value, p);
    if (d[axis] !== this.width * u.block * u.parts) throw new GroupStop(p, `axis ${axis} of "${value}" has ${d[axis]} entries, not the group's ${this.width * u.block * u.parts}`);
    if (this.outputs.has(value)) throw new GroupStop(p, `the channels reach the graph output "${value}"`);
    if (p && !this.producers.has(p)) this.fromOutput(p, axis, u);
    for (const c of this.ix.uses(value)) c.input.forEach((v, i) => { if (v === value) this.fromInput(c, i, axis, u); });
  }

  private constWeight(n: NodeProto, i: number): number[] | undefined {
    const t = n.input[i] ? this.ix.constant(n.input[i]!) : undefined;
    return t ? tensorShape(t) : undefined;
  }

  private cut(n: NodeProto, i: number, axis: number, range?: Range, u: Layout = ONE): void {
    if (!n.input[i]) return;
    if (this.cuts.some((c) => c.node === nodeName(n) && c.input === i && c.axis === axis && c.offset === range?.offset)) return;
    this.cuts.push({ tensor: n.input[i]!, axis, node: nodeName(n), input: i, ...range, ...(u.block > 1 ? { block: u.block } : {}), ...(u.parts > 1 ? { parts: u.parts } : {}) });
  }

  private fromOutput(n: NodeProto, axis: number, u: Layout): void {
    if (this.units) {
      const op = headOp(n);
      if (op && axis === this.dims(n.output[0]!, n).length - 1) return this.headOp(n, op);
      if (isRotary(n)) return this.rotary(n, axis, u);
      if (isFusedAttention(n)) throw new GroupStop(n, 'the heads of a fused Attention are reached from outside it');
    }
    if (n.opType === 'MatMulNBits' && this.units) {
      if (axis !== this.dims(n.output[0]!, n).length - 1) throw new GroupStop(n, 'the channels are not the output features of this projection');
      return this.producer(n, u);
    }
    const w = this.constWeight(n, 1);
    if (n.opType === 'Conv') {
      if (!w) throw new GroupStop(n, 'the convolution weight is not a constant');
      if (isDepthwise(n, w)) return this.depthwiseConv(n);
      if (attrInt(n, 'group', 1) !== 1) throw new GroupStop(n, `grouped convolution (group=${attrInt(n, 'group', 1)}) mixes channel subsets`);
      return this.producer(n);
    }
    if (n.opType !== 'Conv' && isWeightProducer(this.ix, n)) {
      if (axis !== this.dims(n.output[0]!, n).length - 1) throw new GroupStop(n, 'the channels are not the output features of this projection');
      return this.producer(n, u);
    }
    if ((n.opType === 'MatMul' || n.opType === 'FusedMatMul') && this.units) return this.batchProduct(n, -1, axis, u);
    if (n.opType === 'Slice' && this.units && this.slicesAxis(n, axis, this.dims(n.output[0]!, n).length)) return this.slicePart(n, axis, u, true);
    if (n.opType === 'MatMul' || n.opType === 'Gemm') throw new GroupStop(n, 'a product of two activations (attention?) creates these channels');
    if (n.opType === 'Split' && (attrInt(n, 'axis', 0) + this.dims(n.input[0]!, n).length) % this.dims(n.input[0]!, n).length === axis) {
      if (this.units) return this.splitUnits(n, -1, axis, u);
      return this.splitParts(n, axis);
    }
    this.passThrough(n, axis, u);
  }

  /**
   * A Split of one producer's output into equal parts along the channels (a GLU: value and gate
   * halves of one convolution or projection): channel i of the group is entry i of every part, so the
   * producer is cut at every part's offset and the Split's sizes become the kept width.
   */
  private splitParts(split: NodeProto, axis: number): void {
    if (this.passed.has(split)) return;
    this.passed.add(split);
    const parts = splitSizes(this.ix, this.shapes, split);
    if (!parts || parts.some((w) => w !== this.width)) throw new GroupStop(split, 'Split divides the channels into parts of different sizes');
    if (attrInts(split, 'split')) throw new GroupStop(split, 'Split gives its sizes as an attribute (opset 12 or older)');
    const extent = this.width * parts.length;
    let p = this.ix.producer.get(split.input[0]!);
    const single = (v: string): boolean => this.ix.uses(v).length === 1;
    if (!single(split.input[0]!)) throw new GroupStop(split, 'the channels the Split divides are also read elsewhere');
    // A projection's bias added before the Split (torch's Linear: MatMul + Add).
    const bias = p?.opType === 'Add' ? p.input.findIndex((v) => this.ix.constant(v)) : -1;
    const biasAdd = bias >= 0 ? p : undefined;
    if (biasAdd) {
      const b = this.constWeight(biasAdd, bias)!;
      if (b[b.length - 1] !== extent || prod(b) !== extent) throw new GroupStop(biasAdd, 'the bias added before the Split is not one value per channel');
      p = this.ix.producer.get(biasAdd.input[1 - bias]!);
      if (p && !single(p.output[0]!)) throw new GroupStop(split, 'the channels the Split divides are also read elsewhere');
    }
    const w = p ? this.constWeight(p, 1) : undefined;
    if (!p || !w || !isWeightProducer(this.ix, p) || (p.opType !== 'Conv' && axis !== this.dims(p.output[0]!, p).length - 1)) {
      throw new GroupStop(split, 'Split divides channels that no single convolution or projection produces');
    }
    this.producers.add(p);
    const weightAxis = p.opType === 'Conv' || (p.opType === 'Gemm' && attrInt(p, 'transB', 0)) ? 0 : 1;
    const out = this.dims(p.output[0]!, p);
    parts.forEach((_, k) => {
      const range = { offset: k * this.width, extent };
      this.cut(p, 1, weightAxis, range);
      if (p.input[2]) this.cut(p, 2, p.opType === 'Conv' ? 0 : this.constWeight(p, 2)!.length - 1, range);
      if (biasAdd) this.cut(biasAdd, bias, this.constWeight(biasAdd, bias)!.length - 1, range);
      this.seen.set(`${p.output[0]}#${axis}@${range.offset}`, { value: p.output[0]!, axis, offset: range.offset });
      if (split.input[1]) this.reshapes.push({ node: nodeName(split), index: k });
      this.macs += p.opType === 'Conv' ? prod(out.slice(2)) * prod(w.slice(1)) : (prod(out.slice(0, -1)) / this.shapes.batch) * w[weightAxis === 0 ? 1 : 0]!;
    });
    split.output.forEach((o) => { if (o) this.visit(o, axis); });
  }

  private fromInput(n: NodeProto, i: number, axis: number, u: Layout): void {
    if (this.units) {
      const op = headOp(n);
      if (op && op.heads.includes(i) && axis === this.dims(n.input[i]!, n).length - 1) return this.headOp(n, op);
      if (op) throw new GroupStop(n, `${n.opType} reads the channels as input ${i}, not as query, key or value`);
      if (isRotary(n) && i === 0) return this.rotary(n, axis, u);
      if (n.opType === 'Einsum' && i === 0 && n.input.length === 2 && this.constWeight(n, 1)) return this.einsumConsumer(n, axis, u);
    }
    const w = this.constWeight(n, 1);
    if (n.opType === 'Conv') {
      if (i !== 0 || !w) throw new GroupStop(n, 'the channels reach a convolution weight that is not a constant');
      if (isDepthwise(n, w)) return this.depthwiseConv(n);
      if (attrInt(n, 'group', 1) !== 1) throw new GroupStop(n, `grouped convolution (group=${attrInt(n, 'group', 1)}) mixes channel subsets`);
      return this.consumer(n, i, axis, 1);
    }
    if (n.opType === 'Shape') return this.shapeRead(n, axis);
    if (n.opType === 'MatMulNBits' && this.units && i === 0 && axis === this.dims(n.input[0]!, n).length - 1) return this.consumer(n, i, axis, 0, undefined, u);
    if (n.opType === 'Concat') {
      const rank = this.dims(n.output[0]!, n).length;
      if ((attrInt(n, 'axis', 0) + rank) % rank === axis) {
        if (!isOne(u)) throw new GroupStop(n, 'Concat along units of several entries');
        return this.concatInto(n, i, axis);
      }
    }
    if (n.opType === 'MatMul' || n.opType === 'Gemm') {
      const rank = this.dims(n.input[0]!, n).length;
      const transA = attrInt(n, 'transA', 0);
      if (i === 0 && w?.length === 2 && axis === rank - 1 && !transA) return this.consumer(n, i, axis, n.opType === 'Gemm' && attrInt(n, 'transB', 0) ? 1 : 0, undefined, u);
      if (n.opType === 'MatMul' && this.units && !w) return this.batchProduct(n, i, axis, u);
      throw new GroupStop(n, 'the channels are multiplied with another activation (an attention product?), not read by a weight');
    }
    if (n.opType === 'FusedMatMul' && this.units && !w && i < 2) return this.batchProduct(n, i, axis, u);
    if (this.units && i === 0 && (n.opType === 'Split' || n.opType === 'Slice')) {
      const rank = this.dims(n.input[0]!, n).length;
      const along = n.opType === 'Split' ? (attrInt(n, 'axis', 0) + rank) % rank === axis : this.slicesAxis(n, axis, rank);
      if (along) return n.opType === 'Split' ? this.splitUnits(n, 0, axis, u) : this.slicePart(n, axis, u);
    }
    const o = this.outAxis(n, i, axis, u);
    this.passThrough(n, o.axis, o.u);
  }

  /**
   * Units mode: a product of two activations (attention's scores and context) on an axis both
   * operands keep as a batch axis (the heads): the other operand's matching axis, unless broadcast
   * (size 1: one tensor shared by every unit), and the output's carry the same units.
   */
  private batchProduct(n: NodeProto, from: number, axis: number, u: Layout): void {
    if (this.passed.has(n)) return;
    const out = this.dims(n.output[0]!, n);
    const views = n.input.slice(0, 2).map((v, k) => operandAxes(n, k, this.dims(v, n).length));
    const ao = from < 0 ? axis : views[from]!.indexOf(axis) + out.length - views[from]!.length;
    if (ao < 0 || ao >= out.length - 2) throw new GroupStop(n, 'the channels are multiplied with another activation along them (not a batch axis of the product)');
    this.passed.add(n);
    // Per unit: its share of the output's entries, each a sum over the contracted axis.
    const a0 = this.dims(n.input[0]!, n);
    this.macs += (prod(out) / this.shapes.batch / this.width) * a0[views[0]![a0.length - 1]!]!;
    n.input.slice(0, 2).forEach((v, k) => {
      if (k === from) return;
      const d = this.dims(v, n);
      const at = ao - (out.length - d.length);
      const ak = at >= 0 ? views[k]![at]! : -1;
      if (ak >= 0 && (d[ak] !== 1 || this.oneUnit(u, v))) this.visit(v, ak, u);
    });
    this.visit(n.output[0]!, ao, u);
  }

  /**
   * Units mode: a fused attention op (headOps.ts): its query, key and value inputs and its context
   * output carry the units on their last axis (each with its own unit size: grouped-query attention's
   * query holds a key/value head's query heads), a packed bias is cut in three parts, and its
   * head-count attributes scale with the units. With one key/value head shared by every query head
   * (multi-query) key and value are not the units'.
   */
  private headOp(n: NodeProto, op: HeadOp): void {
    if (this.passed.has(n)) return;
    this.passed.add(n);
    const absent = op.absent.find((i) => n.input[i]);
    // Outputs beyond the context (GroupQueryAttention's present key and value) are fine while nothing reads them.
    const read = n.output.slice(1).find((o) => o && (this.ix.uses(o).length || this.outputs.has(o)));
    if (absent !== undefined || read) throw new GroupStop(n, `${n.opType} with a key/value cache or a per-head bias (${absent !== undefined ? `input ${absent}` : `output "${read}"`}) has no rule yet`);
    const mask = op.mask !== undefined && n.input[op.mask] ? this.dims(n.input[op.mask]!, n) : undefined;
    if (mask && mask.length >= 3 && mask[mask.length - 3] !== 1) throw new GroupStop(n, `${n.opType}'s mask has a head axis`);
    const attrs = op.attrs.filter((a) => attrInt(n, a, 0) > 0);
    const shared = n.opType === 'GroupQueryAttention' && attrInt(n, 'kv_num_heads', 0) === 1 && attrInt(n, 'num_heads', 0) === this.width;
    const layout = (v: string): { axis: number; u: Layout } => {
      const d = this.dims(v, n);
      const block = d[d.length - 1]! / this.width;
      if (!Number.isInteger(block)) throw new GroupStop(n, `the last axis of "${v}" (${d[d.length - 1]}) does not split into ${this.width} units`);
      return { axis: d.length - 1, u: { block, parts: 1 } };
    };
    const q = layout(n.input[0]!), out = layout(n.output[0]!);
    const qd = this.dims(n.input[0]!, n), kd = this.dims(n.input[n.input[1] ? 1 : 0]!, n);
    // Per unit and example: its share of the scores and of the context.
    this.macs += prod(qd.slice(1, -1)) * prod(kd.slice(1, -1)) * (q.u.block + out.u.block);
    for (const a of attrs) {
      if (shared && a === 'kv_num_heads') continue;
      // Every head count must hold whole units (grouped-query attention: a unit is a key/value head and its query heads, or several).
      if (attrInt(n, a, 0) % this.width) throw new GroupStop(n, `its ${a} (${attrInt(n, a, 0)}) is not a multiple of the ${this.width} units`);
      this.extents.push({ node: nodeName(n), input: -1, index: 0, attribute: a });
    }
    if (op.bias !== undefined && n.input[op.bias]) {
      const sizes = op.heads.map((i) => this.dims(n.input[i]!, n).at(-1)!);
      if (sizes.some((x) => x !== sizes[0]) || this.constWeight(n, op.bias)?.[0] !== 3 * sizes[0]!) throw new GroupStop(n, `${n.opType}'s packed bias does not hold three equal parts`);
      this.cut(n, op.bias, 0, undefined, { block: q.u.block, parts: 3 });
    }
    for (const i of op.heads) {
      if (!n.input[i] || (shared && i > 0)) continue;
      const l = layout(n.input[i]!);
      this.visit(n.input[i]!, l.axis, l.u);
    }
    this.visit(n.output[0]!, out.axis, out.u);
  }

  /** Units mode: onnxruntime's RotaryEmbedding rotates within each head: units of whole heads pass; its `num_heads` scales. */
  private rotary(n: NodeProto, axis: number, u: Layout): void {
    if (this.passed.has(n)) return;
    this.passed.add(n);
    const cos = n.input[2] ? this.dims(n.input[2]!, n) : undefined;
    const size = attrInt(n, 'rotary_embedding_dim', 0) || (cos ? 2 * cos[cos.length - 1]! : 0);
    const rank = this.dims(n.input[0]!, n).length;
    if (rank === 3 && (!size || u.block % size !== 0)) throw new GroupStop(n, `RotaryEmbedding rotates heads of ${size} columns; a unit of ${u.block} columns is not whole heads`);
    if (attrInt(n, 'num_heads', 0) > 0) this.extents.push({ node: nodeName(n), input: -1, index: 0, attribute: 'num_heads' });
    this.visit(n.input[0]!, axis, u);
    this.visit(n.output[0]!, axis, u);
  }

  /**
   * Units mode: onnxruntime's fused `Attention` is the units' producer: its packed weight and bias
   * are cut in three parts (query, key, value) and its `num_heads` / `qkv_hidden_sizes` scale.
   * Returns the context's columns per unit.
   */
  private fusedAttention(n: NodeProto): number {
    if (n.input[4] || n.input[5] || n.output.slice(1).some(Boolean)) throw new GroupStop(n, 'fused Attention with a key/value cache or a per-head bias has no rule yet');
    const w = this.constWeight(n, 1);
    const sizes = attrInts(n, 'qkv_hidden_sizes') ?? (w ? [w[1]! / 3, w[1]! / 3, w[1]! / 3] : []);
    if (!w || w.length !== 2 || sizes.length !== 3 || sizes.some((x) => x % this.width) || sizes[0] !== sizes[1]) throw new GroupStop(n, 'fused Attention whose packed weight does not split into query, key and value parts of whole units');
    this.producers.add(n);
    // Query, key and value columns one after the other (value heads may be wider: qkv_hidden_sizes).
    let offset = 0;
    for (const size of sizes) {
      const range = { offset, extent: w[1]! };
      this.cut(n, 1, 1, range, { block: size / this.width, parts: 1 });
      if (n.input[2] && this.ix.constant(n.input[2]!)) this.cut(n, 2, 0, range, { block: size / this.width, parts: 1 });
      offset += size;
    }
    this.extents.push({ node: nodeName(n), input: -1, index: 0, attribute: 'num_heads' });
    if (attrInts(n, 'qkv_hidden_sizes')) for (let j = 0; j < 3; j++) this.extents.push({ node: nodeName(n), input: -1, index: j, attribute: 'qkv_hidden_sizes' });
    const out = this.dims(n.output[0]!, n);
    const tokens = prod(out.slice(1, -1));
    const [dq, dv] = [sizes[0]! / this.width, sizes[2]! / this.width];
    // Per unit and example: its columns of the projection, its share of the scores and of the context.
    this.macs += tokens * w[0]! * (2 * dq + dv) + tokens * tokens * (dq + dv);
    return dv;
  }

  /**
   * Units mode: an Einsum with a constant weight that sums the units' axis away (an output
   * projection with its weight as [heads, d, hidden]): a consumer, the weight cut along that axis.
   */
  private einsumConsumer(n: NodeProto, axis: number, u: Layout): void {
    const eq = String(attr(n, 'equation') ?? '').replace(/\s/g, '');
    const [lhs, rhs] = eq.split('->');
    const [x, w] = (lhs ?? '').split(',');
    const letter = x?.[axis];
    if (!x || !w || rhs === undefined || eq.includes('.') || !letter || rhs.includes(letter) || !w.includes(letter)) throw new GroupStop(n, `Einsum "${eq}" does not sum the channels against its weight`);
    this.masks.push({ node: nodeName(n), input: 0, axis, rank: x.length });
    if (this.consumers.has(n)) return;
    this.consumers.add(n);
    this.cut(n, 1, w.indexOf(letter), undefined, u);
    const wd = this.constWeight(n, 1)!, out = this.dims(n.output[0]!, n);
    const summed = [...w].filter((c) => !rhs.includes(c)).reduce((p, c) => p * wd[w.indexOf(c)]!, 1);
    this.macs += (prod(out) / this.shapes.batch) * (summed / this.width);
  }

  /**
   * Whether a size-1 axis of `v` holds the units rather than broadcasting over them: only when the
   * axis holds one entry in all (one unit left, one entry per unit: a feed-forward block cut to one
   * neuron, an attention cut to one head) and `v` is computed from weights (rotary's cos and sin, a
   * mask, a position-bias table are the same for any head).
   */
  private oneUnit(u: Layout, v: string): boolean {
    if (this.width * u.block * u.parts !== 1) return false;
    const likely = !this.ix.upstream(v, 400, (_, p) => (p && (isWeightProducer(this.ix, p) || p.opType === 'MatMulNBits') ? 'fail' : 'go'));
    // Either reading is possible (a per-head bias of the one head left, or a mask broadcast over heads): the other is tried when this one stops.
    return this.choose(`${v}~1`, 2) === 0 ? likely : !likely;
  }

  /** Which of `options` readings to take at an ambiguous step `key` ({@link ambiguous}, {@link choices}). */
  private choose(key: string, options: number): number {
    if (!this.ambiguous.some((x) => x.key === key)) this.ambiguous.push({ key, options });
    return Math.min(this.choices.get(key) ?? 0, options - 1);
  }

  /** A producer of the units, laid out as `u` in its output features (a head's columns). */
  private producer(n: NodeProto, u: Layout = ONE): void {
    if (this.producers.has(n)) return;
    this.producers.add(n);
    const out = this.dims(n.output[0]!, n);
    const per = u.block * u.parts;
    if (n.opType === 'MatMulNBits') {
      // Packed codes read as [out, in] (graph/nbits.ts): the units are its output rows.
      this.cut(n, 1, 0, undefined, u);
      this.macs += (prod(out.slice(0, -1)) / this.shapes.batch) * attrInt(n, 'K', 0) * per;
      return;
    }
    const w = this.constWeight(n, 1)!;
    if (n.opType === 'Conv') {
      this.cut(n, 1, 0);
      this.cut(n, 2, 0);
      this.macs += prod(out.slice(2)) * prod(w.slice(1));
    } else {
      const transB = n.opType === 'Gemm' && attrInt(n, 'transB', 0) === 1;
      this.cut(n, 1, transB ? 0 : 1, undefined, u);
      if (n.opType === 'Gemm' && n.input[2]) {
        const c = this.constWeight(n, 2);
        if (!c || c[c.length - 1] !== this.width * per) throw new GroupStop(n, 'the Gemm bias does not have one value per output feature');
        this.cut(n, 2, c.length - 1, undefined, u);
      }
      this.macs += (prod(out.slice(0, -1)) / this.shapes.batch) * w[transB ? 1 : 0]! * per;
    }
  }

  /** A consumer of the units, laid out as `u` in its input features. */
  private consumer(n: NodeProto, i: number, axis: number, weightAxis: number, range?: Range, u: Layout = ONE): void {
    this.masks.push({ node: nodeName(n), input: i, axis, rank: this.dims(n.input[i]!, n).length, ...range });
    if (this.consumers.has(n)) return;
    this.consumers.add(n);
    const out = this.dims(n.output[0]!, n);
    const per = u.block * u.parts;
    if (n.opType === 'MatMulNBits') {
      this.cut(n, 1, 1, undefined, u);
      this.macs += (prod(out.slice(0, -1)) / this.shapes.batch) * attrInt(n, 'N', 0) * per;
      return;
    }
    this.cut(n, 1, weightAxis, range, u);
    const w = this.constWeight(n, 1)!;
    if (n.opType === 'Conv') this.macs += prod(out.slice(2)) * w[0]! * prod(w.slice(2));
    else this.macs += (prod(out.slice(0, -1)) / this.shapes.batch) * w[weightAxis === 0 ? 1 : 0]! * per;
  }

  private depthwiseConv(n: NodeProto): void {
    if (this.depthwise.has(n)) return;
    this.depthwise.add(n);
    this.cut(n, 1, 0);
    this.cut(n, 2, 0);
    const w = this.constWeight(n, 1)!;
    this.macs += prod(this.dims(n.output[0]!, n).slice(2)) * prod(w.slice(2));
    this.visit(n.input[0]!, 1);
    this.visit(n.output[0]!, 1);
  }

  /**
   * Input i of a Concat along the channels: the group's channels become entries offset.. of the
   * output's longer axis, next to other groups' channels. From there only ops that treat every
   * channel alike (activations, BatchNorm, constants broadcast per channel) and the consumers that
   * read them are followed; each cut takes the group's range of the longer axis.
   */
  private concatInto(n: NodeProto, i: number, axis: number): void {
    if (n.input.filter((v) => v === n.input[i]).length > 1) throw new GroupStop(n, 'the same channels are concatenated twice');
    this.passed.add(n);
    const offset = n.input.slice(0, i).reduce((o, v) => o + this.dims(v, n)[axis]!, 0);
    this.visitRange(n.output[0]!, axis, { offset, extent: this.dims(n.output[0]!, n)[axis]! });
  }

  private visitRange(value: string, axis: number, range: Range): void {
    const key = `${value}#${axis}@${range.offset}`;
    if (this.seen.has(key)) return;
    this.seen.set(key, { value, axis, offset: range.offset });
    const p = this.ix.producer.get(value);
    if (this.dims(value, p)[axis] !== range.extent) throw new GroupStop(p, `axis ${axis} of "${value}" does not have the ${range.extent} concatenated channels`);
    if (this.outputs.has(value)) throw new GroupStop(p, `the channels reach the graph output "${value}"`);
    for (const c of this.ix.uses(value)) {
      c.input.forEach((v, i) => {
        if (v !== value) return;
        const w = this.constWeight(c, 1);
        const rank = this.dims(value, c).length;
        if (c.opType === 'Conv' && i === 0 && w && !isDepthwise(c, w) && attrInt(c, 'group', 1) === 1 && axis === 1) return this.consumer(c, 0, 1, 1, range);
        if ((c.opType === 'MatMul' || c.opType === 'Gemm') && i === 0 && w?.length === 2 && axis === rank - 1 && !attrInt(c, 'transA', 0)) return this.consumer(c, 0, axis, c.opType === 'Gemm' && attrInt(c, 'transB', 0) ? 1 : 0, range);
        if ((UNARY.has(c.opType) && c.opType !== 'PRelu') || c.opType === 'Cast') return this.visitRange(c.output[0]!, axis, range);
        if (c.opType === 'BatchNormalization' && axis === 1) {
          for (let k = 1; k < c.input.length; k++) this.cut(c, k, 0, range);
          return this.visitRange(c.output[0]!, axis, range);
        }
        if (BINARY.has(c.opType) && c.opType !== 'Where') {
          const outRank = this.dims(c.output[0]!, c).length;
          c.input.forEach((u, k) => {
            if (k === i || !u) return;
            const d = this.dims(u, c);
            const ak = axis - (outRank - d.length);
            if (ak < 0 || d[ak] === 1) return;
            if (!this.ix.constant(u)) throw new GroupStop(c, `${c.opType} combines the concatenated channels with another branch`);
            this.cut(c, k, ak, range);
          });
          return this.visitRange(c.output[0]!, axis, range);
        }
        throw new GroupStop(c, `${c.opType} reads channels concatenated with others (only activations, BatchNorm and the weights reading them are followed)`);
      });
    }
  }

  /** The output axis (and its unit size) carrying input i's axis `a` through a pass-through op. */
  private outAxis(n: NodeProto, i: number, a: number, u: Layout): { axis: number; u: Layout } {
    const op = n.opType;
    const inDims = this.dims(n.input[i]!, n);
    const outDims = this.dims(n.output[0]!, n);
    if (BINARY.has(op) || (op === 'Expand' && this.units)) return { axis: a + outDims.length - inDims.length, u };
    if (op === 'Transpose') return { axis: (attr(n, 'perm') as number[]).indexOf(a), u };
    if (REDUCES.has(op)) {
      const axes = reducedAxes(this.ix, n, inDims.length);
      if (!axes || axes.includes(a)) throw new GroupStop(n, `${op} reduces over the channels`);
      return { axis: attrInt(n, 'keepdims', 1) ? a : a - axes.filter((x) => x < a).length, u };
    }
    if (op === 'Reshape' || op === 'Flatten' || op === 'Squeeze' || op === 'Unsqueeze') {
      const o = this.reshaped(n, inDims, outDims, a, u, '>');
      if (!o) throw new GroupStop(n, `${op} splits or merges the channel axis`);
      return o;
    }
    if (op === 'Gather' && i !== 0) throw new GroupStop(n, 'the channels are used as indices');
    if (op === 'Gather' && this.units) {
      const o = gatheredAxis(n, a, inDims.length, this.indexRank(n));
      if (o < 0) throw new GroupStop(n, 'Gather works along the channel axis');
      return { axis: o, u };
    }
    return { axis: a, u };
  }

  /**
   * Where a Reshape moves the units on axis `a`: in cut mode only to an axis of the same size; in
   * units mode also split (a head's `d` columns become an axis of their own) or merged (heads back
   * into the channels, or a key/value head's repeats into the query heads), the unit size following.
   */
  private reshaped(n: NodeProto, inDims: number[], outDims: number[], a: number, u: Layout, way: string): { axis: number; u: Layout } | undefined {
    if (!this.units) {
      const o = reshapedAxis(inDims, outDims, a);
      return o === undefined ? undefined : { axis: o, u };
    }
    const options = reshapedUnits(inDims, outDims, a, this.width, u);
    const o = options[options.length > 1 ? this.choose(`${nodeName(n)}${way}${a}#${u.block}#${u.parts}`, options.length) : 0];
    return o && { axis: o.axis, u: { block: o.block, parts: o.parts } };
  }

  /**
   * A Shape of a group value is harmless when the channel count it reads only sizes a Resize of the
   * group's own channels (read at run time, so it follows the cut) or is not read at all (H, W).
   */
  private shapeRead(n: NodeProto, a: number): void {
    if (this.units) return;
    this.shapeFlow(n.output[0]!, a - attrInt(n, 'start', 0), n);
  }

  private shapeFlow(v: string, pos: number, shape: NodeProto): void {
    const ix = this.ix;
    for (const u of ix.uses(v)) {
      const ints = (i: number): number[] | undefined => (u.input[i] ? ix.constInts(u.input[i]!) : undefined);
      if (u.opType === 'Gather' && ints(1) && !ints(1)!.includes(pos)) continue;
      if (u.opType === 'Slice' && ints(1) && ints(2)) {
        const [s0, e0] = [ints(1)![0]!, Math.min(ints(2)![0]!, 1 << 30)];
        if (pos >= s0 && pos < e0) this.shapeFlow(u.output[0]!, pos - s0, shape);
        continue;
      }
      if (u.opType === 'Cast') { this.shapeFlow(u.output[0]!, pos, shape); continue; }
      if (u.opType === 'Concat') {
        const k = u.input.indexOf(v);
        const offset = u.input.slice(0, k).reduce((o, x) => o + this.dims(x, u)[0]!, 0);
        this.shapeFlow(u.output[0]!, offset + pos, shape);
        continue;
      }
      if (u.opType === 'Resize' && u.input[3] === v && u.input[0]) { this.resizes.push({ node: u, slot: `${u.input[0]}#${pos}` }); continue; }
      throw new GroupStop(u, `reads the channel count from Shape node "${shape.name || shape.output[0]}"`);
    }
  }

  private indexRank(n: NodeProto): number {
    return this.dims(n.input[1]!, n).length;
  }

  /** Whether a Slice cuts along `axis` (constant axes; all axes when none are given). */
  private slicesAxis(n: NodeProto, axis: number, rank: number): boolean {
    const axes = n.input[3] ? this.ix.constInts(n.input[3]!) : Array.from({ length: rank }, (_, i) => i);
    return !axes || axes.some((x) => (x + rank) % rank === axis);
  }

  /**
   * Units mode: a Split along the units' axis into equal outputs that each hold whole parts (packed
   * Q/K/V split into Q, K and V): each output holds the units with fewer parts. `from` is the input
   * index reached (0) or -1 when reached from an output.
   */
  private splitUnits(n: NodeProto, from: number, axis: number, u: Layout): void {
    if (this.passed.has(n)) return;
    this.passed.add(n);
    const sizes = splitSizes(this.ix, this.shapes, n);
    const outs = n.output.length;
    if (!sizes || sizes.some((x) => x !== sizes[0])) throw new GroupStop(n, 'Split divides the units into unequal parts');
    const whole = from < 0 ? { block: u.block, parts: u.parts * outs } : u;
    const each = { block: whole.block, parts: whole.parts / outs };
    if (!Number.isInteger(each.parts) || sizes[0] !== this.width * each.block * each.parts) throw new GroupStop(n, 'Split does not divide the units into whole parts');
    const sizesAt = n.input[1] ? 1 : attrInts(n, 'split') ? -1 : undefined;
    if (sizesAt !== undefined) n.output.forEach((_, j) => this.extents.push({ node: nodeName(n), input: sizesAt, index: j, ...(sizesAt < 0 ? { attribute: 'split' } : {}) }));
    this.visit(n.input[0]!, axis, whole);
    for (const o of n.output) if (o) this.visit(o, axis, each);
  }

  /**
   * Units mode: a Slice along the units' axis that takes whole parts (packed Q/K/V sliced into Q, K
   * and V with constant bounds, step 1); `backward` when reached from its output.
   */
  private slicePart(n: NodeProto, axis: number, u: Layout, backward = false): void {
    if (this.passed.has(n)) return;
    this.passed.add(n);
    const inDims = this.dims(n.input[0]!, n);
    const rank = inDims.length;
    // Bounds computed at run time (torch's chunk: from the measured channel count) are read as measured.
    const ints = (i: number): number[] | undefined => (n.input[i] ? this.ix.constInts(n.input[i]!) ?? this.shapes.ints.get(n.input[i]!) : undefined);
    const [starts, ends] = [ints(1), ints(2)];
    const axes = n.input[3] ? ints(3) : Array.from({ length: rank }, (_, i) => i);
    const k = axes?.findIndex((x) => (x + rank) % rank === axis) ?? -1;
    const steps = ints(4);
    if (!starts || !ends || k < 0 || (steps && steps[k] !== 1)) throw new GroupStop(n, 'Slice cuts along the channel axis (bounds not known)');
    const part = this.width * u.block;
    const size = inDims[axis]!;
    const clamp = (x: number): number => Math.min(Math.max(x < 0 ? x + size : x, 0), size);
    const [s0, e0] = [clamp(starts[k]!), clamp(ends[k]!)];
    if (size % part || s0 % part || (e0 - s0) % part || e0 <= s0) throw new GroupStop(n, 'Slice cuts along the channel axis, not at whole parts of the units');
    this.extents.push({ node: nodeName(n), input: 1, index: k }, { node: nodeName(n), input: 2, index: k });
    this.visit(n.input[0]!, axis, { block: u.block, parts: backward ? size / part : u.parts });
    this.visit(n.output[0]!, axis, { block: u.block, parts: (e0 - s0) / part });
  }

  private passThrough(n: NodeProto, a: number, u: Layout): void {
    if (this.passed.has(n)) return;
    this.passed.add(n);
    const op = n.opType;
    const out = n.output[0]!;
    const outDims = this.dims(out, n);
    const ix = this.ix;
    const data = n.input[0]!;
    const inRank = (i: number): number => this.dims(n.input[i]!, n).length;
    const single = (why: string): void => { if (!isOne(u)) throw new GroupStop(n, `${op} ${why}`); };
    if (UNARY.has(op) || op === 'Cast') {
      if (op === 'PRelu') this.broadcastInputs(n, a, outDims.length, u);
      this.visit(data, a, u);
    } else if (BINARY.has(op)) {
      const computed = this.broadcastInputs(n, a, outDims.length, u);
      // Units mode: a term computed from constants alone (a per-head position bias gathered from a table) is the units' own parameter.
      const branches = this.units ? computed.filter(([v]) => !this.fromConstants(v)) : computed;
      if (SUMS.has(op) && branches.length > 1 && !this.sameSource(branches)) {
        throw new GroupStop(n, 'the channels are summed with another branch (a residual stream): the whole stream would have to be cut together');
      }
      for (const [v, ai] of computed) this.visit(v, ai, u);
    } else if (op === 'BatchNormalization' || op === 'InstanceNormalization') {
      if (a !== 1) throw new GroupStop(n, `${op} normalises another axis than the channels`);
      single('with units of several channels');
      for (let i = 1; i < n.input.length; i++) this.cut(n, i, 0);
      this.visit(data, a);
    } else if (op === 'Transpose') {
      this.visit(data, (attr(n, 'perm') as number[])[a]!, u);
    } else if (op === 'Expand' && this.units) {
      // The units' axis broadcast from size 1: one tensor shared by every unit (multi-query attention's keys and values) is not theirs.
      const d = this.dims(data, n);
      const ai = a - (outDims.length - d.length);
      const at = a - (outDims.length - this.dims(n.input[1]!, n)[0]!);
      if (at >= 0) this.extents.push({ node: nodeName(n), input: 1, index: at });
      if (ai >= 0 && (d[ai] !== 1 || this.oneUnit(u, data))) this.visit(data, ai, u);
    } else if (POOLS.has(op)) {
      if (a !== 1) throw new GroupStop(n, `${op} with the channels on axis ${a}`);
      single('with units of several channels');
      this.visit(data, 1);
    } else if (REDUCES.has(op)) {
      const axes = reducedAxes(ix, n, inRank(0));
      if (!axes) throw new GroupStop(n, `${op} axes are not constant`);
      const kept = Array.from({ length: inRank(0) }, (_, i) => i).filter((i) => !axes.includes(i));
      const ai = attrInt(n, 'keepdims', 1) ? a : kept[a]!;
      if (axes.includes(ai)) throw new GroupStop(n, `${op} reduces over the channels`);
      this.visit(data, ai, u);
    } else if (op === 'Reshape' || op === 'Flatten' || op === 'Squeeze' || op === 'Unsqueeze') {
      const back = this.reshaped(n, outDims, this.dims(data, n), a, u, '<');
      // The reading back must come forth to the same axis and layout.
      const forth = !back ? [] : this.units
        ? reshapedUnits(this.dims(data, n), outDims, back.axis, this.width, back.u)
        : [{ axis: reshapedAxis(this.dims(data, n), outDims, back.axis), block: u.block, parts: u.parts }];
      if (!back || !forth.some((f) => f.axis === a && f.block === u.block && f.parts === u.parts)) throw new GroupStop(n, `${op} splits or merges the channel axis`);
      if (op === 'Reshape') {
        const shape = ix.constInts(n.input[1]!);
        if (!shape && !this.units) throw new GroupStop(n, 'Reshape with a run-time shape carries the channel count');
        if (shape?.[a] === this.width) this.reshapes.push({ node: nodeName(n), index: a });
        if (this.units) this.extents.push({ node: nodeName(n), input: 1, index: a });
      }
      this.visit(data, back.axis, back.u);
    } else if (op === 'Concat') {
      const ax = (attrInt(n, 'axis', 0) + outDims.length) % outDims.length;
      if (ax === a) throw new GroupStop(n, 'the channels are concatenated with other channels');
      n.input.forEach((v, i) => { if (ix.constant(v)) this.cut(n, i, a, undefined, u); else this.visit(v, a, u); });
    } else if (op === 'Split' || op === 'Slice' || op === 'Pad' || op === 'Resize' || op === 'Upsample' || op === 'Softmax' || op === 'LogSoftmax' || op === 'LayerNormalization' || op === 'Gather') {
      let ai = a;
      if (op === 'Gather' && this.units) {
        // Units mode: the gathered axis may come before the units' (a part picked from packed Q/K/V).
        ai = gatheredAxis(n, a, this.dims(data, n).length, this.indexRank(n), true);
        if (ai < 0 || this.dims(data, n)[ai] !== outDims[a]) throw new GroupStop(n, 'Gather works along the channel axis');
      } else this.checkAxisOp(n, a, outDims.length);
      // Units mode: a per-unit table (a position bias [rows, heads]) is cut where it is read.
      if (this.units && op === 'Gather' && this.ix.constant(data)) this.cut(n, 0, ai, undefined, u);
      else this.visit(data, ai, u);
      for (const o of n.output.slice(1)) if (o && op === 'Split') this.visit(o, a, u);
    } else {
      throw new GroupStop(n, `${op} has no channel rule`);
    }
    this.visit(out, a, u);
  }

  /**
   * Summed inputs that all come, element by element, from one slot (tanh GELU's `x + 0.044715 x^3`,
   * rotary's `q cos + rotate_half(q) sin`, whose cos and sin are the same for every channel): the
   * sum keeps every channel its own. A residual stream's inputs come from different values.
   */
  private sameSource(inputs: Array<[string, number]>): boolean {
    const from = new Set<string>();
    for (const [v, a] of inputs) this.sources(v, a, from, 0);
    const others = [...from].filter((k) => k !== 'seen');
    return others.length === 0 || (others.length === 1 && !from.has('seen'));
  }

  private sources(value: string, axis: number, acc: Set<string>, depth: number): void {
    if ([...this.seen.values()].some((s) => s.value === value && s.axis === axis && s.offset === undefined)) { acc.add('seen'); return; }
    const p = this.ix.producer.get(value);
    if (!p || depth > 16) { acc.add(`${value}#${axis}#${depth > 16 ? 'deep' : ''}`); return; }
    const op = p.opType;
    const rank = this.dims(value, p).length;
    const along = (k: number): boolean => (k + rank) % rank === axis;
    const elementwise = UNARY.has(op) || op === 'Cast' || (BINARY.has(op) && op !== 'Where');
    const elsewhere = (op === 'Concat' && !along(attrInt(p, 'axis', 0))) || (op === 'Split' && !along(attrInt(p, 'axis', 0)))
      || (op === 'Slice' && !!p.input[3] && !!this.ix.constInts(p.input[3]!) && !this.ix.constInts(p.input[3]!)!.some(along));
    if (!elementwise && !elsewhere) { acc.add(`${value}#${axis}`); return; }
    for (const v of op === 'Slice' || op === 'Split' ? [p.input[0]!] : p.input) {
      if (!v || this.ix.constant(v)) continue;
      const d = this.dims(v, p);
      const av = axis - (rank - d.length);
      // Broadcast along the channels (rotary's cos and sin, a mask): the same for every channel.
      if (av < 0 || d[av] === 1) continue;
      this.sources(v, av, acc, depth + 1);
    }
  }

  /** Cut constant inputs that carry the axis; return the computed inputs that carry it. */
  private broadcastInputs(n: NodeProto, a: number, outRank: number, u: Layout): Array<[string, number]> {
    const computed: Array<[string, number]> = [];
    n.input.forEach((v, i) => {
      if (!v) return;
      const d = this.dims(v, n);
      const ai = a - (outRank - d.length);
      // A group one channel wide: a computed input of size 1 on the axis carries that channel (a feed-forward block cut to one neuron).
      if (ai < 0 || (d[ai] === 1 && (this.ix.constant(v) || !this.oneUnit(u, v)))) return;
      // Units mode: a term computed from the integer inputs alone (a padding mask repeated over the heads) is the same for every unit.
      if (this.units && !this.ix.constant(v) && this.fromIntegerInputs(v)) return;
      if (this.ix.constant(v)) this.cut(n, i, ai, undefined, u);
      else computed.push([v, ai]);
    });
    return computed;
  }

  /**
   * Whether a value is computed from integer graph inputs (lengths, masks, ids), shapes and constants
   * of at most one float entry only: no weight, no embedding table, no float input's values and no
   * Range (which may number the heads) on its way.
   */
  private fromIntegerInputs(value: string): boolean {
    const floats = new Set(this.ix.graph.input.filter((i) => i.type?.value.case === 'tensorType' && FLOAT_TYPES.has(i.type.value.value.elemType)).map((i) => i.name));
    return this.ix.upstream(value, 400, (v, p) => {
      if (floats.has(v)) return 'fail';
      const c = this.ix.constant(v);
      if (c) return FLOAT_TYPES.has(c.dataType) && elementCount(c.dims) > 1 ? 'fail' : 'stop';
      // A Range may number the heads (ALiBi's slopes): not the same for every unit.
      if (p?.opType === 'Range') return 'fail';
      // A Shape reads only the dims of its input, not its values.
      return p?.opType === 'Shape' ? 'stop' : 'go';
    });
  }

  /** Whether a value is computed from constants alone (no graph input on its way). */
  private fromConstants(value: string): boolean {
    const inputs = new Set(this.ix.graph.input.map((i) => i.name));
    return this.ix.upstream(value, 64, (v) => (inputs.has(v) && !this.ix.constant(v) ? 'fail' : this.ix.constant(v) ? 'stop' : 'go'));
  }

  private checkAxisOp(n: NodeProto, a: number, rank: number): void {
    const op = n.opType;
    const norm = (x: number): number => (x < 0 ? x + rank : x);
    if (op === 'Split' || op === 'Gather' || op === 'Softmax' || op === 'LogSoftmax') {
      if (norm(attrInt(n, 'axis', op === 'Softmax' || op === 'LogSoftmax' ? -1 : 0)) === a) throw new GroupStop(n, `${op} works along the channel axis`);
    } else if (op === 'LayerNormalization') {
      if (a >= norm(attrInt(n, 'axis', -1))) throw new GroupStop(n, 'LayerNormalization normalises over these channels: cutting some changes the statistics of the rest');
    } else if (op === 'Slice') {
      if (this.slicesAxis(n, a, rank)) throw new GroupStop(n, 'Slice cuts along the channel axis');
    } else if (op === 'Pad') {
      const pads = n.input[1] ? this.ix.constInts(n.input[1]) : undefined;
      if (!pads || pads[a] || pads[a + rank]) throw new GroupStop(n, 'Pad pads the channel axis (or its pads are not constant)');
    }
  }
}
