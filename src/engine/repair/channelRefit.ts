import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { NodeProto } from '../onnx/schema';
import { GraphIndex, attrInt, attrInts } from '../onnx/graph';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
import type { CalibrationBatch } from '../data/calibration';
import { runSession, sessionFor, toOrt } from '../runtime/session';
import { sampleIndices } from '../optin/random';
import { fitRows } from './leastSquares';
import { normalEquationsOnRuntime } from './normalEquations';
import { OptinError } from '../errors';
import { channelMaskFeeds, instrumentChannels } from '../channels/instrument';
import { withConsumerUpdates, type ConsumerUpdates } from '../channels/consumers';
import type { ChannelStructure } from '../channels/structure';

/** Rows (examples x output positions) each consumer's least squares uses at most. */
export const RECONSTRUCTION_ROWS = 16384;

/**
 * Arithmetic one consumer's least squares may cost, in float64 JavaScript multiply-adds (about 1e9
 * per second here): the Cholesky solve and the error checks, plus the normal equations, which
 * onnxruntime sums about 10x faster. A consumer over it is solved on fewer rows (at least
 * {@link MIN_ROWS_PER_FEATURE} per feature), else repaired by its output statistics.
 */
const LEAST_SQUARES_BUDGET = 2e10;
/** How much faster onnxruntime's float64 MatMul sums the normal equations than a JavaScript loop (7-10x measured here: npm run bench:normal-equations). */
const RUNTIME_SPEEDUP = 10;
const MIN_ROWS_PER_FEATURE = 4;

/**
 * How consumers are repaired: 'auto' (least squares where its cost fits {@link LEAST_SQUARES_BUDGET},
 * statistics elsewhere), 'least-squares' or 'statistics' everywhere (docs/cnn.md, "The choices behind the defaults").
 */
export type ChannelRepairMethod = 'auto' | 'least-squares' | 'statistics';

/** What reconstruction did to one consumer. */
export interface ReconstructionStep {
  group: string;
  consumer: string;
  /** 'statistics': every output channel's mean and variance on the calibration batch matched to the dense model's (BatchNorm re-estimation, folded into the consumer). */
  method: 'least-squares' | 'statistics';
  /** Rows the least squares used. */
  rows?: number;
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

/** Per output channel: y' = scale y + shift makes the current rows' mean and variance the dense rows' (BatchNorm re-estimation folded into the consumer); squared errors before and after. */
export function matchMoments(rows: number, M: number, cur: (r: number, o: number) => number, dense: (r: number, o: number) => number): { scale: Float64Array; shift: Float64Array; before: number; after: number } {
  const s1 = new Float64Array(M), s2 = new Float64Array(M), d1 = new Float64Array(M), d2 = new Float64Array(M);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < M; o++) {
      const c = cur(r, o), d = dense(r, o);
      s1[o] = s1[o]! + c; s2[o] = s2[o]! + c * c; d1[o] = d1[o]! + d; d2[o] = d2[o]! + d * d;
    }
  }
  const scale = new Float64Array(M), shift = new Float64Array(M);
  for (let o = 0; o < M; o++) {
    const mc = s1[o]! / rows, md = d1[o]! / rows;
    const vc = Math.max(0, s2[o]! / rows - mc * mc), vd = Math.max(0, d2[o]! / rows - md * md);
    scale[o] = vc > 1e-12 * Math.max(vd, 1e-30) ? Math.sqrt(vd / vc) : 1;
    shift[o] = md - scale[o]! * mc;
  }
  let before = 0, after = 0;
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < M; o++) {
      const c = cur(r, o), d = dense(r, o);
      before += (c - d) ** 2;
      after += (scale[o]! * c + shift[o]! - d) ** 2;
    }
  }
  return { scale, shift, before, after };
}

/** Rows the least squares of a consumer can afford under {@link LEAST_SQUARES_BUDGET} (0: none). */
export function affordableRows(rows: number, features: number, outputs: number): number {
  const F = features + 1;
  const all = Math.min(rows, RECONSTRUCTION_ROWS);
  // Fewer rows than features: the dual solve (an n x n system; leastSquares.ts), no normal equations.
  if (all < F) return all * all * F + 3 * all * F * outputs <= LEAST_SQUARES_BUDGET ? all : 0;
  const perRow = ((F * F) / 2 + F * outputs) / RUNTIME_SPEEDUP;
  const n = Math.min(rows, RECONSTRUCTION_ROWS, Math.floor((LEAST_SQUARES_BUDGET - F ** 3 / 3 - 2 * outputs * F * F) / perRow));
  return n >= Math.min(rows, MIN_ROWS_PER_FEATURE * F) ? n : 0;
}

