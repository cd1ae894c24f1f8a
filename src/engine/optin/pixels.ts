import type { GraphBuilder } from '../graph/builder';
import { sampleIndices } from './random';

/** Pixels of a dense output the output term compares (per-pixel class logits [B, C, H, W]). */
export const PIXEL_SAMPLE = 1024;

/** A fixed sample of pixels (batch x positions) of a dense output, and the teacher's logits there [rows, classes]. */
export interface PixelSample {
  rows: number[];
  classes: number;
  /** Pixels per variant (batch x H x W). */
  perVariant: number;
  teacher: Float32Array;
}

/** Move axis `axis` of a row-major tensor last and flatten the rest: [prod(other dims), dims[axis]]. */
export function channelsLast(data: Float32Array, dims: number[], axis: number): Float32Array {
  const C = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const out = new Float32Array(data.length);
  let r = 0;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++, r++) {
      for (let c = 0; c < C; c++) out[r * C + c] = data[(o * C + c) * inner + i]!;
    }
  }
  return out;
}

/**
 * Dense outputs (semantic segmentation): the same pixels for the teacher and every masked variant,
 * whose class logits enter the KL term per pixel; undefined for outputs of another rank.
 */
export function samplePixels(logits: Float32Array, dims: number[], seed: number): PixelSample | undefined {
  if (dims.length !== 4) return undefined;
  const classes = dims[1]!;
  const last = channelsLast(logits, dims, 1);
  const perVariant = last.length / classes;
  const rows = sampleIndices(perVariant, PIXEL_SAMPLE, seed + 1);
  const teacher = new Float32Array(rows.length * classes);
  rows.forEach((r, i) => teacher.set(last.subarray(r * classes, (r + 1) * classes), i * classes));
  return { rows, classes, perVariant, teacher };
}

/** Graph nodes taking the sampled pixels of every stacked variant: [variants, rows, classes]. */
export function gatherPixels(b: GraphBuilder, logits: string, p: PixelSample): string {
  const t = b.node('Transpose', [logits], { perm: [0, 2, 3, 1] }, 'pixelsLast');
  const r = b.reshape(t, [-1, p.perVariant, p.classes], 'pixels');
  return b.node('Gather', [r, b.ints(p.rows, [p.rows.length], 'pixelRows')], { axis: 1 }, 'sampledPixels');
}
