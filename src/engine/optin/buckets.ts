import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch, TensorData } from '../data/calibration';
import type { EpChoice } from '../runtime/providers';
import { runTeacher, type TeacherRun } from './teacher';

/** Examples of similar length, padded only to the longest of them. */
export interface LengthBucket {
  /** Indices into the calibration batch, ascending. */
  examples: number[];
  /** Tokens per example in this bucket. */
  seqLen: number;
}

/** A bucket with its own batch and its own dense run (the teacher every masked run of it is compared with). */
export interface BucketRun {
  bucket: LengthBucket;
  batch: CalibrationBatch;
  teacher: TeacherRun;
}

/** Buckets with their runs, or why the batch is scored as one padded block. */
export type BucketPlan = { runs: BucketRun[]; padded: number; bucketed: number } | { runs?: undefined; reason: string };

/** Length of each example: its last real token + 1, or undefined when real tokens are not a prefix (left padding). */
function prefixLengths(batch: CalibrationBatch): number[] | undefined {
  const S = batch.seqLen;
  const out: number[] = [];
  for (let e = 0; e < batch.batch; e++) {
    const m = batch.tokenMask.subarray(e * S, (e + 1) * S);
    const n = m.reduce((a, b) => a + b, 0);
    for (let i = 0; i < S; i++) if ((i < n) !== (m[i] === 1)) return undefined;
    out.push(Math.max(1, n));
  }
  return out;
}

/**
 * Split examples into at most `maxBuckets` groups of consecutive lengths so that the padded tokens
 * plus a fixed cost per bucket (`perBucket` tokens: each bucket adds runs) are smallest (exact, by
 * dynamic programming over the sorted lengths).
 */
