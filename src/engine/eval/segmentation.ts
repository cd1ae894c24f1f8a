import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { CalibrationBatch } from '../data/calibration';
import { chunks } from '../data/batches';
import { createSession, runSession, toOrt } from '../runtime/session';
import type { EpChoice } from '../runtime/providers';
import { OptinError } from '../errors';
import { IGNORE_INDEX } from '../data/images';

/** Per-pixel predictions of a segmentation model: argmax over classes of [B, C, H, W]. */
export interface PixelPredictions {
  data: Uint16Array;
  examples: number;
  height: number;
  width: number;
  classes: number;
}

/** mIoU and pixel accuracy over the labelled pixels (label 255 ignored). */
export interface SegmentationMetrics {
  /** Mean over classes that occur in the labels or the predictions of TP / (TP + FP + FN). */
  miou: number;
  pixelAccuracy: number;
  /** IoU per class (NaN for a class in neither labels nor predictions). */
  iou: number[];
  pixels: number;
}

/** The declared rank of a model's first output (0 when not declared). */
export function firstOutputRank(model: OnnxModel): number {
  const t = model.proto.graph!.output[0]?.type?.value;
  return t?.case === 'tensorType' ? t.value.shape?.dim.length ?? 0 : 0;
}

/** Run a segmentation model over the batch and take the per-pixel argmax of its first output. */
export async function predictPixels(model: OnnxModel, output: string, batch: CalibrationBatch, size: number, ep: EpChoice = 'cpu', signal?: AbortSignal): Promise<PixelPredictions> {
  const s = await createSession(model.path, { ep, label: model.path });
  let res: PixelPredictions | undefined;
  try {
    for (const c of chunks(batch.feeds, batch.batch, size)) {
      if (signal?.aborted) throw new OptinError('cancelled', 'evaluation cancelled');
      const y = (await runSession(s.session, toOrt(c.feeds), model.path))[output] as ort.Tensor;
      if (y.dims.length !== 4) throw new OptinError('unsupported', `${model.path}: output "${output}" has shape [${y.dims}]; segmentation needs per-pixel class logits [batch, classes, height, width]`);
      const [n, C, H, W] = y.dims as [number, number, number, number];
      res ??= { data: new Uint16Array(batch.batch * H * W), examples: batch.batch, height: H, width: W, classes: C };
      const d = y.data as Float32Array;
      const plane = H * W;
      for (let e = 0; e < n; e++) {
        for (let p = 0; p < plane; p++) {
          let best = 0;
          for (let k = 1; k < C; k++) if (d[(e * C + k) * plane + p]! > d[(e * C + best) * plane + p]!) best = k;
          res.data[(c.start + e) * plane + p] = best;
        }
      }
    }
  } finally {
    await s.session.release();
  }
  return res!;
}

/** Labels resampled (nearest) to the prediction's size. */
function labelsAt(maps: NonNullable<CalibrationBatch['labelMaps']>, p: PixelPredictions): Uint8Array {
  if (maps.height === p.height && maps.width === p.width) return maps.data;
  const out = new Uint8Array(p.examples * p.height * p.width);
  for (let e = 0; e < p.examples; e++) {
    for (let y = 0; y < p.height; y++) {
      const sy = Math.min(maps.height - 1, Math.floor(((y + 0.5) * maps.height) / p.height));
      for (let x = 0; x < p.width; x++) {
        const sx = Math.min(maps.width - 1, Math.floor(((x + 0.5) * maps.width) / p.width));
        out[(e * p.height + y) * p.width + x] = maps.data[(e * maps.height + sy) * maps.width + sx]!;
      }
    }
  }
  return out;
}

/** Compare predictions with label maps (or with another model's predictions: `against`). */
export function segmentationMetrics(p: PixelPredictions, truth: NonNullable<CalibrationBatch['labelMaps']> | PixelPredictions): SegmentationMetrics {
  const labels = 'classes' in truth ? truth.data : labelsAt(truth, p);
  const C = p.classes;
  const tp = new Float64Array(C), fp = new Float64Array(C), fn = new Float64Array(C);
  let right = 0, pixels = 0;
  for (let i = 0; i < p.data.length; i++) {
    const t = labels[i]!;
    if (t === IGNORE_INDEX) continue;
    if (t >= C) throw new OptinError('data', `label ${t} is not a class of the model (${C} classes; 255 = ignore)`);
    const y = p.data[i]!;
    pixels++;
    if (y === t) { right++; tp[t]!++; } else { fp[y]!++; fn[t]!++; }
  }
  const iou = Array.from({ length: C }, (_, k) => (tp[k]! + fp[k]! + fn[k]! > 0 ? tp[k]! / (tp[k]! + fp[k]! + fn[k]!) : Number.NaN));
  const seen = iou.filter((x) => !Number.isNaN(x));
  return { miou: seen.length ? seen.reduce((a, b) => a + b, 0) / seen.length : 0, pixelAccuracy: pixels ? right / pixels : 0, iou, pixels };
}
