import { attrInt, type GraphIndex } from '../onnx/graph';
import type { NodeProto } from '../onnx/schema';
import { GroupStop, Propagation } from '../groups/propagate';
import type { MeasuredShapes } from '../groups/shapes';
import { unitSites } from '../groups/unitShapes';
import { headOp, isFusedAttention } from '../groups/headOps';
import type { ChannelGroup, Cut } from '../groups/types';
import type { AttentionBlock, AttentionSite, Linear } from './types';
import { OptinError } from '../errors';
import { nodeId } from './linear';

/** Attention units found by the propagation: the group, its unit count, and how a unit lies in the start projection's output. */
export interface HeadUnit {
  group: ChannelGroup;
  /** Units (heads, or key/value heads with their query heads). */
  width: number;
  /** Consecutive output features of one unit in each part of the start projection. */
  block: number;
  /** Parts of all units in the start projection's output (3 for packed Q/K/V). */
  parts: number;
}

/**
 * Unit counts a projection's output may be cut into, read from the Reshapes near it (a head split
 * `[F] -> [A, C]`, packed `[3, A, C]`, heads folded into the batch `[B * A, C]`): each output axis
 * size, and that size over the probe batch, largest first.
 */
function candidates(ix: GraphIndex, shapes: MeasuredShapes, n: NodeProto): number[] {
  const out = new Set<number>();
  // A fused attention op says its head counts.
  const counts = (x: NodeProto): void => {
    for (const a of headOp(x)?.attrs ?? (isFusedAttention(x) ? ['num_heads'] : [])) if (attrInt(x, a, 0) > 1) out.add(attrInt(x, a, 0));
  };
  counts(n);
  const queue = [n.output[0]!];
  const seen = new Set<string>();
  while (queue.length && seen.size < 24) {
    const v = queue.shift()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const u of ix.uses(v)) {
      counts(u);
      if (u.opType === 'MatMul' || u.opType === 'Gemm' || u.opType === 'Softmax' || headOp(u)) continue;
      if (u.opType === 'Reshape') {
        for (const d of shapes.get(u.output[0]!) ?? []) {
          if (d > 1) out.add(d);
          if (d > shapes.batch && d % shapes.batch === 0) out.add(d / shapes.batch);
        }
      }
      for (const o of u.output) if (o) queue.push(o);
    }
  }
  return [...out].sort((a, b) => b - a);
}

/** Readings of ambiguous steps (a Reshape, a size-1 axis) tried before a one-unit closure is given up. */
const READINGS = 16;

/**
 * The closure from `n` with `width` units of `block` entries in `parts` parts, or why the propagation
 * stopped. With one unit, a Reshape may put it on several axes (a size-1 head axis, or heads folded
 * into a batch axis of the same size): when the likeliest reading stops, the others are tried, the
 * last choice first.
 */
function closure(ix: GraphIndex, shapes: MeasuredShapes, outputs: Set<string>, n: NodeProto, width: number, F: number, parts: number): HeadUnit | string | undefined {
  const block = F / (width * parts);
  if (!Number.isInteger(block) || block < 1) return undefined;
  const choices = new Map<string, number>();
  let why: string | undefined;
  for (let reading = 0; reading < READINGS; reading++) {
    const p = new Propagation(ix, shapes, width, outputs, true, choices);
    try {
      return { group: p.run(n, nodeId(n), block, parts), width, block, parts };
    } catch (e) {
      if (!(e instanceof GroupStop)) throw e;
      why ??= e.node ? `at ${ix.label(e.node)}, ${e.reason}` : e.reason;
      let at = p.ambiguous.length - 1;
      while (at >= 0 && (choices.get(p.ambiguous[at]!.key) ?? 0) + 1 >= p.ambiguous[at]!.options) at--;
      if (at < 0) return why;
      for (const later of p.ambiguous.slice(at + 1)) choices.delete(later.key);
      const next = p.ambiguous[at]!;
      choices.set(next.key, (choices.get(next.key) ?? 0) + 1);
    }
  }
  return why;
}

/** Every graph output but a key/value cache's presents (a graph input joined with the new keys or values), which carry the heads out. */
function headOutputs(ix: GraphIndex): Set<string> {
  const inputs = new Set(ix.graph.input.map((i) => i.name));
  return new Set(ix.graph.output.map((o) => o.name).filter((o) => { const p = ix.producer.get(o); return !(p?.opType === 'Concat' && p.input.some((i) => inputs.has(i))); }));
}

/** Unit counts to try from `n`: what the Reshapes near it and near its sibling projections (those reading its input) suggest, largest first. */
function unitCounts(ix: GraphIndex, shapes: MeasuredShapes, n: NodeProto, isLinear: (x: NodeProto) => boolean): number[] {
  const siblings = ix.uses(n.input[0]!).filter((x) => x !== n && isLinear(x));
  return [...new Set([n, ...siblings].flatMap((x) => candidates(ix, shapes, x)))].sort((a, b) => b - a);
}

