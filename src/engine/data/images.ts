import type { DataModel } from './types';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OptinError } from '../errors';
import type { CalibrationBatch, InputSize } from './types';
import { IMAGE_EXT } from './kinds';
import { configSize, imageAxes } from './inputSize';

/** Image preprocessing from a Hugging Face preprocessor_config.json. */
export interface Preprocessor {
  width: number;
  height: number;
  rescale: number;
  mean: number[];
  std: number[];
}


/** Read preprocessor_config.json (or defaults from the graph's input size). */
export function readPreprocessor(file: string, st: DataModel): Preprocessor {
  const px = st.inputs.find((i) => i.role === 'pixel_values');
  const axes = px ? imageAxes(px) : { height: 2, width: 3 };
  const dim = (k: number): number => {
    const d = px?.shape[k];
    return typeof d === 'number' && d > 0 ? d : 224;
  };
  const gh = dim(axes.height), gw = dim(axes.width);
  if (!fs.existsSync(file)) return { width: gw, height: gh, rescale: 1 / 255, mean: [0.5], std: [0.5] };
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new OptinError('data', `cannot parse ${file}: ${(e as Error).message}`);
  }
  const size = configSize(c);
  const nums = (v: unknown, d: number[]): number[] => (Array.isArray(v) ? v.map(Number) : typeof v === 'number' ? [v] : d);
  return {
    width: size.width ?? gw,
    height: size.height ?? gh,
    rescale: c.do_rescale === false ? 1 : Number(c.rescale_factor ?? 1 / 255),
    mean: c.do_normalize === false ? [0] : nums(c.image_mean, [0.5]),
    std: c.do_normalize === false ? [1] : nums(c.image_std, [0.5]),
  };
}

/** Label value of pixels no class is scored on (segmentation label maps). */
export const IGNORE_INDEX = 255;

/**
 * A segmentation folder: `images/` and `labels/`, where labels/NAME.png is the label map of
 * images/NAME.<ext> (8-bit grayscale, pixel value = class index, 255 = ignore). Undefined when
 * `dir` is not laid out so.
 */
export function segmentationPairs(dir: string): Array<{ file: string; labelMap: string }> | undefined {
  const images = path.join(dir, 'images'), labels = path.join(dir, 'labels');
  if (!fs.existsSync(images) || !fs.existsSync(labels) || !fs.statSync(labels).isDirectory()) return undefined;
  const out: Array<{ file: string; labelMap: string }> = [];
  for (const f of fs.readdirSync(images).sort()) {
    if (!IMAGE_EXT.has(path.extname(f).toLowerCase())) continue;
    const labelMap = path.join(labels, `${path.parse(f).name}.png`);
    if (!fs.existsSync(labelMap)) throw new OptinError('data', `${path.join(images, f)} has no label map ${labelMap}; a segmentation folder pairs images/NAME with labels/NAME.png`);
    out.push({ file: path.join(images, f), labelMap });
  }
  if (!out.length) throw new OptinError('data', `${images} holds no images (.png, .jpg, ...)`);
  return out;
}

