import type { ModelStructure } from '../structure/types';
import type { TensorData } from './types';

/** Rows [start, end) of every feed along the batch axis. */
export function sliceFeeds(feeds: Record<string, TensorData>, start: number, end: number): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [k, t] of Object.entries(feeds)) {
    const row = t.dims.slice(1).reduce((a, b) => a * b, 1);
    out[k] = { type: t.type, dims: [end - start, ...t.dims.slice(1)], data: t.data.slice(start * row, end * row) as TensorData['data'] };
  }
  return out;
}

/** The given rows (in that order) of every feed along the batch axis. */
export function pickFeeds(feeds: Record<string, TensorData>, rows: number[]): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const [k, t] of Object.entries(feeds)) {
    const row = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const data = new (t.data.constructor as { new (n: number): TensorData['data'] })(row * rows.length);
    rows.forEach((r, j) => (data as Float32Array).set((t.data as Float32Array).subarray(r * row, (r + 1) * row), j * row));
    out[k] = { type: t.type, dims: [rows.length, ...t.dims.slice(1)], data };
  }
  return out;
}

/** Batch size a model accepts: its fixed leading input dimension, or undefined when free. */
export function fixedBatch(st: ModelStructure): number | undefined {
  const d = st.inputs.map((i) => i.shape[0]).find((x) => typeof x === 'number' && x > 0);
  return typeof d === 'number' ? d : undefined;
}

/** Split feeds of `n` examples into chunks of at most `size` (the last chunk may be smaller). */
export function* chunks(feeds: Record<string, TensorData>, n: number, size: number): Generator<{ start: number; feeds: Record<string, TensorData> }> {
  for (let s = 0; s < n; s += size) yield { start: s, feeds: sliceFeeds(feeds, s, Math.min(n, s + size)) };
}
