import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { ModelProto } from '../onnx/schema';
import { GraphIndex } from '../onnx/graph';
import { findBlocks } from '../structure/detect';
import { measureShapes, type MeasuredShapes } from '../groups/shapes';
import { fixedInputSize } from '../data/inputSize';
import { keptHeadMacs, macGeometry, unitMacs } from '../flops';
import type { AttentionBlock, EncoderLayer, FfnBlock, ModelStructure } from '../structure/types';
import type { CalibrationBatch } from '../data/calibration';
import { headMaskDims, headMaskName, instrument, neuronMaskDims, neuronMaskName } from '../optin/instrument';
import { describeSession, runSession, sessionFor, toOrt } from '../runtime/session';
import type { EpChoice } from '../runtime/providers';
import { chunks, fixedBatch } from '../data/batches';
import { argmaxRows } from '../eval/evaluate';
import { OptinError } from '../errors';
import type { KeepSet } from '../prune/apply';
import type { ChannelStructure } from '../channels/structure';
import { recountChannelMacs, type MacTerm } from '../channels/macs';
import { channelMaskFeeds, instrumentChannels } from '../channels/instrument';
import { checkDecodeStep, emptyCachesOf, type DecodeCheck } from './decode';

/** The channel groups of a hybrid model cut with its heads and neurons: verified together. */
export interface ChannelKeep {
  cs: ChannelStructure;
  keep: number[][];
  terms: MacTerm[];
}

/** Result of checking a pruned model against the masked original. */
export interface Verification {
  /** Largest |pruned - masked| over every output element of the calibration batch. */
  maxAbsDiff: number;
  /** Largest |masked| output value (the scale the tolerance is relative to). */
  outputScale: number;
  /** Tolerance used: 1e-4 x outputScale. */
  tolerance: number;
  /** MACs of the prunable parts recounted from the pruned graph. */
  macs: number;
  /** Predictions that agree (argmax of the first output), when it is a classifier. */
  argmaxAgreement?: number;
  /** Where both models ran, e.g. "cpu" or "webgpu (NVIDIA (Vulkan))". */
  provider: string;
  /** Decoders with a key/value cache: one decode step after a prefill, against the masked original and the pruned model's own full run. */
  decodeStep?: DecodeCheck;
}

/** Mask feeds equal to a keep set: 0 for pruned, 1 (or the tuning scale) for kept elements. */
export function maskFeeds(st: ModelStructure, keep: KeepSet): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  st.layers.forEach((l, i) => {
    const hm = headMaskDims(l);
    if (hm) {
      const H = l.attention!.heads;
      const per = new Float32Array(H);
      keep.heads[i]!.forEach((h, j) => { per[h] = keep.scales?.heads[i]?.[j] ?? 1; });
      const data = hm.repeat === 1 ? per : Float32Array.from({ length: H * hm.repeat }, (_, k) => per[Math.floor(k / hm.repeat)]!);
      feeds[headMaskName(i)] = new ort.Tensor('float32', data, hm.dims.map((d) => (typeof d === 'string' ? 1 : d)));
    }
    if (l.ffn) {
      const n = new Float32Array(l.ffn.width);
      keep.neurons[i]!.forEach((j, k) => { n[j] = keep.scales?.neurons[i]?.[k] ?? 1; });
      feeds[neuronMaskName(i)] = new ort.Tensor('float32', n, neuronMaskDims(l).map((d) => (typeof d === 'string' ? 1 : d)));
    }
  });
  return feeds;
}

/**
 * MACs of the prunable parts of a graph, counted from what is actually in it. Staged models
 * (layers with a measured shape) count each block at its layer's positions, keys and width; blocks
 * are matched to the original's layers by node name (pruning keeps names).
 */