/**
 * The attention units of a graph found by the channel propagation alone (docs/units.md, "Heads are
 * groups of d channels"): from every projection not in `taken` (and every fused Attention), each unit
 * count the Reshapes near it and its sibling projections (or a fused op's attributes) suggest, largest first (a closure over 2 units of 4 heads is valid too, and coarser), with one or
 * three parts, is tried; the first closure that passes a Softmax and ends in one projection is a
 * unit. Projections in an accepted unit are not tried again, so with grouped-query attention the
 * query projection (whose heads cannot be units alone) fails and the key projection's closure takes
 * it in.
 */
export function findHeadUnits(ix: GraphIndex, shapes: MeasuredShapes, linears: Linear[], taken: Set<string> = new Set()): HeadUnit[] {
  const nodes = new Map<string, NodeProto>(ix.graph.node.map((x) => [nodeId(x), x]));
  const fused = ix.graph.node.filter(isFusedAttention);
  // Projections, fused Attention nodes, and Einsums of an activation with a constant weight.
  const einsums = ix.graph.node.filter((n) => n.opType === 'Einsum' && n.input.length === 2 && ix.constant(n.input[1]!));
  const linear = new Set([...linears.map((l) => l.node), ...[...fused, ...einsums].map(nodeId)]);
  const isLinear = (x: NodeProto): boolean => linear.has(nodeId(x));
  const covered = new Set(taken);
  const outputs = headOutputs(ix);
  const units: HeadUnit[] = [];
  // onnxruntime's fused Attention is a projection of its own (its output: the context).
  const starts = [...linears.map((l) => ({ node: l.node, F: l.outFeatures })), ...fused.map((n) => ({ node: nodeId(n), F: shapes.get(n.output[0]!)?.at(-1) ?? 0 }))];
  for (const l of starts) {
    const n = nodes.get(l.node);
    if (!n || covered.has(l.node) || !shapes.has(n.output[0]!)) continue;
    found: for (const width of unitCounts(ix, shapes, n, isLinear)) {
      if (width < 2) continue;
      for (const parts of isFusedAttention(n) ? [1] : [1, 3]) {
        const u = closure(ix, shapes, outputs, n, width, l.F, parts);
        if (!u || typeof u === 'string') continue;
        const { group } = u;
        // Attention: a Softmax over the scores, or a fused attention op, on the way.
        const attends = group.slots.some((s) => { const p = ix.producer.get(s.value); return p && (p.opType === 'Softmax' || headOp(p) || isFusedAttention(p)); });
        if (!attends || group.consumers.length !== 1 || !linear.has(group.consumers[0]!) || group.producers.some((p) => !linear.has(p))) continue;
        units.push(u);
        for (const p of [...group.producers, ...group.consumers]) covered.add(p);
        break found;
      }
    }
  }
  return units;
}

/**
 * The heads of an attention site: the first closure of the propagation (docs/units.md) from its
 * query projection (then key, value; the fused Attention node itself), for each unit count the
 * Reshapes and head-count attributes near them suggest, largest first, then one unit (the whole
 * attention: a layer already pruned to one head), that passes its core and ends in its output
 * projection with only its projections as producers. Query heads sharing one key/value head whose
 * output rows would split the output projection's quantization blocks give way to the group of that
 * key/value head; any other unit that splits them is returned as it is, for the caller to refuse.
 * Returns why none closes.
 */
export function siteHeads(ix: GraphIndex, shapes: MeasuredShapes, site: AttentionSite): HeadUnit | string {
  const nodes = new Map<string, NodeProto>(ix.graph.node.map((x) => [nodeId(x), x]));
  const core = nodes.get(site.core)!;
  const own = new Set([site.core, ...site.projections.map((p) => p.node)]);
  const outputs = headOutputs(ix);
  const starts = site.projections.length ? site.projections.map((p) => ({ n: nodes.get(p.node)!, F: p.outFeatures })) : [{ n: core, F: shapes.get(core.output[0]!)?.at(-1) ?? 0 }];
  let stop: string | undefined, refused: string | undefined, split: HeadUnit | undefined;
  for (const { n, F } of starts) {
    for (const width of [...unitCounts(ix, shapes, n, (x) => own.has(nodeId(x))).filter((w) => w > 1), 1]) {
      for (const parts of site.projections.length === 1 ? [1, 3] : [1]) {
        const u = closure(ix, shapes, outputs, n, width, F, parts);
        if (!u) continue;
        if (typeof u === 'string') { stop ??= u; continue; }
        const { group } = u;
        if (!group.slots.some((s) => ix.producer.get(s.value) === core)) continue;
        if (group.consumers.length !== 1 || group.consumers[0] !== site.output.node) { refused ??= `its heads are also read by ${group.consumers.filter((c) => c !== site.output.node).join(', ') || 'no output projection'}`; continue; }
        if (group.producers.some((p) => !own.has(p))) { refused ??= `its heads are produced by ${group.producers.join(', ')}, not by its projections`; continue; }
        // A key/value head shared by every unit (multi-query): the units are single query heads, as wide as that key head.
        const [q, k] = site.projections;
        if (q && k && !group.producers.includes(k.node) && slotOf(group, q.output).block !== k.outFeatures) continue;
        const sited = withSites(ix, shapes, u);
        if (typeof sited === 'string') { stop ??= sited; continue; }
        if (site.output.blockSize && contextBlock(site, group) % site.output.blockSize) {
          // Query heads sharing one key/value head give way to that head's group; anything coarser is not tried.
          if (k && group.producers.includes(k.node)) return u;
          split = u;
          continue;
        }
        return u;
      }
    }
  }
  return split ?? refused ?? stop ?? 'no unit count splits its projections';
}

