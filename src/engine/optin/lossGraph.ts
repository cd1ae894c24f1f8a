import { create } from '@bufbuild/protobuf';
import { GraphBuilder, modelBytes } from '../graph/builder';
import { DataType, GraphProtoSchema } from '../onnx/schema';
import type { PixelSample } from './pixels';

/** Teacher-side constants of the loss subgraph. */
export interface LossConstants {
  /** Sampled real-token rows (indices into batch*seq). */
  rows: number[];
  /** Tokens per example in the batch (seq length after padding). */
  tokensPerVariant: number;
  hidden: number;
  /** Teacher features of the sampled rows per layer: raw [K, D], unit-normalised [K, D], norms [K]. */
  teacherRows: Map<number, TeacherRows>;
  /** Logit rows per example and classes. */
  logitRows: number;
  classes: number;
  /** softmax(teacher logits) and its log, [logitRows, classes]; or raw logits for regression. */
  teacherProbs: Float32Array;
  teacherLogProbs: Float32Array;
  /** The same in double precision, for the KL computed in JavaScript. */
  teacherProbs64: Float64Array;
  teacherLogProbs64: Float64Array;
  /**
   * The output term's form: KL of softmaxes (class or per-token logits), squared error (a single
   * regression value), or the squared distance of L2-normalised rows = 2 - 2 cos (embeddings and
   * hidden states, where a softmax over features means nothing).
   */
  kind: 'kl' | 'squared-error' | 'cosine';
  /** Dense outputs: the pixels the output term compares (the logits graph output is gathered there). */
  pixels?: PixelSample;
  /** Further outputs (several heads: QA start and end): their own constants; the output term is the sum over all outputs. */
  others?: Array<{ name: string; constants: LossConstants }>;
  /** Per output row: 1 = counted, 0 = padding (per-token outputs count real tokens only); absent = all rows. */
  rowWeights?: Uint8Array;
  /** Staged models (Swin): each layer's own sampled rows, positions per example and width, in place of `rows`, `tokensPerVariant` and `hidden`. */
  layerRows?: Map<number, { rows: number[]; tokens: number; hidden: number }>;
}

/**
 * Append the manifold-distillation loss to a scoring graph so onnxruntime computes it per variant:
 * md[v] = sum_k ||G_T[k] - G_S[k]||^2 over the compared layers.
 * The Gram difference is formed as F_T D^T + D F_T^T + D D^T with D = F_S - F_T, which keeps
 * float32 accuracy for the tiny differences single elements cause.
 */
export function appendManifoldLoss(b: GraphBuilder, features: Map<number, string>, c: LossConstants, batch: number): string {
  const shared = c.layerRows ? '' : b.ints(c.rows, [c.rows.length], 'rows');
  let md: string | undefined;
  for (const [k, value] of features) {
    const own = c.layerRows?.get(k);
    const K = own ? own.rows.length : c.rows.length;
    const idx = own ? b.ints(own.rows, [K], 'rows') : shared;
    const f3 = b.reshape(value, [-1, batch * (own?.tokens ?? c.tokensPerVariant), own?.hidden ?? c.hidden], 'feat');
    const g = b.node('Gather', [f3, idx], { axis: 1 }, 'rows');
    const term = gramTerm(b, g, K, c.teacherRows.get(k)!, `${k}`);
    md = md ? b.node('Add', [md, term], {}, 'md') : term;
  }
  if (!md) throw new Error('no layer to compare');
  return md;
}

/** Teacher rows of one compared feature: raw [K, D], unit-normalised [K, D], norms [K]. */
export interface TeacherRows { raw: Float32Array; normalised: Float32Array; norms: Float32Array }

/**
 * ||G_T - G_S||^2 per variant for sampled student rows `g` [V, K, D]: the Gram difference is formed
 * as F_T D^T + D F_T^T + D D^T with D the difference of unit-normalised rows, which keeps float32
 * accuracy for the tiny differences single elements cause.
 */
export function gramTerm(b: GraphBuilder, g: string, K: number, t: TeacherRows, tag: string): string {
  const D = t.raw.length / K;
  const ft = b.floats(t.raw, [1, K, D], `teacher${tag}`);
  const fnT = b.floats(t.normalised, [1, K, D], `teacherNorm${tag}`);
  const nT = b.floats(t.norms, [1, K, 1], `teacherNorms${tag}`);
  // delta = F_S/|F_S| - F_T/|F_T| from d = F_S - F_T, so tiny differences keep their precision.
  const d = b.node('Sub', [g, ft], {}, 'd');
  const nS = b.node('Sqrt', [b.reduceSum(b.node('Mul', [g, g]), [2], 1, 'ns2')], {}, 'ns');
  const q = b.reduceSum(b.node('Mul', [d, b.node('Add', [b.node('Add', [ft, ft]), d])]), [2], 1, 'q');
  const dn = b.node('Div', [q, b.node('Add', [nT, nS])], {}, 'dnorm');
  const corr = b.node('Mul', [fnT, b.node('Div', [dn, nS])], {}, 'corr');
  // A student row that is exactly zero (the only live head masked, its bias fused elsewhere) normalises
  // to zero, as torch's F.normalize does: its delta is -F_T/|F_T| (the formula above divides by 0 there).
  const live = b.node('Greater', [nS, b.floats(new Float32Array(1), [1], 'zero')], {}, 'live');
  const delta = b.node('Where', [live, b.node('Sub', [b.node('Div', [d, nS]), corr]), b.node('Neg', [fnT])], {}, 'delta');
  const deltaT = b.node('Transpose', [delta], { perm: [0, 2, 1] });
  const a = b.node('MatMul', [fnT, deltaT], {}, 'cross');
  const aT = b.node('Transpose', [a], { perm: [0, 2, 1] });
  const dd = b.node('MatMul', [delta, deltaT], {}, 'dd');
  const diff = b.node('Add', [b.node('Add', [a, aT]), dd], {}, 'gdiff');
  return b.reduceSum(b.node('Mul', [diff, diff]), [1, 2], 0, `md${tag}`);
}

