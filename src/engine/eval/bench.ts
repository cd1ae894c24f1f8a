import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../onnx/model';
import { describeInterface } from '../structure/detect';
import type { ModelInput, ModelStructure } from '../structure/types';
import { hasDynamicSize, imageAxes, inputSizeFor, withInputSize } from '../data/inputSize';
import type { InputSize } from '../data/types';
import { createSession, describeSession, runSession, type Session } from '../runtime/session';
import type { EpChoice } from '../runtime/providers';
import { benchFeeds, decodeFeeds } from '../data/synthetic';
import { OptinError } from '../errors';

/** Latency of several models measured side by side. */
export interface BenchReport {
  batch: number;
  /** Tokens per example for text models (ignored by vision models; see `shape`). */
  seqLen: number;
  /** What one run processes, in words: "batch 32 x 48 tokens" (text) or "batch 32 images". */
  shape: string;
  runs: number;
  /** intra-op threads every session was pinned to. */
  threads: number;
  provider: string;
  models: Array<{ model: string; provider: string; medianMs: number; p10Ms: number; p90Ms: number }>;
  /** medianMs of the first model divided by each model's medianMs (speedup over the first). */
  speedup: number[];
  /**
   * Decoders with a key/value cache: one decode step (one new token per row, a cache of
   * `context` tokens), timed interleaved like the prefill; `tokensPerSecond` = batch / step time.
   */
  decode?: { context: number; models: Array<{ medianMs: number; tokensPerSecond: number }>; speedup: number[] };
}

/** Options for {@link benchModels}. */
export interface BenchOptions {
  batch?: number;
  seqLen?: number;
  runs?: number;
  warmup?: number;
  ep?: EpChoice;
  /** A provider per model (same model on several providers), instead of `ep` for all. */
  eps?: EpChoice[];
  threads?: number;
  /** Height and width of dynamic image axes (default: the first model's preprocessor config size). */
  inputSize?: InputSize;
  signal?: AbortSignal;
}

function imageSize(inputs: ModelInput[]): string {
  const px = inputs.find((i) => i.role === 'pixel_values');
  if (!px || px.shape.length !== 4) return '';
  const a = imageAxes(px);
  return ` of ${px.shape[a.height]}x${px.shape[a.width]}`;
}

/** The q-quantile (0..1) of samples, nearest-rank. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/**
 * Time several jobs interleaved (a, b, c, then c, b, a, ...) after `warmup` untimed rounds, so
 * machine noise hits every job alike; returns each job's milliseconds per timed round.
 * @throws OptinError('cancelled') when the signal fires
 */
export async function timeInterleaved(jobs: Array<() => Promise<unknown>>, runs: number, warmup: number, signal?: AbortSignal): Promise<number[][]> {
  const times: number[][] = jobs.map(() => []);
  for (let r = -warmup; r < runs; r++) {
    const order = r % 2 === 0 ? jobs.map((_, i) => i) : jobs.map((_, i) => jobs.length - 1 - i);
    for (const i of order) {
      if (signal?.aborted) throw new OptinError('cancelled', 'benchmark cancelled');
      const t0 = performance.now();
      await jobs[i]!();
      if (r >= 0) times[i]!.push(performance.now() - t0);
    }
  }
  return times;
}

/**
 * Median latency of each model on the same synthetic batch, runs interleaved (a, b, c, b, a, ...)
 * in one process so machine noise hits every model alike; speedups are relative to the first.
 */
export async function benchModels(paths: string[], opts: BenchOptions = {}): Promise<BenchReport> {
  if (paths.length < 1) throw new OptinError('usage', 'bench needs at least one model');
  const batch = opts.batch ?? 32, seqLen = opts.seqLen ?? 48, runs = opts.runs ?? 20, warmup = opts.warmup ?? 3;
  const threads = opts.threads || (os.availableParallelism?.() ?? os.cpus().length);
  const sessions: Session[] = [];
  const feeds: Array<Record<string, ort.Tensor>> = [];
  const interfaces: ModelStructure[] = [];
  let shape = '';
  let usedBatch = batch;
  try {
    for (const [k, p] of paths.entries()) {
      const m = loadModel(p);
      const st0 = describeInterface(m);
      const st = { ...st0, inputs: withInputSize(st0.inputs, opts.inputSize ?? inputSizeFor(paths[0]!)) };
      const open = st.inputs.find(hasDynamicSize);
      if (open) throw new OptinError('usage', `${m.path}: input "${open.name}" has dynamic height and width (${open.shape.join(' x ')}); give the size to time it at: --input-size HxW, or a preprocessor_config.json beside ${path.basename(paths[0]!)}`);
      const fixed = st.inputs.map((i) => i.shape[0]).find((d) => typeof d === 'number' && d > 0);
      sessions.push(await createSession(m.path, { ep: opts.eps?.[k] ?? opts.ep ?? 'cpu', label: m.path, noSpin: true, threads }));
      const b = typeof fixed === 'number' ? fixed : batch;
      feeds.push(benchFeeds(st, b, seqLen));
      interfaces.push(st);
      if (k === 0) {
        usedBatch = b;
        shape = st.inputs.some((i) => i.role === 'input_ids') ? `batch ${b} x ${seqLen} tokens` : st.inputs.some((i) => i.role === 'pixel_values') ? `batch ${b} images${imageSize(st.inputs)}` : `batch ${b}`;
      }
    }
    const times = await timeInterleaved(sessions.map((se, i) => () => runSession(se.session, feeds[i]!, paths[i]!)), runs, warmup, opts.signal);
    const models = paths.map((model, i) => ({ model, provider: describeSession(sessions[i]!), medianMs: quantile(times[i]!, 0.5), p10Ms: quantile(times[i]!, 0.1), p90Ms: quantile(times[i]!, 0.9) }));
    const report: BenchReport = { batch: usedBatch, seqLen, shape, runs, threads, provider: describeSession(sessions[0]!), models, speedup: models.map((m) => models[0]!.medianMs / m.medianMs) };
    if (interfaces.every((st) => st.inputs.some((i) => i.role === 'past_key_values'))) {
      const steps = interfaces.map((st) => decodeFeeds(st, usedBatch, seqLen));
      const t = await timeInterleaved(sessions.map((se, i) => () => runSession(se.session, steps[i]!, paths[i]!)), runs, warmup, opts.signal);
      const med = t.map((x) => quantile(x, 0.5));
      report.decode = { context: seqLen, models: med.map((ms) => ({ medianMs: ms, tokensPerSecond: (1000 * usedBatch) / ms })), speedup: med.map((ms) => med[0]! / ms) };
    }
    return report;
  } finally {
    for (const s of sessions) await s.session.release();
  }
}
