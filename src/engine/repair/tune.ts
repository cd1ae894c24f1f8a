import { requireFloatWeights } from '../structure/linear';
import type * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { tensorFloat32, tensorShape } from '../onnx/tensor';
import type { CalibrationBatch } from '../data/calibration';
import type { Linear, ModelStructure } from '../structure/types';
import { instrument } from '../optin/instrument';
import { OptinError } from '../errors';
import type { KeepSet } from '../prune/apply';
import { maskFeeds } from '../verify/verify';
import { residual, ridgeTowardOne, solveRows } from './leastSquares';
import { sessionFor, toOrt } from '../runtime/session';
import { headCount } from '../structure/layer';

/** Options for {@link tuneMasks} (Kwon et al. 2022 mask tuning, docs/method.md §5). */
export interface TuneOptions {
  /** Ridge strength relative to the mean diagonal of the normal matrix (default 1e-3). */
  ridge?: number;
  /** Reject a layer's solution when any |scale| exceeds this (default 10). */
  maxScale?: number;
  signal?: AbortSignal;
}

/** What tuning did to one sublayer. */
export interface TuneStep {
  layer: number;
  part: 'attention' | 'ffn';
  kept: number;
  /** Reconstruction error (sum of squares over real tokens) with all scales 1, and after. */
  before: number;
  after: number;
  /** Why the solution was not used, when it was not. */
  rejected?: string;
}

/** Scales per kept head / neuron, and a record of every sublayer solve. */
export interface TuneResult {
  scales: { heads: number[][]; neurons: number[][] };
  steps: TuneStep[];
}

interface Sub { lin: Linear & { einsum?: boolean }; contrib: string }

function rowsOf(W: Float32Array, dims: number[], transposed: boolean, D: number): (i: number, d: number) => number {
  const inF = transposed ? dims[1]! : W.length / D;
  return transposed ? (i, d) => W[d * inF + i]! : (i, d) => W[i * D + d]!;
}

/**
 * Layer-wise least-squares rescaling of the kept heads and neurons (Kwon et al. 2022): for each
 * sublayer in order, with the earlier layers already pruned and tuned, find one scale per kept
 * element so that the pruned sublayer's output reconstructs what all of its heads (neurons) would
 * output on the same input, over the real calibration tokens, with a ridge toward 1. A solve with
 * any |s| > maxScale, or that does not lower the error, is rejected (scales stay 1).
 */
export async function tuneMasks(model: OnnxModel, st: ModelStructure, keep: KeepSet, batch: CalibrationBatch, opts: TuneOptions = {}): Promise<TuneResult> {
  const ridge = opts.ridge ?? 1e-3, maxScale = opts.maxScale ?? 10;
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const subs = st.layers.map((l) => ({
    attn: l.attention ? ({ lin: l.attention.output, contrib: l.attention.perHead ?? l.attention.context } as Sub) : undefined,
    ffn: l.ffn ? ({ lin: l.ffn.down, contrib: l.ffn.hidden } as Sub) : undefined,
  }));
  const all = subs.flatMap((s) => [...(s.attn ? [s.attn] : []), ...(s.ffn ? [s.ffn] : [])]);
  requireFloatWeights(model.path, all.map((s) => s.lin), 'mask tuning (--tune)');
  const feeds = toOrt(batch.feeds);
  const masked = await sessionFor(model, instrument(model, st, { maskLayers: st.layers.map((l) => l.index), outputs: all.map((s) => s.contrib), onlyOutputs: true }), `${model.path} (masked for tuning)`);
  const scales = { heads: keep.heads.map((h) => h.map(() => 1)), neurons: keep.neurons.map((n) => n.map(() => 1)) };
  const steps: TuneStep[] = [];
  const tokens: number[] = [];
  batch.tokenMask.forEach((m, i) => { if (m) tokens.push(i); });
  try {
    for (const l of st.layers) {
      for (const part of ['attention', 'ffn'] as const) {
        if (opts.signal?.aborted) throw new OptinError('cancelled', 'mask tuning cancelled');
        const sub = part === 'attention' ? subs[l.index]!.attn : subs[l.index]!.ffn;
        if (!sub) continue;
        const kept = part === 'attention' ? keep.heads[l.index]! : keep.neurons[l.index]!;
        if (kept.length === 0) continue;
        const cur = { ...keep, scales };
        // This layer's own heads are read whole (unscaled): with heads folded into the batch axis their mask acts on V, before the context.
        const whole = part === 'attention'
          ? { heads: keep.heads.map((h, i) => (i === l.index ? Array.from({ length: headCount(l) }, (_, j) => j) : h)), scales: { ...scales, heads: scales.heads.map((x, i) => (i === l.index ? [] : x)) } }
          : {};
        const masks = maskFeeds(st, { ...cur, ...whole });
        const { perItem: S, width: D, count } = solveRows(st, l, part, batch);
        const rows = count !== undefined ? Array.from({ length: count }, (_, i) => i) : tokens;
        const out = await masked.session.run({ ...feeds, ...masks }, [sub.contrib]);
        const w = ix.constant(sub.lin.weight)!;
        const W = tensorFloat32(w, model.ext);
        const at = rowsOf(W, tensorShape(w), sub.lin.transposed, D);
        const ctx = out[sub.contrib]!;
        let system: NormalEquations;
        if (part === 'attention') {
          const H = headCount(l);
          const each = perHeadOutputs(ctx, H, l.attention!.vHeadSize, Array.from({ length: H }, (_, h) => h), at, rows, S, D);
          system = headSystem(kept.map((h) => each[h]!), sumOf(each));
        } else {
          const I = l.ffn!.width;
          system = neuronSystem(ctx.data as Float32Array, I, kept, at, neuronOutputs(ctx.data as Float32Array, I, at, rows, D), rows, D);
        }
        const k = kept.length;
        const ones = new Float64Array(k).fill(1);
        const before = residual(system.G, system.c, system.rr, ones, k);
        const s = ridgeTowardOne(system.G, system.c, k, ridge);
        const step: TuneStep = { layer: l.index, part, kept: k, before, after: before };
        if (!s || s.some((x) => !Number.isFinite(x))) step.rejected = 'singular system';
        else if (s.some((x) => Math.abs(x) > maxScale)) step.rejected = `a scale of ${Math.max(...s.map(Math.abs)).toFixed(1)} exceeds ${maxScale}`;
        else {
          const after = residual(system.G, system.c, system.rr, s, k);
          if (!(after < before)) step.rejected = 'no improvement';
          else {
            step.after = after;
            (part === 'attention' ? scales.heads : scales.neurons)[l.index] = Array.from(s);
          }
        }
        steps.push(step);
      }
    }
  } finally {
    await masked.session.release();
  }
  return { scales, steps };
}

