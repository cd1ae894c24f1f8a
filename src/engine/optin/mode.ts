import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch } from '../data/calibration';
import type { EpChoice } from '../runtime/providers';
import { createSession, runSession, toOrt } from '../runtime/session';

/** How long exact scoring would take, from one timed dense forward of the calibration batch. */
export interface CostEstimate {
  /** Seconds of one dense forward of the whole batch (second of two runs). */
  forward: number;
  /** Estimated seconds for all heads / all neurons: each element costs its suffix (layers l..L-1). */
  heads: number;
  neurons: number;
  /** Estimated seconds for all neurons when each compares only the next layer (horizon 1). */
  neuronsHorizon1: number;
}

/** Measured here: stacked suffix runs take about 1.35x the FLOP-proportional estimate. */
const OVERHEAD = 1.35;

/** Time one dense forward and extrapolate the exact method's cost. */
export async function estimateCost(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, ep: EpChoice = 'cpu'): Promise<CostEstimate> {
  const s = await createSession(model.path, { ep, label: model.path });
  let forward: number;
  try {
    const feeds = toOrt(batch.feeds);
    await runSession(s.session, feeds, model.path);
    const t = performance.now();
    await runSession(s.session, feeds, model.path);
    forward = (performance.now() - t) / 1000;
  } finally {
    await s.session.release();
  }
  const L = st.layers.length;
  const suffix = (l: number, h = L): number => Math.min(L - l, h + 1) / L;
  const f = forward * OVERHEAD;
  return {
    forward,
    heads: st.layers.reduce((a, l, i) => a + l.attention.heads * suffix(i), 0) * f,
    neurons: st.layers.reduce((a, l, i) => a + (l.ffn?.width ?? 0) * suffix(i), 0) * f,
    neuronsHorizon1: st.layers.reduce((a, l, i) => a + (l.ffn?.width ?? 0) * suffix(i, 1), 0) * f,
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
  const left = Math.max(0, budgetSeconds - est.heads);
  const fit = (cost: number): number => Math.max(1, Math.min(batch - 1, Math.floor((batch * left) / Math.max(cost, 1e-9))));
  const n = fit(est.neurons);
  if (n >= Math.min(minExamples, batch - 1)) {
    return { mode: 'fast', neuronExamples: n, reason: `exact scoring estimated at ${min(exact)} > ${min(budgetSeconds)} budget: fast mode, neurons on ${n} of ${batch} examples (about ${min(est.heads + (est.neurons * n) / batch)})` };
  }
  const n1 = fit(est.neuronsHorizon1);
  return { mode: 'fast', neuronExamples: n1, horizon: 1, reason: `exact scoring estimated at ${min(exact)} > ${min(budgetSeconds)} budget: fast mode, neurons on ${n1} of ${batch} examples comparing the next layer only (about ${min(est.heads + (est.neuronsHorizon1 * n1) / batch)})` };
}