/** Image files of a folder: ImageFolder (one subfolder per class, label = sorted index) or flat. */
export function listImages(dir: string): Array<{ file: string; label?: number }> {
  const pairs = segmentationPairs(dir);
  if (pairs) return pairs.map((p) => ({ file: p.file }));
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new OptinError('data', `cannot read image folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const out: Array<{ file: string; label?: number }> = [];
  if (classes.length) {
    classes.forEach((c, label) => {
      for (const f of fs.readdirSync(path.join(dir, c)).sort()) if (IMAGE_EXT.has(path.extname(f).toLowerCase())) out.push({ file: path.join(dir, c, f), label });
    });
  } else {
    for (const e of entries.map((x) => x.name).sort()) if (IMAGE_EXT.has(path.extname(e).toLowerCase())) out.push({ file: path.join(dir, e) });
  }
  if (!out.length) throw new OptinError('data', `${dir} holds no images (.png, .jpg, ...)`);
  return out;
}

/** Interleave classes so the first N images cover every class. */
function roundRobin<T extends { label?: number }>(items: T[]): T[] {
  const groups = new Map<number, T[]>();
  for (const it of items) {
    const k = it.label ?? 0;
    const g = groups.get(k);
    if (g) g.push(it);
    else groups.set(k, [it]);
  }
  const lists = [...groups.values()];
  const out: T[] = [];
  for (let i = 0; out.length < items.length; i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

/**
 * Decode, resize and normalise images into pixel_values [N, C, H, W] (or [N, H, W, C] when the graph
 * takes channels last) with the graph's channel count.
 * @throws OptinError('data') for unreadable images or a folder without images
 */
export async function readImages(dir: string, st: DataModel, samples: number, preprocessorFile: string, skip = 0, size?: InputSize): Promise<CalibrationBatch> {
  const px = st.inputs.find((i) => i.role === 'pixel_values');
  if (!px) throw new OptinError('data', 'the model has no image input');
  const axes = imageAxes(px);
  const nhwc = axes.channels === 3;
  const channels = typeof px.shape[axes.channels] === 'number' ? px.shape[axes.channels] as number : 3;
  if (channels !== 1 && channels !== 3) throw new OptinError('data', `input "${px.name}" expects ${channels} channels; only 1 (grayscale) or 3 (RGB) are supported`);
  const pre = { ...readPreprocessor(preprocessorFile, st), ...size };
  const all = roundRobin(listImages(dir));
  if (all.length <= skip) throw new OptinError('data', `${dir} holds no images beyond the first ${skip}`);
  const files = all.slice(skip, skip + samples);
  // require, not import(): the CommonJS entry is the one every VSIX ships (scripts/package.mjs).
  const sharp = require('sharp') as typeof import('sharp')['default'];
  const N = files.length;
  const plane = pre.width * pre.height;
  const data = new Float32Array(N * channels * plane);
  for (let n = 0; n < N; n++) {
    const f = files[n]!.file;
    let raw: Buffer;
    try {
      let img = sharp(f).resize(pre.width, pre.height, { fit: 'fill' }).removeAlpha();
      img = channels === 1 ? img.grayscale() : img.toColourspace('srgb');
      raw = await img.raw().toBuffer();
    } catch (e) {
      throw new OptinError('data', `cannot decode image ${f}: ${(e as Error).message}`);
    }
    if (raw.length !== plane * channels) throw new OptinError('data', `image ${f} decoded to ${raw.length / plane} channels; the model expects ${channels}`);
    for (let c = 0; c < channels; c++) {
      const mean = pre.mean[c] ?? pre.mean[0]!;
      const std = pre.std[c] ?? pre.std[0]!;
      for (let i = 0; i < plane; i++) data[nhwc ? (n * plane + i) * channels + c : (n * channels + c) * plane + i] = (raw[i * channels + c]! * pre.rescale - mean) / std;
    }
  }
  const pairs = segmentationPairs(dir);
  let labelMaps: CalibrationBatch['labelMaps'];
  if (pairs) {
    const byFile = new Map(pairs.map((p) => [p.file, p.labelMap]));
    const maps = new Uint8Array(N * plane);
    for (let n = 0; n < N; n++) {
      const f = byFile.get(files[n]!.file)!;
      let raw: Buffer;
      try {
        raw = await sharp(f).resize(pre.width, pre.height, { fit: 'fill', kernel: 'nearest' }).removeAlpha().grayscale().raw().toBuffer();
      } catch (e) {
        throw new OptinError('data', `cannot decode label map ${f}: ${(e as Error).message}`);
      }
      maps.set(raw.subarray(0, plane), n * plane);
    }
    labelMaps = { data: maps, height: pre.height, width: pre.width };
  }
  const tokens = st.visionTokens ?? 1;
  const labels = pairs ? undefined : files.every((f) => f.label !== undefined) ? files.map((f) => f.label!) : undefined;
  return {
    kind: 'images',
    feeds: { [px.name]: { type: 'float32', dims: nhwc ? [N, pre.height, pre.width, channels] : [N, channels, pre.height, pre.width], data } },
    batch: N,
    seqLen: tokens,
    tokenMask: new Uint8Array(N * tokens).fill(1),
    meanLength: tokens,
    ...(labels ? { labels } : {}),
    ...(labelMaps ? { labelMaps } : {}),
    source: dir,
  };
}