/**
 * Repair for channel groups, without training. Group by group in graph order, with the earlier
 * groups already cut and repaired, every consumer of the group is repaired toward the dense
 * model's output on the calibration batch, by one of two methods:
 * - least squares (Kwon et al. 2022's layer-wise reconstruction, here over whole consumer weights as
 *   in He et al. 2017's channel pruning): its weights over the kept channels and its bias are
 *   refitted, ridge-regularised toward the original weights, on at most {@link RECONSTRUCTION_ROWS}
 *   sampled rows; a refit that does not lower the error is rejected;
 * - statistics: every output channel's mean and variance matched to the dense output's, as
 *   re-estimating the BatchNorm after the consumer does on a folded graph (a scale of the channel's
 *   weights and a new bias).
 * 'auto' uses least squares where it fits {@link LEAST_SQUARES_BUDGET}, statistics elsewhere.
 * Consumers reading a Concat of several groups are left as cut. Returns the updated consumers (full original shapes).
 */
export async function reconstructConsumers(model: OnnxModel, cs: ChannelStructure, keep: number[][], batch: CalibrationBatch, signal?: AbortSignal, method: ChannelRepairMethod = 'auto'): Promise<{ updates: ConsumerUpdates; steps: ReconstructionStep[] }> {
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
    for (const c of sharedOf(l)) steps.push({ group: grp.name, consumer: c, method: 'least-squares', before: 0, after: 0, rejected: 'it also reads channels concatenated from other groups; left as cut' });
    if (!consumers.length) continue;
    const current = withConsumerUpdates(model, updates);
    const inputs = consumers.map((n) => n.input[grp.masks.find((m) => m.node === (n.name || n.output[0]))!.input]!);
    const masked = cs.groups.map((_, i) => i).filter((i) => i <= l);
    const s = await sessionFor(current, instrumentChannels(current, cs, masked, [...inputs, ...consumers.map((n) => n.output[0]!)]), `${model.path} (reconstruction, group ${grp.name})`);
    let got: Record<string, ort.Tensor>;
    try {
      got = await runSession(s.session, { ...toOrt(batch.feeds), ...channelMaskFeeds(cs, keep, batch.batch, masked) }, `${model.path} (reconstruction)`);
    } finally {
      await s.session.release();
    }
    for (const [ci, n] of consumers.entries()) {
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
      /** Flat index of (input channel c, kernel position k, output o) in the weight. */
      const at = (c: number, k: number, o: number): number => (conv ? (o * wDims[1]! + c) * ksz + k : transB ? o * wDims[1]! + c : c * wDims[1]! + o);
      const W = Float32Array.from(W0);
      let bias = b0 ? Float64Array.from(b0) : new Float64Array(M);
      const affordable = affordableRows(layout.rows, layout.features, M);
      const leastSquares = method === 'least-squares' || (method === 'auto' && affordable > 0);
      const statistics = hasBias && !leastSquares;
      if (!leastSquares && !statistics) {
        steps.push({ group: grp.name, consumer: name, method: 'least-squares', before: 0, after: 0, rejected: `${layout.features} features are too many for least squares here, and a MatMul has no bias to re-estimate; left as cut` });
        continue;
      }
      const fanIn = conv || transB ? wDims[1]! : wDims[0]!;
      let changed = statistics;
      if (leastSquares) {
        const rows = sampleIndices(layout.rows, method === 'auto' ? affordable : RECONSTRUCTION_ROWS, 17 + l);
        const fit = await fitRows({
          rows: rows.length, features: layout.features, outputs: M, bias: hasBias,
          row: (r, out) => layout.row(rows[r]!, out), y: (r, o) => y.data[rows[r]! * M + o]!,
          w0: (f, o) => W0[at(kept[Math.floor(f / ksz)]!, f % ksz, o)]!, b0: (o) => b0?.[o] ?? 0,
        }, normalEquationsOnRuntime);
        steps.push({ group: grp.name, consumer: name, method: 'least-squares', rows: rows.length, before: fit.before, after: fit.after, ...(fit.rejected ? { rejected: fit.rejected } : {}) });
        if (!fit.rejected) {
          changed = true;
          const X = fit.weights;
          for (let f = 0; f < layout.features; f++) {
            for (let o = 0; o < M; o++) W[at(kept[Math.floor(f / ksz)]!, f % ksz, o)] = X[f * M + o]!;
          }
          if (fit.bias) bias = Float64Array.from(fit.bias);
        }
      }
      if (statistics) {
        const cur = outRows(got[n.output[0]!]!, conv);
        const m = matchMoments(cur.data.length / M, M, (r, o) => cur.data[r * M + o]!, (r, o) => y.data[r * M + o]!);
        steps.push({ group: grp.name, consumer: name, method: 'statistics', before: m.before, after: m.after });
        for (let o = 0; o < M; o++) {
          bias[o] = m.scale[o]! * bias[o]! + m.shift[o]!;
          for (let c = 0; c < fanIn; c++) for (let k = 0; k < ksz; k++) W[at(c, k, o)] = m.scale[o]! * W[at(c, k, o)]!;
        }
      }
      if (changed) updates[name] = { weight: W, ...(hasBias ? { bias: Array.from(bias) } : {}) };
    }
  }
  return { updates, steps };
}