/** The unit with the constants that hold its extent attached, or why they cannot be rewritten. */
function withSites(ix: GraphIndex, shapes: MeasuredShapes, u: HeadUnit): HeadUnit | string {
  try {
    u.group.sites = unitSites(ix, shapes, u.group);
    return u;
  } catch (e) {
    if (e instanceof GroupStop) return e.node ? `at ${ix.label(e.node)}, ${e.reason}` : e.reason;
    throw e;
  }
}

/**
 * Why scoring could not mask a site's heads where they lie, or undefined: an unfused attention is
 * masked on its per-head context [batch, heads, seq, d], so the unit must be its axis 1; heads folded
 * into the batch axis other than as nn.MultiheadAttention does (the fold read back by a Transpose
 * [1,0,2] right after: `folded`) put them elsewhere.
 */
export function unmaskable(ix: GraphIndex, shapes: MeasuredShapes, site: AttentionSite, group: ChannelGroup): string | undefined {
  // One unit: masking it masks the whole context, wherever the axis.
  if (!site.perHead || group.width === 1) return undefined;
  const s = group.slots.find((x) => x.value === site.perHead);
  if (s && s.axis === 1 && !s.parts) return undefined;
  const fold = group.slots.find((x) => x.parts && ix.producer.get(x.value)?.opType === 'Reshape');
  if (!fold) return `its heads are not on axis 1 of the per-head context "${site.perHead}", where scoring masks them`;
  return `the query path folds the heads into the batch axis (${ix.label(ix.producer.get(fold.value)!)} reshapes to ${shapes.get(fold.value)?.length} dims, [seq, batch*heads, head_size]) but not as nn.MultiheadAttention does (read back by a Transpose [1,0,2] right after); where its heads lie cannot be told for scoring`;
}

/** Entries per unit on the value a group reaches (its unit layout there). */
function slotOf(group: ChannelGroup, value: string): { block: number; parts: number } {
  const s = group.slots.find((x) => x.value === value);
  if (!s) throw new OptinError('unsupported', `the heads' group does not reach "${value}"`);
  return { block: s.block ?? 1, parts: s.parts ?? 1 };
}

/** Context columns (output projection rows) per unit. */
function contextBlock(site: AttentionSite, group: ChannelGroup): number {
  return slotOf(group, site.output.input).block;
}

/**
 * The attention block of a site and its heads: unit count, head sizes, grouped-query group and
 * shared key/value heads, all read from the unit's layout on the projections' outputs and on the
 * context (docs/units.md).
 */
export function attentionBlock(site: AttentionSite, u: HeadUnit): AttentionBlock {
  const { group } = u;
  const [q, k, v] = site.projections;
  let headSize: number, ratio = 1, sharedKv = false;
  if (!q) {
    const c = group.cuts.find((x) => x.node === site.core && x.input === 1 && !x.offset);
    headSize = c?.block ?? 1;
  } else if (!k) {
    const s = slotOf(group, q.output);
    headSize = s.parts === 3 ? s.block : s.block / 3;
  } else if (!group.producers.includes(k.node)) {
    sharedKv = true;
    headSize = slotOf(group, q.output).block;
  } else {
    headSize = slotOf(group, k.output).block;
    ratio = slotOf(group, q.output).block / headSize;
  }
  const layout = site.layout !== 'separate' ? site.layout : ratio > 1 ? 'grouped-query' : sharedKv ? 'multi-query' : 'separate';
  const block: AttentionBlock = {
    ...site, layout,
    heads: u.width, headSize, vHeadSize: contextBlock(site, group),
    ...(ratio > 1 ? { group: ratio } : {}), ...(sharedKv ? { sharedKv } : {}),
    unit: group,
  };
  // Unfused grouped-query attention is masked on V (one key/value head per unit), not per query head.
  if (ratio > 1 && site.perHead && v) {
    delete block.perHead;
    block.kvValue = v.output;
  }
  return block;
}

/** The cuts of a head unit's projection weights and biases (fused ops: the weights the node holds), what weight-based rankings sum per unit. */
export function projectionCuts(a: AttentionBlock): Cut[] {
  const own = new Set([a.core, ...a.projections.flatMap((p) => [p.node, ...(p.biasNode ? [p.biasNode] : [])])]);
  return (a.unit?.cuts ?? []).filter((c) => own.has(c.node));
}
