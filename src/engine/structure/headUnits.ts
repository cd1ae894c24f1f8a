import type { GraphIndex } from '../onnx/graph';
import type { NodeProto } from '../onnx/schema';
import { GroupStop, Propagation } from '../groups/propagate';
import type { MeasuredShapes } from '../groups/shapes';
import type { ChannelGroup } from '../groups/types';
import type { Linear } from './types';

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
  const queue = [n.output[0]!];
  const seen = new Set<string>();
  while (queue.length && seen.size < 24) {
    const v = queue.shift()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const u of ix.uses(v)) {
      if (u.opType === 'MatMul' || u.opType === 'Gemm' || u.opType === 'Softmax') continue;
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
 * groups of d channels"): from every projection not in `taken`, each unit count the nearby Reshapes
 * suggest, largest first (a closure over 2 units of 4 heads is valid too, and coarser), with one or
 * three parts, is tried; the first closure that passes a Softmax and ends in one projection is a
 * unit. Projections in an accepted unit are not tried again, so with grouped-query attention the
 * query projection (whose heads cannot be units alone) fails and the key projection's closure takes
 * it in.
 */
export function findHeadUnits(ix: GraphIndex, shapes: MeasuredShapes, linears: Linear[], taken: Set<string> = new Set()): HeadUnit[] {
  const nodes = new Map<string, NodeProto>(ix.graph.node.map((x) => [x.name || x.output[0]!, x]));
  const isLinear = new Set(linears.map((l) => l.node));
  const covered = new Set(taken);
  const outputs = new Set(ix.graph.output.map((o) => o.name));
  const units: HeadUnit[] = [];
  for (const l of linears) {
    const n = nodes.get(l.node);
    if (!n || covered.has(l.node) || !shapes.has(n.output[0]!)) continue;
    const F = l.outFeatures;
    found: for (const width of candidates(ix, shapes, n)) {
      for (const parts of [1, 3]) {
        const block = F / (width * parts);
        if (!Number.isInteger(block) || block < 1 || width < 2) continue;
        let group: ChannelGroup;
        try {
          group = new Propagation(ix, shapes, width, outputs, true).run(n, l.node, block, parts);
        } catch (e) {
          if (e instanceof GroupStop) continue;
          throw e;
        }
        const softmax = group.slots.some((s) => ix.producer.get(s.value)?.opType === 'Softmax');
        if (!softmax || group.consumers.length !== 1 || !isLinear.has(group.consumers[0]!) || group.producers.some((p) => !isLinear.has(p))) continue;
        units.push({ group, width, block, parts });
        for (const p of [...group.producers, ...group.consumers]) covered.add(p);
        break found;
      }
    }
  }
  return units;
}