interface NormalEquations { G: Float64Array; c: Float64Array; rr: number }

function sumSq(r: Float64Array): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i]! * r[i]!;
  return s;
}

function sumOf(vectors: Float64Array[]): Float64Array {
  const sum = new Float64Array(vectors[0]!.length);
  for (const o of vectors) for (let q = 0; q < sum.length; q++) sum[q] = sum[q]! + o[q]!;
  return sum;
}

/** hidden(t) . W2 over every neuron, per real token. */
function neuronOutputs(hidden: Float32Array, I: number, W: (i: number, d: number) => number, tokens: number[], D: number): Float64Array {
  const out = new Float64Array(tokens.length * D);
  const Wf = new Float64Array(I * D);
  for (let j = 0; j < I; j++) for (let d = 0; d < D; d++) Wf[j * D + d] = W(j, d);
  tokens.forEach((t, i) => {
    for (let j = 0; j < I; j++) {
      const x = hidden[t * I + j]!;
      if (x === 0) continue;
      for (let d = 0; d < D; d++) out[i * D + d] = out[i * D + d]! + x * Wf[j * D + d]!;
    }
  });
  return out;
}

function perHeadOutputs(ctx: ort.Tensor, H: number, dv: number, kept: number[], W: (i: number, d: number) => number, tokens: number[], S: number, D: number): Float64Array[] {
  const n = tokens.length;
  const c4 = ctx.dims.length === 4;
  const data = ctx.data as Float32Array;
  const width = H * dv;
  return kept.map((h) => {
    const o = new Float64Array(n * D);
    const wRows = Array.from({ length: dv }, (_, j) => Float64Array.from({ length: D }, (_, d) => W(h * dv + j, d)));
    tokens.forEach((t, i) => {
      const b = Math.floor(t / S), s = t % S;
      for (let j = 0; j < dv; j++) {
        const x = c4 ? data[((b * H + h) * S + s) * dv + j]! : data[t * width + h * dv + j]!;
        if (x === 0) continue;
        const row = wRows[j]!;
        for (let d = 0; d < D; d++) o[i * D + d] = o[i * D + d]! + x * row[d]!;
      }
    });
    return o;
  });
}

/** Normal equations of sum_e s_e outs[e] ~ r from explicit contribution vectors. */
function headSystem(outs: Float64Array[], r: Float64Array): NormalEquations {
  const k = outs.length;
  const G = new Float64Array(k * k), c = new Float64Array(k);
  for (let a = 0; a < k; a++) {
    const oa = outs[a]!;
    let ca = 0;
    for (let q = 0; q < oa.length; q++) ca += oa[q]! * r[q]!;
    c[a] = ca;
    for (let b = 0; b <= a; b++) {
      const ob = outs[b]!;
      let s = 0;
      for (let q = 0; q < oa.length; q++) s += oa[q]! * ob[q]!;
      G[a * k + b] = G[b * k + a] = s;
    }
  }
  return { G, c, rr: sumSq(r) };
}

function neuronSystem(hidden: Float32Array, I: number, kept: number[], W: (i: number, d: number) => number, r: Float64Array, tokens: number[], D: number): NormalEquations {
  const k = kept.length, n = tokens.length;
  const A = new Float64Array(n * k);
  tokens.forEach((t, i) => kept.forEach((j, q) => { A[i * k + q] = hidden[t * I + j]!; }));
  const Wk = new Float64Array(k * D);
  kept.forEach((j, q) => { for (let d = 0; d < D; d++) Wk[q * D + d] = W(j, d); });
  const AtA = new Float64Array(k * k);
  for (let i = 0; i < n; i++) {
    const base = i * k;
    for (let a = 0; a < k; a++) {
      const x = A[base + a]!;
      if (x === 0) continue;
      const row = a * k;
      for (let b = 0; b <= a; b++) AtA[row + b] = AtA[row + b]! + x * A[base + b]!;
    }
  }
  const G = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    for (let b = 0; b <= a; b++) {
      let ww = 0;
      for (let d = 0; d < D; d++) ww += Wk[a * D + d]! * Wk[b * D + d]!;
      G[a * k + b] = G[b * k + a] = AtA[a * k + b]! * ww;
    }
  }
  const c = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < k; a++) {
      const x = A[i * k + a]!;
      if (x === 0) continue;
      let p = 0;
      for (let d = 0; d < D; d++) p += Wk[a * D + d]! * r[i * D + d]!;
      c[a] = c[a]! + x * p;
    }
  }
  return { G, c, rr: sumSq(r) };
}
