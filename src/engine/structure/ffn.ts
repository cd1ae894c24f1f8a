import type { GraphIndex } from '../onnx/graph';
import type { NodeProto } from '../onnx/schema';
import { GroupStop, Propagation } from '../groups/propagate';
import type { MeasuredShapes } from '../groups/shapes';
import type { ChannelGroup } from '../groups/types';
import { unitSites } from '../groups/unitShapes';
import { OptinError } from '../errors';
import type { LinearIndex } from './trace';
import type { Activation, FfnBlock, Linear } from './types';

function classify(ops: Set<string>): Activation {
  if (ops.has('BiasGelu')) return 'bias-gelu';
  if (ops.has('FastGelu')) return 'fast-gelu';
  if (ops.has('Gelu')) return 'gelu';
  if (ops.has('QuickGelu')) return 'quick-gelu';
  if (ops.has('Erf')) return 'gelu-erf';
  if (ops.has('Tanh')) return 'gelu-tanh';
  if (ops.has('Relu')) return 'relu';
  if (ops.has('Sigmoid')) return 'silu';
  return 'unknown';
}

const ACTIVATIONS = new Set(['Sigmoid', 'Erf', 'Tanh', 'Relu', 'Gelu', 'FastGelu', 'QuickGelu', 'Div']);

/** The ops a group's channels pass between its producers and its consumers. */
function opsBetween(ix: GraphIndex, g: ChannelGroup): Set<string> {
  const ends = new Set(g.producers);
  const ops = new Set<string>();
  for (const s of g.slots) {
    const p = ix.producer.get(s.value);
    if (p && !ends.has(p.name || p.output[0]!)) ops.add(p.opType);
  }
  return ops;
}

/**
 * The feed-forward block a channel group is (docs/units.md), or undefined: one or two producers
 * outside attention (two: a gated FFN, SwiGLU/GeGLU, both reading the same input), one consumer
 * mapping the neurons back to the width the producers read, and an activation between them.
 */
function asFeedForward(ix: GraphIndex, g: ChannelGroup, byNode: Map<string, Linear>, taken: Set<Linear>): FfnBlock | undefined {
  const found = g.producers.map((p) => byNode.get(p));
  const down = g.consumers.length === 1 ? byNode.get(g.consumers[0]!) : undefined;
  if (!down || taken.has(down) || found.length > 2 || found.some((l) => !l)) return undefined;
  const producers = found as Linear[];
  const fits = (l: Linear): boolean => !taken.has(l) && l.outFeatures === down.inFeatures && l.inFeatures === down.outFeatures;
  if (!producers.every(fits)) return undefined;
  const ops = opsBetween(ix, g);
  if (ops.size === 0) return undefined;
  const activation = classify(ops);
  if (producers.length === 1) return { up: producers[0]!, down, activation, hidden: down.input, width: producers[0]!.outFeatures };
  // Gated FFN: down(act(gate(x)) * up(x)); the gate is the projection the activation reads.
  const activated = producers.filter((l) => ix.uses(l.output).some((u) => ACTIVATIONS.has(u.opType)));
  if (activated.length !== 1 || producers[0]!.input !== producers[1]!.input) return undefined;
  const gate = activated[0]!;
  const up = producers.find((l) => l !== gate)!;
  return { up, gate, down, activation, hidden: down.input, width: up.outFeatures };
}

/**
 * Feed-forward neuron groups of a transformer, found by the channel propagation (docs/units.md)
 * from every projection outside attention, in node order, on measured shapes: each group whose
 * closure is a feed-forward block ({@link asFeedForward}) and that `inStream` accepts (its output
 * goes back to the residual stream).
 */
export function feedForwardBlocks(
  ix: GraphIndex, li: LinearIndex, shapes: MeasuredShapes, taken: Set<Linear>, inStream: (f: FfnBlock) => boolean,
): FfnBlock[] {
  const nodes = new Map<string, NodeProto>(ix.graph.node.map((n) => [n.name || n.output[0]!, n]));
  const byNode = new Map(li.all.map((l) => [l.node, l]));
  const outputs = new Set(ix.graph.output.map((o) => o.name));
  const ffns: FfnBlock[] = [];
  for (const l of li.all) {
    const n = nodes.get(l.node);
    if (taken.has(l) || !n || !shapes.has(n.output[0]!)) continue;
    let g: ChannelGroup;
    try {
      g = new Propagation(ix, shapes, l.outFeatures, outputs, true).run(n, l.node);
    } catch (e) {
      if (e instanceof GroupStop) continue;
      throw e;
    }
    const f = asFeedForward(ix, g, byNode, taken);
    if (!f || !inStream(f)) continue;
    try {
      g.sites = unitSites(ix, shapes, g);
    } catch (e) {
      if (e instanceof GroupStop) throw new OptinError('unsupported', `the neurons of the feed-forward block at ${f.up.node} cannot be cut: ${e.node ? `at ${ix.label(e.node)}, ` : ''}${e.reason}`);
      throw e;
    }
    f.unit = g;
    ffns.push(f);
    taken.add(f.up).add(f.down);
    if (f.gate) taken.add(f.gate);
  }
  return ffns;
}