export function lengthBuckets(lengths: number[], maxBuckets = 4, perBucket = 0): LengthBucket[] {
  const order = lengths.map((n, e) => [n, e] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const N = order.length;
  const best: number[][] = Array.from({ length: maxBuckets + 1 }, () => new Array<number>(N + 1).fill(Infinity));
  const from: number[][] = Array.from({ length: maxBuckets + 1 }, () => new Array<number>(N + 1).fill(0));
  best[0]![0] = 0;
  for (let k = 1; k <= maxBuckets; k++) {
    for (let j = 1; j <= N; j++) {
      for (let i = 0; i < j; i++) {
        const c = best[k - 1]![i]! + (j - i) * order[j - 1]![0] + perBucket;
        if (c < best[k]![j]!) { best[k]![j] = c; from[k]![j] = i; }
      }
    }
  }
  let k = 1;
  for (let q = 2; q <= maxBuckets; q++) if (best[q]![N]! < best[k]![N]!) k = q;
  const out: LengthBucket[] = [];
  for (let j = N; k > 0; k--) {
    const i = from[k]![j]!;
    out.unshift({ examples: order.slice(i, j).map(([, e]) => e).sort((a, b) => a - b), seqLen: order[j - 1]![0] });
    j = i;
  }
  return out;
}

function slice(t: TensorData, examples: number[], S: number, Sb: number): TensorData {
  const data = new (t.data.constructor as { new (n: number): TensorData['data'] })(examples.length * Sb);
  examples.forEach((e, j) => (data as Float32Array).set((t.data as Float32Array).subarray(e * S, e * S + Sb), j * Sb));
  return { type: t.type, dims: [examples.length, Sb], data };
}

/** The calibration batch restricted to a bucket's examples and cut to its length. */
export function bucketBatch(batch: CalibrationBatch, b: LengthBucket): CalibrationBatch {
  const S = batch.seqLen;
  const tokenMask = new Uint8Array(b.examples.length * b.seqLen);
  b.examples.forEach((e, j) => tokenMask.set(batch.tokenMask.subarray(e * S, e * S + b.seqLen), j * b.seqLen));
  const real = tokenMask.reduce((a, x) => a + x, 0);
  return {
    ...batch,
    feeds: Object.fromEntries(Object.entries(batch.feeds).map(([k, t]) => [k, slice(t, b.examples, S, b.seqLen)])),
    batch: b.examples.length, seqLen: b.seqLen, tokenMask, meanLength: real / b.examples.length,
    ...(batch.labels ? { labels: b.examples.map((e) => batch.labels![e]!) } : {}),
  };
}

/**
 * Where each sampled row (an index into batch x seqLen) lands in its bucket: `local[b]` lists bucket
 * b's rows as indices into its own examples x seqLen, in the order they appear in `rows`; `order` is
 * the rows bucket by bucket, the order of the concatenated student rows.
 */
export function bucketRows(rows: number[], S: number, buckets: LengthBucket[]): { local: number[][]; order: number[] } {
  const where = new Map<number, [number, number]>();
  buckets.forEach((b, bi) => b.examples.forEach((e, j) => where.set(e, [bi, j])));
  const local: number[][] = buckets.map(() => []);
  const grouped: number[][] = buckets.map(() => []);
  for (const r of rows) {
    const [bi, j] = where.get(Math.floor(r / S))!;
    local[bi]!.push(j * buckets[bi]!.seqLen + (r % S));
    grouped[bi]!.push(r);
  }
  return { local, order: grouped.flat() };
}

/** Largest |a - b| over the rows where `keep` is 1 (rows of width w), and the largest |a| there. */
function rowDiff(a: Float32Array, b: Float32Array, w: number, keep: (row: number) => number): { diff: number; scale: number } {
  let diff = 0, scale = 0;
  const rows = a.length / w;
  for (let r = 0; r < rows; r++) {
    const rb = keep(r);
    if (rb < 0) continue;
    for (let j = 0; j < w; j++) {
      diff = Math.max(diff, Math.abs(a[r * w + j]! - b[rb * w + j]!));
      scale = Math.max(scale, Math.abs(b[rb * w + j]!));
    }
  }
  return { diff, scale };
}

/**
 * The length buckets a text batch would be scored in (prefix-padded, every feed [batch, tokens], at
 * least 10% of the positions saved), or why it stays one padded block. The bucket cost counts 3% of
 * the padded positions per bucket, at most 32 (each bucket adds runs).
 */
export function splitByLength(batch: CalibrationBatch, maxBuckets = 8): { buckets: LengthBucket[]; padded: number; bucketed: number } | { buckets?: undefined; reason: string } {
  const B = batch.batch, S = batch.seqLen;
  if (batch.kind !== 'text') return { reason: 'not a token batch' };
  if (Object.values(batch.feeds).some((t) => t.dims.length !== 2 || t.dims[0] !== B || t.dims[1] !== S)) return { reason: 'feeds other than [batch, tokens]' };
  const lengths = prefixLengths(batch);
  if (!lengths) return { reason: 'padding is not at the end' };
  const padded = B * S;
  const buckets = lengthBuckets(lengths, maxBuckets, Math.round(Math.min(0.03 * padded, 32)));
  const bucketed = buckets.reduce((a, b) => a + b.examples.length * b.seqLen, 0);
  if (buckets.length < 2 || bucketed > 0.9 * padded) return { reason: 'lengths too even to gain' };
  return { buckets, padded, bucketed };
}

/**
 * Relative difference above which a bucket's dense run is not the padded batch's: float32 sums of a
 * few thousand terms in another order differ by about 1e-6 of their size, while a model whose real
 * tokens see the padding (no attention mask) differs by whole percents.
 */
export const BUCKET_TOLERANCE = 1e-3;

/**
 * Plan length buckets for text scoring: examples grouped by length (prefix-padded token batches whose
 * every feed is [batch, seqLen]), each bucket run densely once and checked against the padded batch's
 * dense run at every real token (every layer's input and feature, and the outputs), so a model whose
 * real tokens depend on the padding, or whose shapes are fixed, is scored padded as before.
 */
export async function planBuckets(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, teacher: TeacherRun, ep: EpChoice, maxBuckets = 8): Promise<BucketPlan> {
  if (st.layers.some((l) => l.shape)) return { reason: 'staged layers' };
  const S = batch.seqLen, D = st.hidden;
  const split = splitByLength(batch, maxBuckets);
  if (!split.buckets) return { reason: split.reason };
  const { buckets, padded, bucketed } = split;
  const runs: BucketRun[] = [];
  for (const bucket of buckets) {
    const bb = bucketBatch(batch, bucket);
    let t: TeacherRun;
    try {
      t = await runTeacher(model, st, bb, ep);
    } catch {
      return { reason: 'the model does not run at other lengths' };
    }
    const Sb = bucket.seqLen;
    const toFull = (r: number): number => {
      const j = Math.floor(r / Sb), p = r % Sb;
      return bb.tokenMask[r] ? bucket.examples[j]! * S + p : -1;
    };
    const close = (a: Float32Array, b: Float32Array, w: number, map: (r: number) => number): boolean => {
      const { diff, scale } = rowDiff(a, b, w, map);
      return diff <= BUCKET_TOLERANCE * Math.max(scale, 1e-6);
    };
    const same = (a: Float32Array, aDims: number[], b: Float32Array, bDims: number[]): boolean => {
      if (aDims.length !== bDims.length) return false;
      if (aDims.length === 2 && aDims[1] === bDims[1] && aDims[0] === bucket.examples.length) return close(a, b, aDims[1]!, (r) => bucket.examples[r]!);
      if (aDims.length === 3 && aDims[1] === Sb && bDims[1] === S && aDims[2] === bDims[2]) return close(a, b, aDims[2]!, toFull);
      return false;
    };
    const ok = same(t.logits, t.logitsDims, teacher.logits, teacher.logitsDims)
      && t.others.length === teacher.others.length
      && t.others.every((o, i) => same(o.data, o.dims, teacher.others[i]!.data, teacher.others[i]!.dims))
      && st.layers.every((_, k) => close(t.features[k]!, teacher.features[k]!, D, toFull) && close(t.layerInputs[k]!, teacher.layerInputs[k]!, D, toFull));
    if (!ok) return { reason: 'real tokens change with the padding' };
    runs.push({ bucket, batch: bb, teacher: t });
  }
  return { runs, padded, bucketed };
}
