import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch } from '../data/calibration';
import { pickFeeds } from '../data/batches';
import { balance } from './balance';
import { scoreModel, tokenRows, type ScoreOptions } from './scorer';
import { OPTIN_DEFAULTS, type RawLosses, type ScoreProgress, type Scores } from './types';

/** Options of {@link scoreFast}. */
export interface FastOptions extends ScoreOptions {
  /** Calibration examples the neurons are scored on (default: a quarter of the batch, at least 1). */
  neuronExamples?: number;
  /**
   * Neurons compare only the next `horizon` layers; per truncated layer, `calibrationNeurons`
   * neurons (spread over the truncated ranking) also get the full trajectory, and the layer's
   * truncated scores are mapped to full ones by the median ratio (default: no truncation).
   */
  horizon?: number;
  calibrationNeurons?: number;
}

/** `n` examples spread evenly over a batch (same padded length), with their masks and labels. */
export function subBatch(batch: CalibrationBatch, n: number): CalibrationBatch {
  const B = batch.batch;
  if (n >= B) return batch;
  const S = batch.seqLen;
  const idx = Array.from({ length: n }, (_, i) => Math.floor((i * B) / n));
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
 * the tokens it runs). The neurons' raw terms are rescaled to the full batch's size (MD by the
 * squared ratio of sampled token rows, KL by the ratio of examples) before balancing, so heads and
 * neurons stay comparable in the global search.
 */
export async function scoreFast(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, opts: FastOptions = {}): Promise<Scores> {
  const t0 = performance.now();
  const n = Math.max(1, Math.min(batch.batch, opts.neuronExamples ?? Math.ceil(batch.batch / 4)));
  const sub = subBatch(batch, n);
  const nHeads = st.layers.reduce((a, l) => a + l.attention.heads, 0);
  const nNeurons = st.layers.reduce((a, l) => a + (l.ffn?.width ?? 0), 0);
  const total = nHeads + nNeurons;
  let headScores: number[][] | undefined;
  const relay = (offset: number) => (p: ScoreProgress): void => {
    const partial = p.partial && headScores ? { ...p.partial, heads: headScores[p.partial.layer]! } : undefined;
    const { partial: _drop, eta: _phaseEta, ...rest } = p;
    const done = offset + p.done, elapsed = (performance.now() - t0) / 1000;
    const eta = done > 0 && p.phase === 'layer' ? (elapsed / done) * (total - done) : undefined;
    opts.onProgress?.({ ...rest, done, total, elapsed, ...(eta !== undefined ? { eta } : {}), ...(partial ? { partial } : {}) });
  };
  // Only the neurons' own suffix runs are cut short: heads and the calibration neurons keep the whole trajectory.
  const { horizon: _h, ...whole } = opts;
  const heads = await scoreModel(model, st, batch, { ...whole, kinds: ['head'], onProgress: relay(0) });
  headScores = heads.heads;
  const neurons = await scoreModel(model, st, sub, { ...opts, kinds: ['neuron'], onProgress: relay(nHeads), ...(opts.horizon !== undefined ? { horizon: opts.horizon } : {}) });
  if (opts.horizon !== undefined) await calibrateHorizon(model, st, sub, neurons.raw.neurons, opts);
  const c = { ...OPTIN_DEFAULTS, ...opts.constants };
  const rowsFull = tokenRows(batch, c.tokenSample, c.seed).length;
  const rowsSub = tokenRows(sub, c.tokenSample, c.seed).length;
  const mdScale = (rowsFull / rowsSub) ** 2, klScale = batch.batch / n;
  const rawNeurons: RawLosses[] = neurons.raw.neurons.map((r) => ({ md: r.md.map((x) => x * mdScale), kl: r.kl.map((x) => x * klScale) }));
  const scores: Scores = {
    ...heads,
    heads: balance(heads.raw.heads, 'head', c),
    neurons: balance(rawNeurons, 'neuron', c),
    raw: { heads: heads.raw.heads, neurons: rawNeurons },
    mode: 'fast',
    seconds: (performance.now() - t0) / 1000,
  };
  opts.onProgress?.({ phase: 'layer', done: total, total, elapsed: scores.seconds });
  return scores;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
}

/** Map truncated-horizon neuron losses to full-trajectory ones, layer by layer (in place). */
async function calibrateHorizon(model: OnnxModel, st: ModelStructure, sub: CalibrationBatch, raw: RawLosses[], opts: FastOptions): Promise<void> {
  const L = st.layers.length;
  const layers = st.layers.filter((l) => l.ffn && L - 1 - l.index > opts.horizon!).map((l) => l.index);
  if (!layers.length) return;
  const k = opts.calibrationNeurons ?? 8;
  const subset = st.layers.map((l) => {
    if (!layers.includes(l.index)) return [];
    const order = raw[l.index]!.md.map((v, j) => [v, j] as const).sort((a, b) => a[0] - b[0]).map(([, j]) => j);
    return [...new Set(Array.from({ length: k }, (_, i) => order[Math.floor(((i + 0.5) * order.length) / k)]!))].sort((a, b) => a - b);
  });
  const { horizon: _h, ...whole } = opts;
  const full = await scoreModel(model, st, sub, { ...whole, kinds: ['neuron'], layers, neuronSubset: subset, onProgress: () => undefined });
  for (const l of layers) {
    const r = raw[l]!, f = full.raw.neurons[l]!;
    const ok = subset[l]!.filter((j) => r.md[j]! > 0);
    const aMd = median(ok.map((j) => f.md[j]! / r.md[j]!));
    const aKl = median(ok.map((j) => f.kl[j]! / r.md[j]!));
    raw[l] = {
      md: r.md.map((x, j) => (subset[l]!.includes(j) ? f.md[j]! : x * aMd)),
      kl: r.md.map((x, j) => (subset[l]!.includes(j) ? f.kl[j]! : x * aKl)),
    };
  }
}
