import type { OnnxModel } from '../onnx/model';
import type { EncoderLayer, ModelStructure } from '../structure/types';
import type { CalibrationBatch } from '../data/calibration';
import { pickFeeds } from '../data/batches';
import { balance } from './balance';
import { scoreModel, type ScoreOptions } from './scorer';
import { featureEnergies, type FeatureEnergy } from './activations';
import { extrapolateLosses, type LayerEvidence } from './extrapolate';
import { GraphIndex } from '../onnx/graph';
import { weightNorms } from './magnitude';
import { REFERENCE_NEURONS } from './mode';
import { OPTIN_DEFAULTS, type RawLosses, type ScoreProgress, type Scores } from './types';
import { headCount } from '../structure/layer';

/** Options of {@link scoreFast}. */
export interface FastOptions extends ScoreOptions {
  /** Calibration examples the neurons are scored on (default: a quarter of the batch, at least 1). */
  neuronExamples?: number;
  /** Neurons compare only the next `horizon` layers (default: no truncation). */
  horizon?: number;
  /**
   * Reference neurons per layer (default 8, spread over the subset's ranking), scored exactly on the
   * whole batch and the whole trajectory; they fit the extrapolation of the others ({@link extrapolateLosses}).
   */
  referenceNeurons?: number;
}

/** `n` indices spread evenly over `0..count-1`. */
export function spread(count: number, n: number): number[] {
  return Array.from({ length: Math.min(n, count) }, (_, i) => Math.floor((i * count) / Math.min(n, count)));
}

/** `n` examples spread evenly over a batch (same padded length), with their masks and labels. */
export function subBatch(batch: CalibrationBatch, n: number): CalibrationBatch {
  const B = batch.batch;
  if (n >= B) return batch;
  const S = batch.seqLen;
  const idx = spread(B, n);
  const tokenMask = new Uint8Array(n * S);
  idx.forEach((i, j) => tokenMask.set(batch.tokenMask.subarray(i * S, (i + 1) * S), j * S));
  const real = tokenMask.reduce((a, b) => a + b, 0);
  return {
    ...batch, feeds: pickFeeds(batch.feeds, idx), batch: n, tokenMask,
    meanLength: batch.kind === 'text' ? real / n : batch.meanLength,
    ...(batch.labels ? { labels: idx.map((i) => batch.labels![i]!) } : {}),
  };
}

/**
 * Fast OPTIN: heads get exact scores on the whole calibration batch; neurons get exact trajectory
 * scores on an evenly spread subset of the examples (the cost of neuron scoring is proportional to
 * the tokens it runs), optionally over the next `horizon` layers only. Unless that subset is the whole
 * batch and the trajectory whole, a few reference neurons per layer are then scored exactly and the
 * others' whole-batch losses are extrapolated from their subset losses and activation energies
 * ({@link extrapolateLosses}), so heads and neurons stay comparable in the global search.
 */
