import type { NodeProto } from '../onnx/schema';
import { attrInt, attrInts, type GraphIndex } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import { GroupStop, nodeName } from './propagate';
import type { MeasuredShapes } from './shapes';
import type { ChannelGroup, UnitSite } from './types';

/** One entry of an integer vector (a shape, sizes, bounds): a constant, a dim read at run time, a product of the two, or something else computed. */
type Entry =
  | { kind: 'literal'; site: UnitSite }
  | { kind: 'dim'; value: string; axis: number }
  | { kind: 'product'; literal: UnitSite; other: Entry; times: string }
  | { kind: 'opaque'; value: string };

const PASS = new Set(['Cast', 'Identity', 'Squeeze', 'Unsqueeze']);

/** The entries of integer vector `v`, read as input `input` of `reader`; undefined where its length is not known. */
function entries(ix: GraphIndex, shapes: MeasuredShapes, v: string, reader: NodeProto, input: number, depth = 0): Entry[] | undefined {
  const c = ix.constInts(v);
  if (c) return c.map((value, index) => ({ kind: 'literal', site: { node: nodeName(reader), input, index, value } }));
  const p = ix.producer.get(v);
  if (!p || depth > 24) return undefined;
  const one = (): Entry[] | undefined => (shapes.ints.get(v)?.length === 1 ? [{ kind: 'opaque', value: v }] : undefined);
  if (PASS.has(p.opType)) return entries(ix, shapes, p.input[0]!, p, 0, depth + 1);
  switch (p.opType) {
    // torch's expand guards its shape against -1 entries: Where(Equal(shape, -1), ones, shape).
    case 'Where': {
      const guard = ix.producer.get(p.input[0]!);
      return guard?.opType === 'Equal' && guard.input.includes(p.input[2]!) ? entries(ix, shapes, p.input[2]!, p, 2, depth + 1) : one();
    }
    case 'Reshape':
      return ix.constInts(p.input[1]!)?.length === 1 ? entries(ix, shapes, p.input[0]!, p, 0, depth + 1) : one();
    case 'Shape': {
      const x = p.input[0]!;
      const c0 = ix.constant(x);
      const rank = (c0 ? tensorShape(c0) : shapes.get(x))?.length;
      if (rank === undefined) return undefined;
      const norm = (a: number): number => Math.min(Math.max(a < 0 ? a + rank : a, 0), rank);
      const [s, e] = [norm(attrInt(p, 'start', 0)), norm(attrInt(p, 'end', rank))];
      return Array.from({ length: Math.max(e - s, 0) }, (_, i) => ({ kind: 'dim', value: x, axis: s + i }));
    }
    case 'Concat': {
      const out: Entry[] = [];
      for (let j = 0; j < p.input.length; j++) {
        const part = entries(ix, shapes, p.input[j]!, p, j, depth + 1);
        if (!part) return undefined;
        out.push(...part);
      }
      return out;
    }
    case 'Gather': {
      const idx = ix.constInts(p.input[1]!) ?? shapes.ints.get(p.input[1]!);
      const data = entries(ix, shapes, p.input[0]!, p, 0, depth + 1);
      if (!idx || !data || attrInt(p, 'axis', 0) !== 0) return one();
      const picked = idx.map((i) => data[i < 0 ? i + data.length : i]);
      return picked.every((x) => x) ? (picked as Entry[]) : undefined;
    }
    case 'Slice': {
      const ints = (i: number): number[] | undefined => (p.input[i] ? ix.constInts(p.input[i]!) ?? shapes.ints.get(p.input[i]!) : undefined);
      const [starts, ends, steps] = [ints(1) ?? attrInts(p, 'starts'), ints(2) ?? attrInts(p, 'ends'), ints(4)];
      const data = entries(ix, shapes, p.input[0]!, p, 0, depth + 1);
      if (!data || !starts || !ends || starts.length !== 1 || (steps && steps[0] !== 1)) return one();
      const n = data.length;
      const clamp = (x: number): number => Math.min(Math.max(x < 0 ? x + n : x, 0), n);
      return data.slice(clamp(starts[0]!), clamp(ends[0]!));
    }
    case 'Mul': {
      const [a, b] = [entries(ix, shapes, p.input[0]!, p, 0, depth + 1), entries(ix, shapes, p.input[1]!, p, 1, depth + 1)];
      if (a?.length === 1 && b?.length === 1) {
        const [x, y] = [a[0]!, b[0]!];
        if (y.kind === 'literal' && x.kind !== 'literal') return [{ kind: 'product', literal: y.site, other: x, times: p.input[0]! }];
        if (x.kind === 'literal' && y.kind !== 'literal') return [{ kind: 'product', literal: x.site, other: y, times: p.input[1]! }];
      }
      return one();
    }
    default:
      return one();
  }
}

/** The extent of the axis a Slice's `k`-th bound applies to (a bound at or past it means "to the end"). */
function sliceExtent(ix: GraphIndex, shapes: MeasuredShapes, n: NodeProto, k: number): number {
  const dims = shapes.get(n.input[0]!)!;
  const axes = n.input[3] ? ix.constInts(n.input[3]!) ?? shapes.ints.get(n.input[3]!) : undefined;
  const a = axes ? axes[k]! : k;
  return dims[a < 0 ? a + dims.length : a]!;
}

