import type { OnnxModel } from '../onnx/model';
import type { CalibrationBatch } from '../data/types';
import type { EpChoice } from '../runtime/providers';
import { GraphIndex } from '../onnx/graph';
import { timedForward } from '../optin/mode';
import { nodeMacs } from './macs';
import type { ChannelStructure } from './structure';

/**
 * Measured time of exact channel scoring over the FLOP-proportional estimate (see
 * estimateChannelCost): 2.12 on nsfwjs's MobileNetV2 at 224 x 224 (16 images: 433 s), 2.16 on the
 * LR-ASPP of lraspp-scenes (32 scenes), 1.27 on the MNIST ResNet (64 digits); small models, far below
 * any budget, pay more fixed cost per group (4.6 on the MNIST MobileNet: 8.8 s).
 */
const OVERHEAD = 2.2;
/** Auto mode never scores channels on fewer calibration examples than this. */
export const MIN_CHANNEL_EXAMPLES = 4;

/**
 * Seconds exact channel scoring would take on `batch`: a channel's masked variant runs the graph from
 * its group's first consumer on for every example, so the estimate is one timed dense forward times
 * the sum over groups of width x the share of the model's MACs from that consumer on.
 */
export async function estimateChannelCost(model: OnnxModel, cs: ChannelStructure, batch: CalibrationBatch, ep: EpChoice = 'cpu'): Promise<{ forward: number; seconds: number }> {
  const forward = await timedForward(model.path, batch.feeds, ep);
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const macs = ix.graph.node.map((n) => nodeMacs(ix, cs.shapes, n)?.macs ?? 0);
  const total = macs.reduce((a, b) => a + b, 0) || 1;
  const byName = new Map(ix.graph.node.map((n, i) => [n.name || n.output[0]!, i]));
  const suffix = (from: number): number => macs.slice(from).reduce((a, b) => a + b, 0) / total;
  const units = cs.groups.reduce((a, g) => a + g.width * suffix(Math.min(...g.consumers.map((c) => byName.get(c)!))), 0);
  return { forward, seconds: OVERHEAD * forward * units };
}

/** Auto mode: the calibration examples exact scoring can afford within `budget` seconds (all of them when it fits, never below {@link MIN_CHANNEL_EXAMPLES}). */
export function affordableExamples(examples: number, seconds: number, budget: number): number {
  if (seconds <= budget) return examples;
  return Math.min(examples, Math.max(MIN_CHANNEL_EXAMPLES, Math.floor((examples * budget) / seconds)));
}