/**
 * Output loss of each variant in double precision: T^2 * sum KL(softmax(z_T) || softmax(z_S)) over
 * the batch (logits are not divided by T, as in the reference), or the squared error for a single
 * output. `student` holds `variants` stacked copies of the teacher's logit layout.
 */
export function outputLoss(student: Float32Array, variants: number, c: LossConstants, temperature: number): number[] {
  const per = c.logitRows * c.classes;
  const out: number[] = [];
  for (let v = 0; v < variants; v++) {
    let s = 0;
    for (let r = 0; r < c.logitRows; r++) {
      if (c.rowWeights && !c.rowWeights[r]) continue;
      const o = v * per + r * c.classes;
      if (c.kind === 'squared-error') {
        for (let j = 0; j < c.classes; j++) s += (student[o + j]! - c.teacherProbs[r * c.classes + j]!) ** 2;
        continue;
      }
      if (c.kind === 'cosine') {
        let n = 0;
        for (let j = 0; j < c.classes; j++) n += student[o + j]! ** 2;
        const inv = 1 / Math.max(Math.sqrt(n), 1e-12);
        for (let j = 0; j < c.classes; j++) s += (student[o + j]! * inv - c.teacherProbs64[r * c.classes + j]!) ** 2;
        continue;
      }
      let mx = -Infinity;
      for (let j = 0; j < c.classes; j++) mx = Math.max(mx, student[o + j]!);
      let sum = 0;
      for (let j = 0; j < c.classes; j++) sum += Math.exp(student[o + j]! - mx);
      const lse = mx + Math.log(sum);
      for (let j = 0; j < c.classes; j++) {
        const t = r * c.classes + j;
        s += c.teacherProbs64[t]! * (c.teacherLogProbs64[t]! - (student[o + j]! - lse));
      }
    }
    // KL is non-negative; values a hair below 0 are double rounding when nothing changed.
    out.push(Math.max(0, c.kind === 'kl' ? temperature ** 2 * s : s));
  }
  return out;
}

/** Inputs of a suffix graph that returns sampled feature rows (length buckets): the rows and the [variants, rows per variant, hidden] shape to take them from. */
export const ROWS_INPUT = 'optin_rows';
export const ROWS_SHAPE_INPUT = 'optin_rows_shape';
/** Input of the manifold graph for the sampled rows of compared layer k. */
export const rowsOutputName = (k: number): string => `optin_rows_of_${k}`;

/**
 * Expose the sampled rows of each compared feature as an output [V, K, D] (rows and shape fed per
 * run, so one session serves every length bucket); the Gram term is formed afterwards over the rows
 * of all buckets together ({@link manifoldModel}).
 */
export function appendRowOutputs(b: GraphBuilder, features: Map<number, string>): Map<number, string> {
  b.input(ROWS_INPUT, ['k'], DataType.INT64);
  b.input(ROWS_SHAPE_INPUT, [3], DataType.INT64);
  return new Map([...features].map(([k, value]) => {
    const out = b.node('Gather', [b.node('Reshape', [value, ROWS_SHAPE_INPUT], {}, 'feat'), ROWS_INPUT], { axis: 1 }, 'rows');
    b.output(out);
    return [k, out];
  }));
}

/**
 * A standalone graph md[V] = sum_k ||G_T[k] - G_S[k]||^2 from student rows [V, K, D] per compared
 * layer (inputs named by {@link rowsOutputName}: k), with the teacher's rows in the same order.
 */
export function manifoldModel(teacher: Map<number, TeacherRows>): { bytes: Uint8Array; output: string } {
  const graph = create(GraphProtoSchema, { name: 'optin-manifold' });
  const b = new GraphBuilder(graph, 17);
  let md: string | undefined;
  for (const [k, t] of teacher) {
    const K = t.norms.length;
    const g = b.input(rowsOutputName(k), ['v', K, t.raw.length / Math.max(K, 1)]);
    const term = gramTerm(b, g, K, t, `${k}`);
    md = md ? b.node('Add', [md, term], {}, 'md') : term;
  }
  if (!md) throw new Error('no layer to compare');
  b.output(md);
  return { bytes: modelBytes(graph, 'optin-manifold'), output: md };
}

/** Teacher rows of several parts (buckets) one after the other. */
export function concatRows(parts: TeacherRows[]): TeacherRows {
  const cat = (pick: (t: TeacherRows) => Float32Array): Float32Array => {
    const out = new Float32Array(parts.reduce((a, t) => a + pick(t).length, 0));
    let o = 0;
    for (const t of parts) { out.set(pick(t), o); o += pick(t).length; }
    return out;
  };
  return { raw: cat((t) => t.raw), normalised: cat((t) => t.normalised), norms: cat((t) => t.norms) };
}
