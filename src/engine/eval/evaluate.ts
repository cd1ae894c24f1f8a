import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel, type OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import { describeInterface } from '../structure/detect';
import { loadCalibration, withOwnCache, type CalibrationBatch, type DataOptions } from '../data/calibration';
import { chunks, fixedBatch } from '../data/batches';
import { createSession, runSession, toOrt } from '../runtime/session';
import type { EpChoice } from '../runtime/providers';
import { OptinError } from '../errors';
import { firstOutputRank, predictPixels, segmentationMetrics } from './segmentation';
import { nextTokenAgreement, nextTokenQuality } from './language';

/** Accuracy of a classifier on labelled data, and agreement with a reference model. */
export interface EvalReport {
  model: string;
  data: string;
  examples: number;
  /** Undefined when the data has no labels (then only the agreement with the reference is known). */
  accuracy?: number;
  reference?: { model: string; accuracy?: number; agreement: number; cosine?: number; segmentation?: { miou: number; pixelAccuracy: number }; language?: LanguageQuality };
  /** Causal language models: next-token perplexity on the real tokens of the text (`reference.agreement` is then per predicted token). */
  language?: LanguageQuality;
  /** Segmentation models (per-pixel logits): mIoU and pixel accuracy on the label maps; `examples` counts images, `agreement` is per pixel. */
  segmentation?: { miou: number; pixelAccuracy: number; pixels: number };
  /** 'embedding' when the first output is a vector of the hidden size (no logits): then `reference.cosine` is the measure. */
  output?: 'logits' | 'embedding';
  seconds: number;
}

/** Next-token quality of a language model: perplexity, bits per token, predicted tokens. */
export interface LanguageQuality {
  perplexity: number;
  bitsPerToken: number;
  tokens: number;
}

/** Options for {@link evaluate}. */
export interface EvalOptions {
  data: DataOptions & { data: string };
  reference?: string;
  /** Examples per onnxruntime run (default 64). */
  batchSize?: number;
  ep?: EpChoice;
  signal?: AbortSignal;
}

/** Row-wise argmax of [rows, classes] logits. */
export function argmaxRows(logits: Float32Array, rows: number, classes: number): number[] {
  return Array.from({ length: rows }, (_, i) => {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j]! > logits[i * classes + best]!) best = j;
    return best;
  });
}

/** Predicted class (argmax of the first output) of every example. */
export async function predict(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, batchSize: number, ep: EpChoice = 'cpu', signal?: AbortSignal, raw?: Float32Array[]): Promise<number[]> {
  const s = await createSession(model.path, { ep, label: model.path });
  const out: number[] = [];
  try {
    const size = fixedBatch(st) ?? batchSize;
    if (batch.batch % size !== 0 && fixedBatch(st)) throw new OptinError('data', `${model.path} takes batches of exactly ${size}; ${batch.batch} examples do not split evenly`);
    for (const c of chunks(batch.feeds, batch.batch, size)) {
      if (signal?.aborted) throw new OptinError('cancelled', 'evaluation cancelled');
      const r = await runSession(s.session, toOrt(c.feeds), model.path);
      const y = r[st.outputs[0]!] as ort.Tensor;
      const perToken = y.dims.length === 3 && (!batch.labels || y.dims[2] === st.hidden);
      if (y.dims.length !== 2 && !perToken) throw new OptinError('unsupported', `${model.path}: first output "${st.outputs[0]}" has shape [${y.dims}]; evaluation with labels needs class logits [batch, classes] (per-token accuracy is not supported yet)`);
      const rows = perToken ? y.dims[0]! * y.dims[1]! : y.dims[0]!;
      out.push(...argmaxRows(y.data as Float32Array, rows, y.dims[y.dims.length - 1]!));
      raw?.push(Float32Array.from(y.data as Float32Array));
    }
  } finally {
    await s.session.release();
  }
  return out;
}

/**
 * Data is read as the model was trained: images with `--preprocessor`, else the
 * preprocessor_config.json beside the model, else beside the reference; text with `--tokenizer`,
 * else the tokenizer beside the model, else beside the reference (a pruned copy written elsewhere
 * evaluates with its original's files). An image folder with no preprocessor config is refused
 * rather than read with guessed values.
 */
function withModelFiles(modelPath: string, st: ModelStructure, opts: EvalOptions): DataOptions {
  const d = opts.data;
  const dirs = [modelPath, ...(opts.reference ? [opts.reference] : [])].map((m) => path.dirname(path.resolve(m)));
  if (st.modality === 'text') {
    const dir = d.tokenizer ? undefined : dirs.find((x) => fs.existsSync(path.join(x, 'tokenizer.json')));
    return dir && dir !== dirs[0] ? { ...d, tokenizer: dir } : d;
  }
  if (d.preprocessor || st.modality !== 'vision' || !d.data || !fs.statSync(d.data, { throwIfNoEntry: false })?.isDirectory()) return d;
  const found = dirs.map((x) => path.join(x, 'preprocessor_config.json')).find((f) => fs.existsSync(f));
  if (found) return { ...d, preprocessor: found };
  throw new OptinError('data', `no preprocessor_config.json beside ${modelPath}${opts.reference ? ` or its reference ${opts.reference}` : ''}: images are resized and normalised as the model was trained (size, mean, std); pass --preprocessor FILE or put the file next to the model (a pruned copy written elsewhere: --reference ORIGINAL.onnx reads the original's)`);
}

