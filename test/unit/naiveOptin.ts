import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { decodeModel, type OnnxModel } from '../../src/engine/onnx/model';
import { serializeModel } from '../../src/engine/onnx/writer';
import { ValueInfoProtoSchema, type TensorProto } from '../../src/engine/onnx/schema';
import type { CalibrationBatch } from '../../src/engine/data/calibration';
import type { ModelStructure } from '../../src/engine/structure/types';
import { weightOf, zeroInputs, type EditableWeight } from './weightEdits';

/**
 * The paper's method written plainly, sharing nothing with the scorer's masking: an element is
 * removed by editing the weights of a copy of the model (a head: its rows of the output projection;
 * a neuron: its row of the second FFN matrix), the whole model runs once per element, and the Gram
 * matrices and the KL are computed in double precision here. The structure is used only to name the
 * weights and the feature values.
 */

/** One element's raw terms and the magnitudes its float32 error bound is computed from. */
export interface NaiveElement {
  md: number;
  kl: number;
  /** Sum over compared layers and row pairs of |G_T - G_S| (the Gram differences that enter md). */
  gramAbs: number;
  /** Sum over compared layers of ||G_T - G_S||_F (root of each layer's md term). */
  gramNorm: number;
  /** Sum over logit rows of ||p_T - p_S||_1 and of sum_j p_T,j |log p_T,j - log p_S,j|: the KL's first-order sensitivity to the logits. */
  klSensitivity: number;
}

/** Reference raw terms for every head and neuron, plus what the tolerances need. */
export interface NaiveResult {
  heads: NaiveElement[][];
  neurons: NaiveElement[][];
  /** Sampled rows (all real tokens: the fixtures are chosen to have fewer than the token sample). */
  rows: number;
  /** Largest |logit| of the teacher. */
  logitScale: number;
}

/** A copy of the model whose edited weights are graph inputs and whose features are outputs. */
function referenceModel(model: OnnxModel, weights: EditableWeight[], outputs: string[]): Uint8Array {
  const copy = decodeModel(serializeModel(model), model.path);
  const g = copy.proto.graph!;
  const names = new Set(weights.map((w) => w.name));
  g.initializer = g.initializer.filter((t: TensorProto) => !names.has(t.name));
  for (const w of weights) {
    g.input.push(create(ValueInfoProtoSchema, {
      name: w.name,
      type: { value: { case: 'tensorType', value: { elemType: 1, shape: { dim: w.dims.map((d) => ({ value: { case: 'dimValue' as const, value: BigInt(d) } })) } } } },
    }));
  }
  for (const o of outputs) {
    if (!g.output.some((v) => v.name === o)) g.output.push(create(ValueInfoProtoSchema, { name: o, type: { value: { case: 'tensorType', value: { elemType: 1 } } } }));
  }
  return serializeModel(copy);
}

function unitRows(f: Float32Array, rows: number[], D: number): Float64Array[] {
  return rows.map((r) => {
    let s = 0;
    for (let j = 0; j < D; j++) s += f[r * D + j]! ** 2;
    const n = Math.sqrt(s);
    return Float64Array.from({ length: D }, (_, j) => (n > 0 ? f[r * D + j]! / n : 0));
  });
}

function gram(u: Float64Array[]): Float64Array {
  const K = u.length;
  const D = u[0]!.length;
  const g = new Float64Array(K * K);
  for (let a = 0; a < K; a++) {
    for (let b = a; b < K; b++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += u[a]![j]! * u[b]![j]!;
      g[a * K + b] = s;
      g[b * K + a] = s;
    }
  }
  return g;
}

function logSoftmax(z: Float32Array, r: number, C: number): Float64Array {
  let mx = -Infinity;
  for (let j = 0; j < C; j++) mx = Math.max(mx, z[r * C + j]!);
  let s = 0;
  for (let j = 0; j < C; j++) s += Math.exp(z[r * C + j]! - mx);
  const lse = mx + Math.log(s);
  return Float64Array.from({ length: C }, (_, j) => z[r * C + j]! - lse);
}

/**
 * Raw OPTIN terms (docs/method.md §2) of every head and neuron by full-model runs of weight-edited
 * copies: md = sum over later layers k of ||G_T[k] - G_S[k]||_F^2 (Gram of unit-normalised real-token
 * features), kl = T^2 KL(softmax(z_T) || softmax(z_S)) summed over the batch (over real tokens for per-token logits).
 */
