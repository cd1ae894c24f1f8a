import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch } from '../data/calibration';
import type { EpChoice } from '../runtime/providers';
import { createSession, runSession, toOrt } from '../runtime/session';
import { layerMacs } from '../flops';
import { bucketBatch, splitByLength } from './buckets';
import { rankOneStart } from './rankOne';
import { GraphIndex } from '../onnx/graph';
import { OPTIN_DEFAULTS } from './types';
import { headCount } from '../structure/layer';

/** How long exact scoring would take, from a timed dense forward of the calibration batch. */
export interface CostEstimate {
  /** Seconds of one dense forward of the whole batch as scoring runs it (in its length buckets when it has them; second of two runs). */
  forward: number;
  /** Estimated seconds for all heads / all neurons: each element costs its suffix (heads from the layer input, neurons from inside the FFN). */
  heads: number;
  neurons: number;
  /** Estimated seconds for all neurons when each compares only the next layer (horizon 1). */
  neuronsHorizon1: number;
  /** Estimated seconds for fast mode's reference neurons (8 per layer, whole batch, whole trajectory). */
  references: number;
}

/**
 * Suffix time over the FLOP-proportional estimate: 1.35 measured with one padded block (stacked runs
 * of about 1,024 tokens); 1.5 with length buckets (smaller stacks), which put the estimate at 0.70x
 * (SST-2 BERT, 16 sentences, exact), 1.29x (the trained decoder, 32 sentences, exact) and 0.87x
 * (BERT-base geometry, fast mode) of the measured time.
 */
const OVERHEAD = 1.35;
/** Fast mode's reference neurons per layer (the default of FastOptions.referenceNeurons). */
export const REFERENCE_NEURONS = 8;
const BUCKET_OVERHEAD = 1.5;

/** Seconds of one dense forward of `feeds`: after one warm-up run, the fastest of `runs` timed runs. */
export async function timedForward(path: string, feeds: CalibrationBatch['feeds'], ep: EpChoice, runs = 1): Promise<number> {
  const s = await createSession(path, { ep, label: path });
  try {
    const f = toOrt(feeds);
    await runSession(s.session, f, path);
    let best = Infinity;
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await runSession(s.session, f, path);
      best = Math.min(best, (performance.now() - t) / 1000);
    }
    return best;
  } finally {
    await s.session.release();
  }
}

/**
 * Time one dense forward (of the length buckets scoring will use, when the batch has them) and
 * extrapolate the exact method's cost: an element of layer l runs the layers from l on (to the
 * logits, or with a horizon to the last compared feature); a neuron's suffix skips its layer's
 * attention and first FFN matrix (their share of the layer's MACs).
 */
export async function estimateCost(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, ep: EpChoice = 'cpu'): Promise<CostEstimate> {
  const split = st.layers.some((l) => l.shape) ? undefined : splitByLength(batch).buckets;
  let forward = 0;
  let bucketed = false;
  if (split) {
    try {
      for (const b of split) forward += await timedForward(model.path, bucketBatch(batch, b).feeds, ep);
      bucketed = true;
    } catch {
      forward = 0;
    }
  }
  if (!bucketed) forward = await timedForward(model.path, batch.feeds, ep);
  const L = st.layers.length;
  const S = Math.max(1, Math.round(batch.meanLength));
  // The share of its own layer a neuron suffix still runs: the second FFN matrix, or nothing where it starts after it (rank-1).
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const share = st.layers.map((l) => {
    if (rankOneStart(model, l, ix)) return 0;
    const m = layerMacs(l, S, st.hidden);
    const down = m.ffn / (l.ffn?.gate ? 3 : 2);
    return m.total > 0 ? down / m.total : 1;
  });
  // A suffix runs to the logits, or (horizon h cutting the trajectory short) to layer l + h's feature,
  // which a pre-LN layer computes at its start (its input norm) and a post-LN one at its end.
  const pre = st.norm === 'pre';
  // Each compared feature also costs the student's Gram matrix of the K sampled rows (2 K^2 D), in
  // units of one layer of the dense forward (what a suffix that barely runs a layer still costs).
  const K = Math.min(OPTIN_DEFAULTS.tokenSample, Math.round(batch.meanLength * batch.batch));
  const layerMacsOfBatch = st.layers.reduce((a, l) => a + layerMacs(l, S, st.hidden).total, 0) / Math.max(L, 1) * batch.batch;
  const gram = (K * K * st.hidden) / Math.max(layerMacsOfBatch, 1);
  const suffix = (l: number, h = L, fromActivations = false): number => {
    const truncated = L - l - 1 > h;
    const layers = truncated ? (pre ? h : h + 1) : L - l;
    const compared = truncated ? h : Math.max(1, L - l - 1);
    return (Math.max(0, layers - (fromActivations ? 1 - share[l]! : 0)) + compared * gram) / L;
  };
  const f = forward * (bucketed ? BUCKET_OVERHEAD : OVERHEAD);
  return {
    forward,
    heads: st.layers.reduce((a, l, i) => a + headCount(l) * suffix(i), 0) * f,
    neurons: st.layers.reduce((a, l, i) => a + (l.ffn?.width ?? 0) * suffix(i, L, true), 0) * f,
    neuronsHorizon1: st.layers.reduce((a, l, i) => a + (l.ffn?.width ?? 0) * suffix(i, 1, true), 0) * f,
    references: st.layers.reduce((a, l, i) => a + Math.min(REFERENCE_NEURONS, l.ffn?.width ?? 0) * suffix(i, L, true), 0) * f,
  };
}

/** What `auto` decided, and why. */
export interface ModeChoice {
  mode: 'exact' | 'fast';
  /** Examples the neurons are scored on (fast mode). */
  neuronExamples?: number;
  /** Layers each neuron's trajectory covers (fast mode; undefined = all later layers). */
  horizon?: number;
  reason: string;
}

/**
 * `auto`: exact when the estimate fits the time budget; otherwise fast with as many neuron examples
 * as the rest of the budget allows with the full trajectory, and when that is fewer than `minExamples`
 * (the measured fidelity drops below that), neurons compare only the next layer (horizon 1).
 */
export function chooseMode(est: CostEstimate, batch: number, budgetSeconds: number, minExamples = 4): ModeChoice {
  const exact = est.heads + est.neurons;
  const min = (s: number): string => `${(s / 60).toFixed(1)} min`;
  if (exact <= budgetSeconds) return { mode: 'exact', reason: `exact scoring estimated at ${min(exact)}, within the ${min(budgetSeconds)} budget` };
  const fixed = est.heads + est.references;
  const left = Math.max(0, budgetSeconds - fixed);
  const fit = (cost: number): number => Math.max(1, Math.min(batch - 1, Math.floor((batch * left) / Math.max(cost, 1e-9))));
  const n = fit(est.neurons);
  if (n >= Math.min(minExamples, batch - 1)) {
    return { mode: 'fast', neuronExamples: n, reason: `exact scoring estimated at ${min(exact)} > ${min(budgetSeconds)} budget: fast mode, neurons on ${n} of ${batch} examples (about ${min(fixed + (est.neurons * n) / batch)})` };
  }
  const n1 = fit(est.neuronsHorizon1);
  return { mode: 'fast', neuronExamples: n1, horizon: 1, reason: `exact scoring estimated at ${min(exact)} > ${min(budgetSeconds)} budget: fast mode, neurons on ${n1} of ${batch} examples comparing the next layer only (about ${min(fixed + (est.neuronsHorizon1 * n1) / batch)})` };
}
