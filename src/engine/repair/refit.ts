import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
import { shallowCopyModel } from '../graph/surgery';
import type { CalibrationBatch } from '../data/calibration';
import type { Linear, ModelStructure } from '../structure/types';
import { instrument } from '../optin/instrument';
import { detectStructure } from '../structure/detect';
import type { MeasuredShapes } from '../groups/shapes';
import { requireFloatWeights } from '../structure/linear';
import { OptinError } from '../errors';
import { sampleIndices } from '../optin/random';
import type { KeepSet } from '../prune/apply';
import { TensorStore } from '../graph/tensors';
import { maskFeeds } from '../verify/verify';
import { fitRows, solveRows } from './leastSquares';
import { sessionFor, toOrt } from '../runtime/session';

/** What the refit did to one sublayer. */
export interface RefitStep {
  layer: number;
  part: 'attention' | 'ffn';
  /** Squared reconstruction error on the sampled real tokens with the weights as they were, and after. */
  before: number;
  after: number;
  rejected?: string;
}

/** Token rows each sublayer's least squares uses at most. */
export const REFIT_ROWS = 8192;

interface Refitted { weight: Float32Array; bias?: Float32Array }

/** A copy of the model with the given projections' weights (and biases) replaced, each under a new name read only by its node. */
function withProjections(model: OnnxModel, lins: Array<{ lin: Linear; fit: Refitted }>): OnnxModel {
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  const store = new TensorStore(ix);
  const put = (nodeName: string, old: string, data: Float32Array, dims: number[]): void => {
    const n = g.node.find((x) => (x.name || x.output[0]) === nodeName);
    if (!n) throw new Error(`no node ${nodeName}`);
    const name = store.write('optin/refit', { data, dims });
    n.input = n.input.map((v) => (v === old ? name : v));
  };
  for (const { lin, fit } of lins) {
    put(lin.node, lin.weight, fit.weight, tensorShape(ix.constant(lin.weight)!));
    if (fit.bias && lin.bias && lin.biasNode) put(lin.biasNode, lin.bias, fit.bias, [fit.bias.length]);
  }
  return { ...model, proto };
}

/**
 * Least-squares refit of the output projection (attention) and the second FFN matrix over the kept
 * heads and neurons, layer by layer, without training: with the earlier sublayers already pruned
 * and refitted, the kept inputs' rows of W_O (W2) and its bias are solved so the pruned sublayer's
 * output reconstructs the dense model's sublayer output on the calibration tokens (real tokens
 * only; at most {@link REFIT_ROWS} sampled), ridge toward the original weights; a solve that does
 * not lower the error is rejected. `shapes` are the model's measured shapes (refitting renames
 * weights only, so they hold for every refitted copy). Returns a copy of the model with the
 * refitted weights, to be cut (and verified against, masked) like the original; the plan's shapes
 * are unchanged.
 */