export async function scoreFast(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, opts: FastOptions = {}): Promise<Scores> {
  const t0 = performance.now();
  const n = Math.max(1, Math.min(batch.batch, opts.neuronExamples ?? Math.ceil(batch.batch / 4)));
  const sub = subBatch(batch, n);
  const complete = n >= batch.batch && opts.horizon === undefined;
  const K = opts.referenceNeurons ?? REFERENCE_NEURONS;
  const nHeads = st.layers.reduce((a, l) => a + headCount(l), 0);
  const nNeurons = st.layers.reduce((a, l) => a + (l.ffn?.width ?? 0), 0);
  const nRefs = complete ? 0 : st.layers.reduce((a, l) => a + Math.min(K, l.ffn?.width ?? 0), 0);
  const total = nHeads + nNeurons + nRefs;
  let headScores: number[][] | undefined;
  const relay = (offset: number) => (p: ScoreProgress): void => {
    const partial = p.partial && headScores && offset === nHeads ? { ...p.partial, heads: headScores[p.partial.layer]! } : undefined;
    const { partial: _drop, eta: _phaseEta, ...rest } = p;
    const done = offset + p.done, elapsed = (performance.now() - t0) / 1000;
    // The reference neurons run last, each on the whole batch and trajectory: far dearer than the
    // elements before them, so their phase reports its own estimate instead of the per-element rate.
    const eta = offset === nHeads + nNeurons ? p.eta : done > 0 && p.phase === 'layer' ? (elapsed / done) * (total - done) : undefined;
    opts.onProgress?.({ ...rest, done, total, elapsed, ...(eta !== undefined ? { eta } : {}), ...(partial ? { partial } : {}) });
  };
  // Activation energies first, while the process holds no suffix sessions yet (peak memory).
  const ffnValues = [...new Set(st.layers.flatMap((l) => (l.ffn ? [l.ffn.hidden] : [])))];
  const energies = complete || !ffnValues.length ? undefined : await featureEnergies(model, ffnValues, batch, spread(batch.batch, n));
  // Only the neurons' own suffix runs are cut short: heads and the reference neurons keep the whole trajectory.
  const { horizon: _h, ...whole } = opts;
  const heads = await scoreModel(model, st, batch, { ...whole, kinds: ['head'], onProgress: relay(0) });
  headScores = heads.heads;
  const neurons = await scoreModel(model, st, sub, { ...opts, kinds: ['neuron'], onProgress: relay(nHeads), ...(opts.horizon !== undefined ? { horizon: opts.horizon } : {}) });
  const ext = energies ? await extrapolate(model, st, batch, energies, neurons.raw.neurons, { ...whole, onProgress: relay(nHeads + nNeurons) }, K) : undefined;
  const rawNeurons = ext?.raw ?? neurons.raw.neurons;
  const c = { ...OPTIN_DEFAULTS, ...opts.constants };
  const scores: Scores = {
    ...heads,
    ...(ext ? { extrapolation: ext.fit } : {}),
    heads: balance(heads.raw.heads, 'head', c),
    neurons: balance(rawNeurons, 'neuron', c),
    raw: { heads: heads.raw.heads, neurons: rawNeurons },
    mode: 'fast',
    seconds: (performance.now() - t0) / 1000,
  };
  opts.onProgress?.({ phase: 'layer', done: total, total, elapsed: scores.seconds });
  return scores;
}

/** Squared norm of every neuron's row of the FFN's second matrix (1 where the weight is not a float constant). */
function rowNorms(l: EncoderLayer, ix: GraphIndex): Float64Array {
  const f = l.ffn!;
  try {
    const rows = weightNorms(ix, f.down.weight, f.down.transposed).rows;
    if (rows.length === f.width) return rows;
  } catch {
    // not a float constant: energies alone
  }
  return new Float64Array(f.width).fill(1);
}

/** Score `k` reference neurons per layer exactly and, with the activation energies, extrapolate the others' subset losses to the whole batch. */
async function extrapolate(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, energies: Awaited<ReturnType<typeof featureEnergies>>, raw: RawLosses[], opts: ScoreOptions, k: number): Promise<ReturnType<typeof extrapolateLosses>> {
  const layers = st.layers.filter((l) => l.ffn).map((l) => l.index);
  const refs = st.layers.map((l) => {
    if (!l.ffn) return [];
    const order = raw[l.index]!.md.map((v, j) => [v, j] as const).sort((a, b) => a[0] - b[0]).map(([, j]) => j);
    const m = Math.min(k, order.length);
    return [...new Set(Array.from({ length: m }, (_, i) => order[Math.floor(((i + 0.5) * order.length) / m)]!))].sort((a, b) => a - b);
  });
  const exact = await scoreModel(model, st, batch, { ...opts, kinds: ['neuron'], layers, neuronSubset: refs });
  const { all, picked } = energies;
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const evidence: LayerEvidence[] = st.layers.map((l) => {
    if (!l.ffn) return { sub: raw[l.index]!, energyAll: [], energySub: [], refs: new Map() };
    const w = rowNorms(l, ix);
    const A = all.get(l.ffn.hidden)!, P = picked.get(l.ffn.hidden)!;
    const per = (e: FeatureEnergy): number[] => Array.from(w, (x, j) => (e.rows ? (e.sums[j]! / e.rows) * x : 0));
    const r = exact.raw.neurons[l.index]!;
    return { sub: raw[l.index]!, energyAll: per(A), energySub: per(P), refs: new Map(refs[l.index]!.map((j) => [j, { md: r.md[j]!, kl: r.kl[j]! }])) };
  });
  return extrapolateLosses(evidence);
}