/**
 * Accuracy of `modelPath` on labelled data (text .tsv/.csv/.jsonl with a label column, or an
 * ImageFolder), and, with a reference model, the reference's accuracy and how often the two agree.
 * Unlabelled data is accepted with a reference: only the agreement is reported.
 * @throws OptinError('data') when the data has no labels and there is no reference, or is an image
 * folder with no preprocessor config beside the model, its reference or given
 */
export async function evaluate(modelPath: string, opts: EvalOptions): Promise<EvalReport> {
  const t0 = performance.now();
  const model = loadModel(modelPath);
  const st = describeInterface(model);
  const batch = await loadCalibration(model.path, st, { samples: Number.MAX_SAFE_INTEGER, ...withModelFiles(model.path, st, opts) });
  if (firstOutputRank(model) === 4 || batch.labelMaps) return evaluateSegmentation(model, st.outputs[0]!, batch, opts, t0);
  if (st.causal && firstOutputRank(model) === 3) return evaluateLanguage(model, st, batch, opts, t0);
  if (!batch.labels && !opts.reference) throw new OptinError('data', `${opts.data.data} has no labels; evaluation needs a label column (text) or one folder per class (images)`);
  const size = opts.batchSize ?? 64;
  const rows: Float32Array[] = [];
  const pred = await predict(model, st, batch, size, opts.ep, opts.signal, rows);
  // Hidden-state outputs give one row per token: labels (one per example) do not apply, the cosine to the reference does.
  const labels = batch.labels?.length === pred.length ? batch.labels : undefined;
  if (!labels && !opts.reference) throw new OptinError('data', `${model.path}: its output has one row per token; evaluation needs --reference (cosine similarity to the original's outputs)`);
  const acc = (p: number[]): number | undefined => (labels ? p.reduce((a, x, i) => a + (x === labels[i] ? 1 : 0), 0) / p.length : undefined);
  const report: EvalReport = { model: model.path, data: opts.data.data, examples: batch.batch, ...(labels ? { accuracy: acc(pred)! } : {}), seconds: 0 };
  if (opts.reference) {
    const refModel = loadModel(opts.reference);
    const refSt = describeInterface(refModel);
    const refRows: Float32Array[] = [];
    const ref = await predict(refModel, refSt, batch, size, opts.ep, opts.signal, refRows);
    report.reference = { model: opts.reference, ...(labels ? { accuracy: acc(ref)! } : {}), agreement: ref.reduce((a, x, i) => a + (x === pred[i] ? 1 : 0), 0) / ref.length };
    const a = concat(rows), b = concat(refRows), width = a.length / pred.length;
    if (refSt.hidden > 0 && width === refSt.hidden && b.length === a.length) {
      report.output = 'embedding';
      report.reference.cosine = meanCosine(a, b, width);
    }
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

async function evaluateLanguage(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, opts: EvalOptions, t0: number): Promise<EvalReport> {
  const size = opts.batchSize ?? 32;
  const q = await nextTokenQuality(model, st, batch, size, opts.ep, opts.signal);
  const quality = (x: typeof q): LanguageQuality => ({ perplexity: x.perplexity, bitsPerToken: x.bitsPerToken, tokens: x.tokens });
  const report: EvalReport = { model: model.path, data: opts.data.data, examples: batch.batch, language: quality(q), seconds: 0 };
  if (opts.reference) {
    const refModel = loadModel(opts.reference);
    const refSt = describeInterface(refModel);
    const r = await nextTokenQuality(refModel, refSt, withOwnCache(batch, refSt.inputs), size, opts.ep, opts.signal);
    report.reference = { model: opts.reference, agreement: nextTokenAgreement(q.predicted, r.predicted), language: quality(r) };
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

async function evaluateSegmentation(model: OnnxModel, output: string, batch: CalibrationBatch, opts: EvalOptions, t0: number): Promise<EvalReport> {
  if (!batch.labelMaps && !opts.reference) throw new OptinError('data', `${opts.data.data} has no label maps; segmentation evaluation needs images/ and labels/ folders (labels/NAME.png: class index per pixel, 255 = ignore)`);
  const size = opts.batchSize ?? 16;
  const pred = await predictPixels(model, output, batch, size, opts.ep, opts.signal);
  const report: EvalReport = { model: model.path, data: opts.data.data, examples: batch.batch, seconds: 0 };
  if (batch.labelMaps) {
    const m = segmentationMetrics(pred, batch.labelMaps);
    report.segmentation = { miou: m.miou, pixelAccuracy: m.pixelAccuracy, pixels: m.pixels };
    report.accuracy = m.pixelAccuracy;
  }
  if (opts.reference) {
    const refModel = loadModel(opts.reference);
    const ref = await predictPixels(refModel, describeInterface(refModel).outputs[0]!, batch, size, opts.ep, opts.signal);
    const agree = segmentationMetrics(pred, ref);
    report.reference = { model: opts.reference, agreement: agree.pixelAccuracy };
    if (batch.labelMaps) {
      const m = segmentationMetrics(ref, batch.labelMaps);
      Object.assign(report.reference, { accuracy: m.pixelAccuracy, segmentation: { miou: m.miou, pixelAccuracy: m.pixelAccuracy } });
    }
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Mean cosine similarity of corresponding rows of width `w`. */
export function meanCosine(a: Float32Array, b: Float32Array, w: number): number {
  const rows = a.length / w;
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < w; j++) { const x = a[r * w + j]!, y = b[r * w + j]!; ab += x * y; aa += x * x; bb += y * y; }
    sum += ab / Math.max(Math.sqrt(aa * bb), 1e-12);
  }
  return rows ? sum / rows : 1;
}
