import * as fs from 'node:fs';
import * as path from 'node:path';
import { OptinError } from '../errors';
import type { ModelInput } from '../structure/types';
import type { DataOptions, InputSize } from './types';

/** Parse `--input-size`: `HxW`, or a whole image shape `NxCxHxW` / `CxHxW` (its last two dims). */
export function parseInputSize(text: string): InputSize {
  const dims = text.split(/[x,]/i).map((d) => Number(d.trim()));
  if (dims.length < 2 || dims.length > 4 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new OptinError('usage', `--input-size ${text}: expected the image height and width as HxW (e.g. 224x224) or a whole shape such as 1x3x224x224`);
  }
  return { height: dims[dims.length - 2]!, width: dims[dims.length - 1]! };
}

/**
 * The size a model with dynamic image axes is analysed, calibrated and timed at: `data.inputSize`,
 * else the size calibration images are resized to (the preprocessor config given or beside the model).
 */
export function inputSizeFor(modelPath: string, data?: Pick<DataOptions, 'inputSize' | 'preprocessor'>): InputSize | undefined {
  if (data?.inputSize) return data.inputSize;
  const file = data?.preprocessor ?? path.join(path.dirname(modelPath), 'preprocessor_config.json');
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { height, width } = configSize(c);
  return height && width ? { height, width } : undefined;
}

/** The image size a preprocessor config resizes to (`size` as {height, width}, {shortest_edge} or one number). */
export function configSize(c: Record<string, unknown>): Partial<InputSize> {
  const s = c.size;
  const size = (typeof s === 'number' ? { height: s, width: s } : s ?? {}) as Record<string, number>;
  const h = size.height ?? size.shortest_edge, w = size.width ?? size.shortest_edge;
  const out: Partial<InputSize> = {};
  if (typeof h === 'number' && h > 0) out.height = h;
  if (typeof w === 'number' && w > 0) out.width = w;
  return out;
}

/** Axes of an image input: NCHW as torch exports, or NHWC (tf2onnx, Keras) when the last axis is 1 or 3 channels and the second is not. */
export function imageAxes(i: ModelInput): { channels: number; height: number; width: number } {
  const small = (d: number | string | undefined): boolean => d === 1 || d === 3;
  return small(i.shape[3]) && !small(i.shape[1]) ? { channels: 3, height: 1, width: 2 } : { channels: 1, height: 2, width: 3 };
}

/** An image input (float, rank 4) whose height or width is dynamic. */
export function hasDynamicSize(i: ModelInput): boolean {
  if (i.dtype !== 'float32' || i.shape.length !== 4 || i.role !== 'pixel_values') return false;
  const a = imageAxes(i);
  return [a.height, a.width].some((k) => typeof i.shape[k] !== 'number' || (i.shape[k] as number) <= 0);
}

/** The inputs with dynamic image height and width replaced by `size` (unchanged without one). */
export function withInputSize(inputs: ModelInput[], size: InputSize | undefined): ModelInput[] {
  if (!size) return inputs;
  return inputs.map((i) => {
    if (!hasDynamicSize(i)) return i;
    const a = imageAxes(i);
    return { ...i, shape: i.shape.map((d, k) => (k === a.height ? size.height : k === a.width ? size.width : d)) };
  });
}

/** The height and width of the first image input whose spatial axes are fixed (after {@link withInputSize}), or undefined. */
export function fixedInputSize(inputs: ModelInput[]): InputSize | undefined {
  const px = inputs.find((i) => i.dtype === 'float32' && i.shape.length === 4 && i.role === 'pixel_values' && !hasDynamicSize(i));
  if (!px) return undefined;
  const a = imageAxes(px);
  return { height: px.shape[a.height] as number, width: px.shape[a.width] as number };
}

/** The refusal for an input whose height and width are dynamic when no size is known. */
export function noSizeMessage(modelPath: string, i: ModelInput): string {
  return `${modelPath}: input "${i.name}" has dynamic axes (${i.shape.join(' x ')}) and no size to analyse it at; put the preprocessor_config.json the model was trained with (its "size") next to the model, or pass --input-size HxW`;
}