export async function refitProjections(model: OnnxModel, st: ModelStructure, keep: KeepSet, batch: CalibrationBatch, shapes: MeasuredShapes, signal?: AbortSignal): Promise<{ model: OnnxModel; steps: RefitStep[] }> {
  const subs = st.layers.flatMap((l) => [
    ...(l.attention ? [{ layer: l.index, part: 'attention' as const, lin: l.attention.output as Linear & { einsum?: boolean }, contrib: l.attention.perHead ?? l.attention.context, width: l.attention.heads * l.attention.vHeadSize, unit: l.attention.vHeadSize, kept: keep.heads[l.index]!, perHead: !!l.attention.perHead, heads: l.attention.heads }] : []),
    ...(l.ffn ? [{ layer: l.index, part: 'ffn' as const, lin: l.ffn.down as Linear & { einsum?: boolean }, contrib: l.ffn.hidden, width: l.ffn.width, unit: 1, kept: keep.neurons[l.index]!, perHead: false, heads: 0 }] : []),
  ]);
  requireFloatWeights(model.path, subs.map((s) => s.lin), 'the refit (--refit)');
  const feeds = toOrt(batch.feeds);
  const tokens: number[] = [];
  batch.tokenMask.forEach((m, i) => { if (m) tokens.push(i); });
  const sampled = (n: number): number[] => sampleIndices(n, REFIT_ROWS, 23);
  const rowsAll = sampled(tokens.length).map((i) => tokens[i]!);
  const denseSession = await sessionFor(model, instrument(model, st, { maskLayers: [], outputs: subs.map((s) => s.lin.output), onlyOutputs: true }), `${model.path} (dense sublayers)`);
  let dense: Record<string, ort.Tensor>;
  try {
    dense = await denseSession.session.run(feeds);
  } finally {
    await denseSession.session.release();
  }
  const done: Array<{ lin: Linear; fit: Refitted }> = [];
  const steps: RefitStep[] = [];
  let current = model;
  let cst = st;
  for (const sub of subs) {
    if (signal?.aborted) throw new OptinError('cancelled', 'refit cancelled; nothing was written');
    if (!sub.kept.length || sub.kept.length * sub.unit === sub.width) continue;
    if (sub.lin.einsum) { steps.push({ layer: sub.layer, part: sub.part, before: 0, after: 0, rejected: 'einsum output projection' }); continue; }
    const s = await sessionFor(current, instrument(current, cst, { maskLayers: cst.layers.map((l) => l.index), outputs: [sub.contrib], onlyOutputs: true }), `${model.path} (refit, layer ${sub.layer} ${sub.part})`);
    let x: ort.Tensor;
    try {
      x = (await s.session.run({ ...feeds, ...maskFeeds(cst, keep) }))[sub.contrib]!;
    } finally {
      await s.session.release();
    }
    const { perItem: S, width: D, count } = solveRows(st, st.layers[sub.layer]!, sub.part, batch);
    const rows = count !== undefined ? sampled(count) : rowsAll;
    const cols = sub.kept.flatMap((e) => Array.from({ length: sub.unit }, (_, j) => e * sub.unit + j));
    const xd = x.data as Float32Array;
    const H = sub.heads, dv = sub.unit;
    const feature = (t: number, c: number): number => {
      if (!sub.perHead) return xd[t * sub.width + c]!;
      const b = Math.floor(t / S), p = t % S, h = Math.floor(c / dv);
      return xd[((b * H + h) * S + p) * dv + (c % dv)]!;
    };
    const y = dense[sub.lin.output]!.data as Float32Array;
    const cix = new GraphIndex(current.proto.graph!, current.ext);
    const wT = cix.constant(sub.lin.weight)!;
    const W = tensorFloat32(wT, current.ext);
    // The target (the Linear's output value) includes the bias only when an Add or the Gemm adds it; a fused consumer adds it later.
    const biasNode = sub.lin.biasNode ? current.proto.graph!.node.find((n) => (n.name || n.output[0]) === sub.lin.biasNode) : undefined;
    const inTarget = biasNode?.opType === 'Add' || biasNode?.opType === 'Gemm';
    const biasT = sub.lin.bias && inTarget ? cix.constant(sub.lin.bias) : undefined;
    const b0 = biasT ? tensorFloat32(biasT, current.ext) : undefined;
    const inF = sub.lin.inFeatures;
    const w0 = (c: number, d: number): number => (sub.lin.transposed ? W[d * inF + c]! : W[c * D + d]!);
    const fit = await fitRows({
      rows: rows.length, features: cols.length, outputs: D, bias: !!b0,
      row: (r, out) => { cols.forEach((c, f) => { out[f] = feature(rows[r]!, c); }); }, y: (r, d) => y[rows[r]! * D + d]!,
      w0: (f, d) => w0(cols[f]!, d), b0: (d) => b0?.[d] ?? 0,
    });
    const step: RefitStep = { layer: sub.layer, part: sub.part, before: fit.before, after: fit.after, ...(fit.rejected ? { rejected: fit.rejected } : {}) };
    steps.push(step);
    if (fit.rejected) continue;
    const Wn = Float32Array.from(W);
    cols.forEach((c, f) => { for (let d = 0; d < D; d++) Wn[sub.lin.transposed ? d * inF + c : c * D + d] = fit.weights[f * D + d]!; });
    done.push({ lin: sub.lin, fit: { weight: Wn, ...(b0 && fit.bias ? { bias: Float32Array.from(fit.bias) } : {}) } });
    current = withProjections(model, done);
    cst = await detectStructure(current, { shapes });
  }
  return { model: current, steps };
}