export function recountMacs(model: OnnxModel, shapes: MeasuredShapes, seqLen: number, layers: EncoderLayer[] = []): number {
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const { attns, ffns } = findBlocks(ix, model.path, shapes);
  const hidden = attns[0]!.output.outFeatures;
  const byCore = new Map(layers.filter((l) => l.shape && l.attention).map((l) => [l.attention!.core, l.shape!]));
  const byUp = new Map(layers.filter((l) => l.shape && l.ffn).map((l) => [l.ffn!.up.node, l.shape!]));
  const head = (b: AttentionBlock): number => keptHeadMacs(unitMacs(macGeometry(byCore.get(b.core), seqLen, hidden), b.headSize, b.vHeadSize, false, b.group, b.sharedKv), b.heads);
  const neuron = (f: FfnBlock): number => unitMacs(macGeometry(byUp.get(f.up.node), seqLen, hidden), 0, 0, !!f.gate).neuron;
  return attns.reduce((a, b) => a + head(b), 0) + ffns.reduce((a, f) => a + f.width * neuron(f), 0);
}

/** The largest |x - y| over two outputs of equal length (Infinity when either holds a NaN), and the largest |x|. */
export function outputDiff(x: Float32Array, y: Float32Array): { diff: number; scale: number } {
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
  return { diff: Number.isNaN(diff) ? Infinity : diff, scale: maxAbs(x) };
}

