import type { OnnxModel } from '../onnx/model';
import type { CalibrationBatch } from '../data/types';
import type { EpChoice } from '../runtime/providers';
import { GraphIndex } from '../onnx/graph';
import { timedForward } from '../optin/mode';
import { OPTIN_DEFAULTS } from '../optin/types';
import { nodeMacs } from './macs';
import { comparedFeatures, type ChannelStructure } from './structure';

/**
 * Measured time of exact channel scoring over the MAC estimate of {@link estimateChannelCost}: 0.78 /
 * 0.80 / 0.77-0.85 on nsfwjs's MobileNetV2 at 224 x 224 (16 / 19 / 32 images: 437 / 518 / 590-652 s),
 * 1.17 on the LR-ASPP of lraspp-scenes (32 scenes), 1.18-1.46 on the MNIST ResNet (16-64 digits),
 * 0.62-1.05 on the MNIST MobileNet; models of a few seconds pay more fixed cost (2.27 on the ResNet
 * with 8 digits: 3.3 s).
 */
const OVERHEAD = 1.0;
/** Auto mode never scores channels on fewer calibration examples than this. */
export const MIN_CHANNEL_EXAMPLES = 4;

/** Estimated seconds of exact channel scoring, as a function of the number of calibration examples. */
export interface ChannelCost {
  /** Seconds of one timed dense forward on the whole batch. */
  forward: number;
  /** Estimated seconds on the whole batch. */
  seconds: number;
  /** Estimated seconds on the first `n` examples. */
  secondsFor(n: number): number;
}

/**
 * Exact channel scoring runs one masked variant per channel. A variant costs the graph from its
 * group's first consumer on, for every example, plus its manifold terms: for each later block
 * output, the Gram comparison of `tokenSample` sampled positions (2 K^2 C multiply-adds, whatever the
 * number of examples once they hold K positions). Both are counted in MACs and turned into seconds
 * by a timed dense forward of the batch (its seconds per MAC; the fastest of three runs).
 */
export async function estimateChannelCost(model: OnnxModel, cs: ChannelStructure, batch: CalibrationBatch, ep: EpChoice = 'cpu'): Promise<ChannelCost> {
  // The fastest of three runs: one run on a busy machine can take 1.3x as long.
  const forward = await timedForward(model.path, batch.feeds, ep, 3);
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const macs = ix.graph.node.map((n) => nodeMacs(ix, cs.shapes, n)?.macs ?? 0);
  const total = macs.reduce((a, b) => a + b, 0) || 1;
  const byName = new Map(ix.graph.node.map((n, i) => [n.name || n.output[0]!, i]));
  const suffix = (from: number): number => macs.slice(from).reduce((a, b) => a + b, 0);
  const perExample = cs.groups.reduce((a, g) => a + g.width * suffix(Math.min(...g.consumers.map((c) => byName.get(c)!))), 0);
  const grams = cs.groups.map((g, l) => comparedFeatures(cs, l).map((k) => {
    const f = cs.features[k]!;
    const C = f.dims[f.axis]!;
    return { width: g.width, channels: C, positions: f.dims.reduce((a, b) => a * b, 1) / C / cs.shapes.batch };
  })).flat();
  const secondsPerMac = forward / (batch.batch * total);
  const secondsFor = (n: number): number => {
    const gram = grams.reduce((a, t) => a + t.width * 2 * Math.min(OPTIN_DEFAULTS.tokenSample, t.positions * n) ** 2 * t.channels, 0);
    return OVERHEAD * secondsPerMac * (n * perExample + gram);
  };
  return { forward, seconds: secondsFor(batch.batch), secondsFor };
}

/** Auto mode: the most calibration examples exact scoring can afford within `budget` seconds (all of them when they fit, never below {@link MIN_CHANNEL_EXAMPLES}). */
export function affordableExamples(examples: number, secondsFor: (n: number) => number, budget: number): number {
  let n = examples;
  while (n > MIN_CHANNEL_EXAMPLES && secondsFor(n) > budget) n--;
  return n;
}