export async function naiveRawTerms(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, temperature = 4): Promise<NaiveResult> {
  const L = st.layers.length;
  const D = st.hidden;
  const outProj = st.layers.map((l) => weightOf(model, l.attention!.output));
  const down = st.layers.map((l) => (l.ffn ? weightOf(model, l.ffn.down) : undefined));
  const editable = [...outProj, ...down.filter((w): w is EditableWeight => !!w)];
  const features = st.layers.map((l) => l.feature);
  const session = await ort.InferenceSession.create(referenceModel(model, editable, features));
  const rows: number[] = [];
  batch.tokenMask.forEach((m, i) => { if (m) rows.push(i); });
  const run = async (edit?: { name: string; data: Float32Array }) => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(batch.feeds)) feeds[k] = new ort.Tensor(t.type, t.data, t.dims);
    for (const w of editable) feeds[w.name] = new ort.Tensor('float32', edit?.name === w.name ? edit.data : w.data, w.dims);
    const out = await session.run(feeds);
    const z = out[st.outputs[0]!]!;
    return { logits: z.data as Float32Array, classes: z.dims[z.dims.length - 1]!, grams: features.map((f) => gram(unitRows(out[f]!.data as Float32Array, rows, D))) };
  };
  const teacher = await run();
  const C = teacher.classes;
  const logitRows = teacher.logits.length / C;
  const perToken = logitRows === batch.tokenMask.length;
  const teacherLog = Array.from({ length: logitRows }, (_, r) => logSoftmax(teacher.logits, r, C));
  const element = async (l: number, edit: { name: string; data: Float32Array }): Promise<NaiveElement> => {
    const s = await run(edit);
    let md = 0;
    let gramAbs = 0;
    let gramNorm = 0;
    for (const k of l === L - 1 ? [l] : Array.from({ length: L - l - 1 }, (_, i) => l + 1 + i)) {
      let layerMd = 0;
      const gT = teacher.grams[k]!;
      const gS = s.grams[k]!;
      for (let i = 0; i < gT.length; i++) {
        const d = gT[i]! - gS[i]!;
        layerMd += d * d;
        gramAbs += Math.abs(d);
      }
      md += layerMd;
      gramNorm += Math.sqrt(layerMd);
    }
    let kl = 0;
    let klSensitivity = 0;
    for (let r = 0; r < logitRows; r++) {
      // Per-token logits (a language model's): padding positions do not count.
      if (perToken && !batch.tokenMask[r]) continue;
      const lp = teacherLog[r]!;
      const lq = logSoftmax(s.logits, r, C);
      for (let j = 0; j < C; j++) {
        const p = Math.exp(lp[j]!);
        kl += p * (lp[j]! - lq[j]!);
        klSensitivity += Math.abs(p - Math.exp(lq[j]!)) + p * Math.abs(lp[j]! - lq[j]!);
      }
    }
    return { md, kl: temperature ** 2 * kl, gramAbs, gramNorm, klSensitivity: temperature ** 2 * klSensitivity };
  };
  const heads: NaiveElement[][] = [];
  const neurons: NaiveElement[][] = [];
  for (let l = 0; l < L; l++) {
    const a = st.layers[l]!.attention!;
    heads.push([]);
    for (let h = 0; h < a.heads; h++) {
      heads[l]!.push(await element(l, { name: outProj[l]!.name, data: zeroInputs(outProj[l]!, a.output, h * a.vHeadSize, (h + 1) * a.vHeadSize) }));
    }
    neurons.push([]);
    const w = down[l];
    const ffn = st.layers[l]!.ffn;
    if (w && ffn) for (let j = 0; j < ffn.width; j++) neurons[l]!.push(await element(l, { name: w.name, data: zeroInputs(w, ffn.down, j, j + 1) }));
  }
  await session.release();
  let logitScale = 0;
  for (const z of teacher.logits) logitScale = Math.max(logitScale, Math.abs(z));
  return { heads, neurons, rows: rows.length, logitScale };
}

const u = 2 ** -24;
/** Worst-case relative error of a float32 sum of n terms (Higham's gamma_n). */
export const gamma = (n: number): number => (n * u) / (1 - n * u);

/**
 * Bounds of the float32 error of the scorer's raw terms against the double-precision reference,
 * derived from the quantities that enter them:
 * - Each Gram entry of unit-normalised rows is a float32 dot product of D terms whose absolute
 *   values sum to at most 1 (Cauchy-Schwarz), so it is off by at most gamma(D); a difference of two
 *   entries by 2 gamma(D). md = sum (G_T - G_S)^2 then moves by at most 2 e sum|G_T - G_S| + e^2
 *   per entry (e = 2 gamma(D)), and the float32 ReduceSum of its K^2 non-negative terms adds
 *   gamma(K^2) md.
 * - The logits are float32 products over the hidden size: each off by at most gamma(D) max|z|. The KL's
 *   change under logit errors e is at most e (||p - q||_1 + 2 sum p |log p - log q|) per row
 *   (first order in the student's and the teacher's logits).
 */
export function mdBound(e: NaiveElement, D: number, K: number, compared: number): number {
  const entry = 2 * gamma(D);
  return 2 * entry * e.gramAbs + compared * K * K * entry * entry + gamma(K * K) * e.md;
}
export function klBound(e: NaiveElement, D: number, logitScale: number): number {
  return e.klSensitivity * gamma(D) * logitScale;
}