/** The tolerance of a comparison at an output scale: 1e-4 of it (docs/testing.md says why it is fixed). */
export function toleranceAt(scale: number): number {
  return 1e-4 * Math.max(scale, 1e-6);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function argmaxAgreement(a: ort.Tensor, b: ort.Tensor): number | undefined {
  const dims = a.dims;
  if (dims.length !== 2 || dims[1]! < 2) return undefined;
  const [n, c] = [dims[0]!, dims[1]!];
  const x = argmaxRows(a.data as Float32Array, n, c), y = argmaxRows(b.data as Float32Array, n, c);
  return x.filter((v, i) => v === y[i]).length / n;
}

/**
 * Prove a pruned model: it loads in onnxruntime, its outputs equal the original's with the same
 * heads/neurons masked (and the same tuning scales; for hybrid models also the same channels) on
 * the calibration batch, and its MACs recounted from the graph equal the plan's.
 * @throws OptinError('runtime') when outputs differ by more than 1e-4 of the output scale or the
 * MACs disagree, with the numbers.
 */
export async function verifyPruned(
  original: OnnxModel, st: ModelStructure, pruned: OnnxModel, keep: KeepSet, batch: CalibrationBatch,
  expected: { macs: number; seqLen: number }, ep: EpChoice = 'cpu', channels?: ChannelKeep,
): Promise<Verification> {
  const heads = instrument(original, st, { maskLayers: st.layers.map((l) => l.index), outputs: [] });
  const masked = channels ? instrumentChannels({ ...original, proto: heads }, channels.cs, channels.cs.groups.map((_, l) => l), []) : heads;
  const size = fixedBatch(st) ?? batch.batch;
  const { diff, scale, agreement, provider } = await compareWithMasked({
    original, masked, pruned, batch, ep, outputs: st.outputs, chunk: size, rows: size * Math.floor(batch.batch / size),
    masks: (rows) => ({ ...maskFeeds(st, keep), ...(channels ? channelMaskFeeds(channels.cs, channels.keep, rows) : {}) }),
  });
  if (batch.batch < (fixedBatch(st) ?? 1)) throw new OptinError('data', `${original.path} needs batches of ${fixedBatch(st)}; the calibration batch has ${batch.batch} examples`);
  const tolerance = withinTolerance(pruned.path, diff, scale);
  const shapes = await measureShapes(pruned, fixedInputSize(st.inputs));
  const macs = recountMacs(pruned, shapes, expected.seqLen, st.layers) + (channels ? await recountChannelMacs(pruned, channels.terms.map((t) => t.node), channels.cs.inputSize, shapes) : 0);
  if (Math.abs(macs - expected.macs) > 1e-6 * Math.max(1, expected.macs)) {
    throw new OptinError('runtime', `${pruned.path}: verification failed: the pruned graph has ${macs} MACs, the plan says ${expected.macs}`);
  }
  let decodeStep: DecodeCheck | undefined;
  if (st.layers.some((l) => l.attention?.cache)) {
    decodeStep = await checkDecodeStep({ original, masked, pruned, st, batch, ep, masks: () => maskFeeds(st, keep) });
    withinTolerance(`${pruned.path} (decode step with the cache)`, decodeStep.maxAbsDiff, decodeStep.outputScale);
    withinTolerance(`${pruned.path} (decode step vs its own full run)`, decodeStep.selfMaxAbsDiff, decodeStep.outputScale);
  }
  return { maxAbsDiff: diff, outputScale: scale, tolerance, macs, ...(agreement !== undefined ? { argmaxAgreement: agreement } : {}), provider, ...(decodeStep ? { decodeStep } : {}) };
}

/**
 * The one comparison every pruned model goes through: run the original with the plan's masks
 * (`masked`, its feeds from `masks`) and the pruned model on the same calibration rows, chunk by
 * chunk, and return the largest output difference, the output scale and the argmax agreement of
 * the first output when it is a classifier.
 * @throws OptinError('runtime') when an output is missing or has another shape
 */
export async function compareWithMasked(o: {
  original: OnnxModel; masked: ModelProto; pruned: OnnxModel; batch: CalibrationBatch; ep: EpChoice; outputs: string[];
  /** Rows per run, and the rows compared in all (a multiple of chunk for graphs with a fixed batch). */
  chunk: number; rows: number;
  masks: (rows: number) => Record<string, ort.Tensor>;
}): Promise<{ diff: number; scale: number; agreement?: number; provider: string }> {
  const a = await sessionFor(o.original, o.masked, `${o.original.path} (masked)`, o.ep);
  const b = await sessionFor(o.pruned, o.pruned.proto, `${o.pruned.path} (pruned)`, o.ep);
  let diff = 0, scale = 0, same = 0, compared = 0;
  try {
    for (const c of chunks(o.batch.feeds, o.rows, o.chunk)) {
      const feeds = toOrt(c.feeds);
      const rows = Object.values(feeds)[0]!.dims[0]!;
      const ref = await runSession(a.session, { ...feeds, ...o.masks(rows) }, `${o.original.path} (masked run)`);
      const got = await runSession(b.session, emptyCachesOf(o.pruned.proto, feeds), `${o.pruned.path} (pruned run)`);
      for (const name of o.outputs) {
        const x = ref[name], y = got[name];
        if (!x || !y) throw new OptinError('runtime', `${o.pruned.path}: output "${name}" is missing from the pruned model`);
        if (x.dims.join() !== y.dims.join()) throw new OptinError('runtime', `${o.pruned.path}: output "${name}" has shape [${y.dims}], masked original [${x.dims}]`);
        const d = outputDiff(x.data as Float32Array, y.data as Float32Array);
        scale = Math.max(scale, d.scale);
        diff = Math.max(diff, d.diff);
      }
      const first = o.outputs[0]!;
      const agree = argmaxAgreement(ref[first]!, got[first]!);
      if (agree !== undefined) { same += agree * ref[first]!.dims[0]!; compared += ref[first]!.dims[0]!; }
    }
    return { diff, scale, ...(compared ? { agreement: same / compared } : {}), provider: describeSession(a) };
  } finally {
    await a.session.release();
    await b.session.release();
  }
}

/**
 * The tolerance of a comparison: 1e-4 of the output scale (docs/testing.md says why it is fixed).
 * @throws OptinError('runtime') with the numbers when the difference is above it
 */
export function withinTolerance(file: string, diff: number, scale: number): number {
  const tolerance = toleranceAt(scale);
  if (!(diff <= tolerance)) {
    throw new OptinError('runtime', `${file}: verification failed: outputs differ from the masked original by ${diff.toExponential(3)} (tolerance ${tolerance.toExponential(3)} = 1e-4 of output scale ${scale.toPrecision(4)})`);
  }
  return tolerance;
}
