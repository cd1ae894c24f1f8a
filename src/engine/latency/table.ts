import type { CostModel } from '../plan/costs';

/** Measured latency of one sublayer at several kept widths (the rest of its layer dense). */
export interface LatencyCurve {
  /** Kept heads (or neurons), ascending, always including 0 and the full width. */
  kept: number[];
  /** Median milliseconds of the layer's subgraph at each width. */
  ms: number[];
}

/**
 * `optin-latency` (version 1): per-layer latency curves measured on one provider at one batch and
 * sequence length, plus the dense model's latency, in the same interleaved run.
 */
export interface LatencyTable {
  schema: 'optin-latency';
  version: 1;
  model: { path: string; sha256: string };
  /** Provider (and device) the subgraphs ran on. */
  provider: string;
  batch: number;
  /** Tokens per example; for a decode-step table, the cache's context length. */
  seqLen: number;
  /**
   * What was timed: absent, the whole sequence at once (prefill); 'decode', one new token per example
   * after a key/value cache of `seqLen` tokens (decoders exported with their cache).
   */
  phase?: 'decode';
  /** intra-op threads (0 = onnxruntime's default). */
  threads: number;
  /** Timed runs per configuration (after warm-up). */
  runs: number;
  /** Median latency of the whole dense model. */
  denseMs: number;
  /**
   * The whole model at its smallest plan (one head of layer 0, nothing else), timed in the same run:
   * with `denseMs` it anchors the layer curves to whole-model latency (see {@link calibration}).
   */
  floor: { heads: number[]; neurons: number[]; ms: number };
  /** Per layer: its head and neuron curves, and which layer's subgraph was timed (layers of one geometry share it). */
  layers: Array<{ heads: LatencyCurve; neurons: LatencyCurve; measuredOn: number }>;
  created: string;
}

/** Piecewise-linear interpolation of a curve, made non-decreasing (timing noise must not reward keeping more). */
export function interpolate(c: LatencyCurve, k: number): number {
  const ms = c.ms.slice();
  for (let i = 1; i < ms.length; i++) ms[i] = Math.max(ms[i]!, ms[i - 1]!);
  if (k <= c.kept[0]!) return ms[0]!;
  for (let i = 1; i < c.kept.length; i++) {
    if (k <= c.kept[i]!) {
      const a = c.kept[i - 1]!, b = c.kept[i]!;
      return ms[i - 1]! + ((ms[i]! - ms[i - 1]!) * (k - a)) / (b - a);
    }
  }
  return ms[ms.length - 1]!;
}

/** Cost of keeping k elements of a sublayer as its cut-out subgraph measured: its curve at k minus at 0. */
function rawCost(c: LatencyCurve, k: number): number {
  return interpolate(c, k) - interpolate(c, 0);
}

function rawTotal(t: LatencyTable, heads: number[], neurons: number[]): number {
  return t.layers.reduce((a, l, i) => a + rawCost(l.heads, heads[i]!) + rawCost(l.neurons, neurons[i]!), 0);
}

/**
 * How cut-out subgraph times map to whole-model time: a layer run alone is not exactly as fast as
 * inside the model (fusions, memory reuse, thread wake-ups), so subgraph savings are scaled by
 * `scale` and the unprunable rest is `fixedMs`, chosen so the prediction equals the measured
 * whole-model latency at both ends: the dense model and the floor plan.
 */
export function calibration(t: LatencyTable): { scale: number; fixedMs: number } {
  const full = rawTotal(t, t.layers.map((l) => l.heads.kept[l.heads.kept.length - 1]!), t.layers.map((l) => l.neurons.kept[l.neurons.kept.length - 1]!));
  const floor = rawTotal(t, t.floor.heads, t.floor.neurons);
  const scale = full > floor ? (t.denseMs - t.floor.ms) / (full - floor) : 1;
  if (!(scale > 0) || !Number.isFinite(scale)) return { scale: 1, fixedMs: Math.max(0, t.denseMs - full) };
  return { scale, fixedMs: Math.max(0, t.floor.ms - scale * floor) };
}

/** The search's cost model in milliseconds: heads and neurons of a layer cost what their (calibrated) curves say. */
export function latencyCosts(t: LatencyTable): CostModel {
  const { scale } = calibration(t);
  return {
    unit: 'ms',
    head: (l, k) => scale * rawCost(t.layers[l]!.heads, k),
    neuron: (l, k) => scale * rawCost(t.layers[l]!.neurons, k),
  };
}

/** Milliseconds of the model that pruning cannot remove (embeddings, norms, classifier, emptied sublayers). */
export function fixedMs(t: LatencyTable): number {
  return calibration(t).fixedMs;
}

/** Predicted latency of the model keeping `heads[l]` heads and `neurons[l]` neurons per layer. */
export function predictMs(t: LatencyTable, heads: number[], neurons: number[]): number {
  const { scale, fixedMs: fixed } = calibration(t);
  return fixed + scale * rawTotal(t, heads, neurons);
}
