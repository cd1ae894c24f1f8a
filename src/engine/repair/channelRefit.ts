import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { NodeProto } from '../onnx/schema';
import { GraphIndex, attrInt, attrInts } from '../onnx/graph';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
import type { CalibrationBatch } from '../data/calibration';
import { runSession, sessionFor, toOrt } from '../runtime/session';
import { sampleIndices } from '../optin/random';
import { fitRows } from './leastSquares';
import { OptinError } from '../errors';
import { channelMaskFeeds, instrumentChannels } from '../channels/instrument';
import { withConsumerUpdates, type ConsumerUpdates } from '../channels/consumers';
import type { ChannelStructure } from '../channels/structure';

/** Rows (examples x output positions) each consumer's least squares uses at most. */
export const RECONSTRUCTION_ROWS = 16384;

/** What reconstruction did to one consumer. */
export interface ReconstructionStep {
  group: string;
  consumer: string;
  /** Squared error against the dense output on the sampled rows, before (weights as they are) and after. */
  before: number;
  after: number;
  rejected?: string;
}

/** How one consumer turns its input rows into features: im2col for a Conv, the last axis for MatMul/Gemm. */
interface Layout {
  /** Features per row: kept channels x kernel positions. */
  features: number;
  rows: number;
  /** Fill the feature vector of row r from the consumer's input. */
  row(r: number, out: Float64Array): void;
}

function convLayout(n: NodeProto, x: ort.Tensor, kept: number[], outDims: readonly number[], wDims: number[]): Layout {
  const [B, C, H, W] = x.dims as [number, number, number, number];
  const [kh, kw] = [wDims[2]!, wDims[3]!];
  const [sh, sw] = attrInts(n, 'strides') ?? [1, 1];
  const [dh, dw] = attrInts(n, 'dilations') ?? [1, 1];
  const pads = attrInts(n, 'pads') ?? [0, 0, 0, 0];
  const [Ho, Wo] = [outDims[2]!, outDims[3]!];
  const d = x.data as Float32Array;
  const k = kept.length;
  return {
    features: k * kh * kw,
    rows: B * Ho * Wo,
    row(r, out) {
      const b = Math.floor(r / (Ho * Wo)), p = r % (Ho * Wo), oy = Math.floor(p / Wo), ox = p % Wo;
      let f = 0;
      for (const c of kept) {
        for (let i = 0; i < kh; i++) {
          const y = oy * sh! - pads[0]! + i * dh!;
          for (let j = 0; j < kw; j++, f++) {
            const xx = ox * sw! - pads[1]! + j * dw!;
            out[f] = y >= 0 && y < H && xx >= 0 && xx < W ? d[((b * C + c) * H + y) * W + xx]! : 0;
          }
        }
      }
    },
  };
}

function denseLayout(x: ort.Tensor, kept: number[]): Layout {
  const C = x.dims[x.dims.length - 1]!;
  const d = x.data as Float32Array;
  return {
    features: kept.length,
    rows: d.length / C,
    row(r, out) {
      kept.forEach((c, f) => { out[f] = d[r * C + c]!; });
    },
  };
}

/** Output rows of a consumer as [rows, outChannels] (channels last). */
function outRows(y: ort.Tensor, conv: boolean): { data: Float32Array; channels: number } {
  const d = y.data as Float32Array;
  if (!conv) return { data: d, channels: y.dims[y.dims.length - 1]! };
  const [B, C] = [y.dims[0]!, y.dims[1]!];
  const plane = d.length / (B * C);
  const out = new Float32Array(d.length);
  for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) for (let p = 0; p < plane; p++) out[(b * plane + p) * C + c] = d[(b * C + c) * plane + p]!;
  return { data: out, channels: C };
}

/**
 * "Tuning" for channel groups: layer-wise least-squares reconstruction without training (in the
 * spirit of Kwon et al. 2022's mask tuning, here over whole consumer weights as in He et al. 2017's
 * channel pruning). Group by group in graph order, with the earlier groups already cut and
 * reconstructed, every consumer's weights over the kept channels (and its bias) are refitted so its
 * output reconstructs the dense model's output on the calibration batch: ridge-regularised toward
 * the original weights, on at most {@link RECONSTRUCTION_ROWS} sampled rows; a refit that does not
 * lower the error is rejected. Returns the updated consumers (full original shapes).
 */