/** Integer ops a shape computation passes through on its way to the nodes that read it. */
const SHAPE_FLOW = new Set(['Concat', 'Unsqueeze', 'Squeeze', 'Cast', 'Identity', 'Gather', 'Slice', 'Reshape', 'Where', 'Equal', 'Mul', 'ConstantOfShape', 'Shape']);

/** Whether the integers `from` computes reach only nodes in `ends` (through shape arithmetic): then all of them change together. */
function feedsOnly(ix: GraphIndex, from: NodeProto, ends: Set<NodeProto>): boolean {
  const stack = [from];
  const seen = new Set<NodeProto>();
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    if (ix.graph.output.some((o) => n.output.includes(o.name))) return false;
    for (const u of ix.uses(n.output[0]!)) {
      if (ends.has(u)) continue;
      if (!SHAPE_FLOW.has(u.opType) || seen.size > 64) return false;
      stack.push(u);
    }
  }
  return true;
}

/**
 * The constants to rewrite when a group's units are cut: for every entry holding the units' extent
 * (a Reshape or Expand shape entry, a Split size, a Slice bound), the literal it is, a width read
 * from another value, or a product of a dim and a literal (`batch * heads` when heads are folded into
 * the batch; a shared key/value head repeated `heads` times); nothing where the entry is -1 or 0 (inferred or copied), or is
 * computed from a dim of the group's own values (it follows the cut at run time).
 * @throws GroupStop when an entry is computed in another way (it could not be rewritten)
 */
export function unitSites(ix: GraphIndex, shapes: MeasuredShapes, group: ChannelGroup): UnitSite[] {
  const slots = new Set(group.slots.filter((s) => s.offset === undefined).map((s) => `${s.value}#${s.axis}`));
  const values = new Set(group.slots.map((s) => s.value));
  const nodes = new Map(ix.graph.node.map((n) => [nodeName(n), n]));
  const follows = (e: Entry): boolean => {
    if (e.kind === 'dim') return slots.has(`${e.value}#${e.axis}`);
    if (e.kind === 'product') return follows(e.other);
    if (e.kind === 'literal') return false;
    // Computed at run time: it follows the cut when it reads a dim of the group's values.
    return !ix.upstream(e.value, 400, (_, p) => (p?.opType === 'Shape' && values.has(p.input[0]!) ? 'fail' : 'go'));
  };
  const ends = new Set((group.extents ?? []).map((x) => nodes.get(x.node)!));
  const sites = new Map<string, UnitSite>();
  const add = (s: UnitSite): void => { sites.set(`${s.node}#${s.input}#${s.attribute ?? ''}#${s.index}`, s); };
  for (const x of group.extents ?? []) {
    const n = nodes.get(x.node)!;
    const where = (why: string): GroupStop => new GroupStop(n, `${why} (entry ${x.index} of its ${n.opType === 'Split' ? 'sizes' : n.opType === 'Slice' ? 'bounds' : 'shape'})`);
    if (x.input < 0) {
      const value = attrInts(n, x.attribute!)?.[x.index] ?? attrInt(n, x.attribute!, 0);
      if (value % group.width !== 0) throw where(`its ${x.attribute} (${value}) is not a multiple of the ${group.width} units`);
      add({ ...x, value });
      continue;
    }
    const e = entries(ix, shapes, n.input[x.input]!, n, x.input)?.[x.index];
    if (!e) throw where('the units\' extent is computed in a way that cannot be followed');
    if (e.kind === 'literal') {
      const v = e.site.value;
      const kept = (n.opType === 'Reshape' && (v === -1 || v === 0)) || (n.opType === 'Expand' && v === 1) || (n.opType === 'Slice' && (v === 0 || v >= sliceExtent(ix, shapes, n, x.index)));
      if (kept) continue;
      if (v % group.width !== 0) throw where(`the literal ${v} is not a multiple of the ${group.width} units`);
      // A literal inside a run-time computation is rewritten where it is read when that computation
      // feeds only this group's extents; one shared (with other layers, after onnxruntime's optimizer)
      // is left alone and the entry is spliced in at the node itself.
      const own = (e.site.node === x.node && e.site.input === x.input) || feedsOnly(ix, nodes.get(e.site.node)!, ends);
      const measured = shapes.ints.get(n.input[x.input]!);
      if (!own && !measured) throw where('the shape is computed at run time and was not measured');
      add(own ? e.site : { ...x, value: v, length: measured!.length });
    } else if (!follows(e)) {
      const measured = shapes.ints.get(n.input[x.input]!);
      // `batch * heads` (heads folded into the batch), a shared key/value head repeated `heads` times: the
      // entry becomes the same product with the kept count (the product itself may size other tensors too).
      if (e.kind === 'product' && e.literal.value % group.width === 0 && measured) {
        if (feedsOnly(ix, nodes.get(e.literal.node)!, ends)) add(e.literal);
        else add({ ...x, value: e.literal.value, length: measured.length, times: e.times });
      }
      // A width read from another value (timm's `reshape(B, N, C)` with C the stream's width): the entry becomes a literal.
      else if (e.kind === 'dim' && measured?.[x.index] !== undefined && measured[x.index]! % group.width === 0) add({ ...x, value: measured[x.index]!, length: measured.length });
      else throw where('the units\' extent is computed at run time from something other than the units');
    }
  }
  return [...sites.values()];
}

