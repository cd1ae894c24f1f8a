import { attrInt, type GraphIndex } from '../onnx/graph';
import type { NodeProto } from '../onnx/schema';
import { GroupStop, Propagation } from '../groups/propagate';
import type { MeasuredShapes } from '../groups/shapes';
import { unitSites } from '../groups/unitShapes';
import { headOp, isFusedAttention } from '../groups/headOps';
import type { ChannelGroup, Cut } from '../groups/types';
import type { AttentionBlock, Linear } from './types';
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
  const isLinear = new Set([...linears.map((l) => l.node), ...[...fused, ...einsums].map(nodeId)]);
  const covered = new Set(taken);
  // A key/value cache's present outputs (a graph input joined with the new keys or values) carry the heads out.
  const inputs = new Set(ix.graph.input.map((i) => i.name));
  const outputs = new Set(ix.graph.output.map((o) => o.name).filter((o) => { const p = ix.producer.get(o); return !(p?.opType === 'Concat' && p.input.some((i) => inputs.has(i))); }));
  const units: HeadUnit[] = [];
  // onnxruntime's fused Attention is a projection of its own (its output: the context).
  const starts = [...linears.map((l) => ({ node: l.node, F: l.outFeatures })), ...fused.map((n) => ({ node: nodeId(n), F: shapes.get(n.output[0]!)?.at(-1) ?? 0 }))];
  for (const l of starts) {
    const n = nodes.get(l.node);
    if (!n || covered.has(l.node) || !shapes.has(n.output[0]!)) continue;
    const F = l.F;
    // The Reshapes near the projections reading the same input (key and value beside the query) say the unit counts too.
    const siblings = ix.uses(n.input[0]!).filter((x) => x !== n && isLinear.has(nodeId(x)));
    const widths = [...new Set([n, ...siblings].flatMap((x) => candidates(ix, shapes, x)))].sort((a, b) => b - a);
    found: for (const width of widths) {
      for (const parts of isFusedAttention(n) ? [1] : [1, 3]) {
        const block = F / (width * parts);
        if (!Number.isInteger(block) || block < 1 || width < 2) continue;
        let group: ChannelGroup;
        try {
          group = new Propagation(ix, shapes, width, outputs, true).run(n, l.node, block, parts);
        } catch (e) {
          if (e instanceof GroupStop) continue;
          throw e;
        }
        // Attention: a Softmax over the scores, or a fused attention op, on the way.
        const attends = group.slots.some((s) => { const p = ix.producer.get(s.value); return p && (p.opType === 'Softmax' || headOp(p) || isFusedAttention(p)); });
        if (!attends || group.consumers.length !== 1 || !isLinear.has(group.consumers[0]!) || group.producers.some((p) => !isLinear.has(p))) continue;
        units.push({ group, width, block, parts });
        for (const p of [...group.producers, ...group.consumers]) covered.add(p);
        break found;
      }
    }
  }
  return units;
}

/**
 * An attention block's heads as a propagation group: the closure from its query (or packed)
 * projection with the block's unit count and layout, when it ends in the block's output projection
 * and names the block's projections, with the constants that hold its extent; otherwise why not
 * (docs/units.md).
 */
export function headGroup(ix: GraphIndex, shapes: MeasuredShapes, a: AttentionBlock, outputs: Set<string>): ChannelGroup | string {
  // onnxruntime's fused Attention holds the Q/K/V projection itself.
  const q = a.projections[0];
  const first = q?.node ?? a.core;
  const start = ix.graph.node.find((x) => nodeId(x) === first);
  if (!start || !shapes.has(start.output[0]!)) return `no measured output for ${first}`;
  const parts = a.projections.length === 1 ? 3 : 1;
  try {
    const group = new Propagation(ix, shapes, a.heads, outputs, true).run(start, first, q ? q.outFeatures / a.heads / parts : 1, q ? parts : 1);
    const want = (q ? (a.sharedKv ? [q] : a.projections).map((p) => p.node) : [a.core]).sort().join();
    if (group.consumers.length !== 1 || group.consumers[0] !== a.output.node) return `its heads are also read by ${group.consumers.filter((c) => c !== a.output.node).join(', ') || 'no output projection'}`;
    if ([...group.producers].sort().join() !== want) return `its heads are produced by ${group.producers.join(', ')}, not by its projections`;
    group.sites = unitSites(ix, shapes, group);
    return group;
  } catch (e) {
    if (e instanceof GroupStop) return e.node ? `at ${ix.label(e.node)}, ${e.reason}` : e.reason;
    throw e;
  }
}

/** The cuts of a head unit's projection weights and biases (fused ops: the weights the node holds), what weight-based rankings sum per unit. */
export function projectionCuts(a: AttentionBlock): Cut[] {
  const own = new Set([a.core, ...a.projections.flatMap((p) => [p.node, ...(p.biasNode ? [p.biasNode] : [])])]);
  return (a.unit?.cuts ?? []).filter((c) => own.has(c.node));
}