export async function reconstructConsumers(model: OnnxModel, cs: ChannelStructure, keep: number[][], batch: CalibrationBatch, signal?: AbortSignal): Promise<{ updates: ConsumerUpdates; steps: ReconstructionStep[] }> {
  const updates: ConsumerUpdates = {};
  const steps: ReconstructionStep[] = [];
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const byName = new Map(ix.graph.node.map((n) => [n.name || n.output[0]!, n]));
  const weighted = (n: NodeProto): boolean => (n.opType === 'Conv' && attrInt(n, 'group', 1) === 1) || n.opType === 'MatMul' || n.opType === 'Gemm';
  // A consumer of a Concat also reads other groups' channels: not refit here (left as cut).
  const consumersOf = (l: number): NodeProto[] => cs.groups[l]!.masks.filter((m) => m.offset === undefined).map((m) => byName.get(m.node)!).filter(weighted);
  const sharedOf = (l: number): string[] => cs.groups[l]!.masks.filter((m) => m.offset !== undefined && weighted(byName.get(m.node)!)).map((m) => m.node);
  const dense = await sessionFor(model, instrumentChannels(model, cs, [], cs.groups.flatMap((_, l) => consumersOf(l).map((n) => n.output[0]!))), `${model.path} (dense consumers)`);
  let target: Record<string, ort.Tensor>;
  try {
    target = await runSession(dense.session, toOrt(batch.feeds), `${model.path} (dense consumers)`);
  } finally {
    await dense.session.release();
  }
  for (let l = 0; l < cs.groups.length; l++) {
    const grp = cs.groups[l]!;
    const kept = keep[l]!;
    if (kept.length === grp.width) continue;
    if (signal?.aborted) throw new OptinError('cancelled', 'tuning cancelled; nothing was written');
    const consumers = consumersOf(l);
    for (const c of sharedOf(l)) steps.push({ group: grp.name, consumer: c, before: 0, after: 0, rejected: 'it also reads channels concatenated from other groups; left as cut' });
    if (!consumers.length) continue;
    const current = withConsumerUpdates(model, updates);
    const inputs = consumers.map((n) => n.input[grp.masks.find((m) => m.node === (n.name || n.output[0]))!.input]!);
    const earlier = cs.groups.map((_, i) => i).filter((i) => i < l);
    const s = await sessionFor(current, instrumentChannels(current, cs, earlier, inputs), `${model.path} (reconstruction, group ${grp.name})`);
    let got: Record<string, ort.Tensor>;
    try {
      got = await runSession(s.session, { ...toOrt(batch.feeds), ...channelMaskFeeds(cs, keep, batch.batch, earlier) }, `${model.path} (reconstruction)`);
    } finally {
      await s.session.release();
    }
    consumers.forEach((n, ci) => {
      const name = n.name || n.output[0]!;
      const conv = n.opType === 'Conv';
      const wT = ix.constant(n.input[1]!)!;
      const W0 = updates[name]?.weight ?? tensorFloat32(wT, model.ext);
      const wDims = tensorShape(wT);
      const transB = n.opType === 'Gemm' && attrInt(n, 'transB', 0) === 1;
      const hasBias = n.opType !== 'MatMul';
      const b0 = updates[name]?.bias ?? (n.input[2] && ix.constant(n.input[2]) ? Array.from(tensorFloat32(ix.constant(n.input[2])!, model.ext)) : undefined);
      const y = outRows(target[n.output[0]!]!, conv);
      const layout = conv ? convLayout(n, got[inputs[ci]!]!, kept, target[n.output[0]!]!.dims, wDims) : denseLayout(got[inputs[ci]!]!, kept);
      const M = y.channels;
      const ksz = conv ? wDims[2]! * wDims[3]! : 1;
      /** Current weight of feature f (kept channel x kernel position) for output o. */
      const w0 = (f: number, o: number): number => {
        const c = kept[Math.floor(f / ksz)]!, k = f % ksz;
        if (conv) return W0[(o * wDims[1]! + c) * ksz + k]!;
        return transB ? W0[o * wDims[1]! + c]! : W0[c * wDims[1]! + o]!;
      };
      const rows = sampleIndices(layout.rows, RECONSTRUCTION_ROWS, 17 + l);
      const fit = fitRows({
        rows: rows.length, features: layout.features, outputs: M, bias: hasBias,
        row: (r, out) => layout.row(rows[r]!, out), y: (r, o) => y.data[rows[r]! * M + o]!, w0, b0: (o) => b0?.[o] ?? 0,
      });
      const step: ReconstructionStep = { group: grp.name, consumer: name, before: fit.before, after: fit.after, ...(fit.rejected ? { rejected: fit.rejected } : {}) };
      steps.push(step);
      if (fit.rejected) return;
      const X = fit.weights;
      const W = Float32Array.from(W0);
      for (let f = 0; f < layout.features; f++) {
        const c = kept[Math.floor(f / ksz)]!, k = f % ksz;
        for (let o = 0; o < M; o++) {
          if (conv) W[(o * wDims[1]! + c) * ksz + k] = X[f * M + o]!;
          else if (transB) W[o * wDims[1]! + c] = X[f * M + o]!;
          else W[c * wDims[1]! + o] = X[f * M + o]!;
        }
      }
      updates[name] = { weight: W, ...(fit.bias ? { bias: Array.from(fit.bias) } : {}) };
    });
  }
  return { updates, steps };
}
