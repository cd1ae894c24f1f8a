import type { DataModel } from './types';
import * as fs from 'node:fs';
import { OptinError } from '../errors';
import type { CalibrationBatch, TensorData } from './types';

function flatten(v: unknown, dims: number[], out: number[], where: string, depth = 0): void {
  if (Array.isArray(v)) {
    if (dims.length <= depth) dims.push(v.length);
    else if (dims[depth] !== v.length) throw new OptinError('data', `${where}: ragged array (length ${v.length} where ${dims[depth]} was seen)`);
    for (const x of v) flatten(x, dims, out, where, depth + 1);
  } else if (typeof v === 'number') out.push(v);
  else throw new OptinError('data', `${where}: expected numbers, found ${JSON.stringify(v)?.slice(0, 40)}`);
}

/**
 * Read named model inputs from .jsonl: one object per line, each key an input name holding one
 * example (nested arrays without the batch axis). Lines are stacked along the batch axis.
 */
export function readFeeds(file: string, st: DataModel, samples: number): CalibrationBatch {
  let lines: string[];
  try {
    lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim());
  } catch (e) {
    throw new OptinError('data', `cannot read feeds ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!lines.length) throw new OptinError('data', `${file} holds no examples`);
  lines = lines.slice(0, samples);
  const values = new Map<string, { dims: number[]; data: number[] }>();
  lines.forEach((line, i) => {
    let rec: Record<string, unknown>;
    try { rec = JSON.parse(line) as Record<string, unknown>; } catch { throw new OptinError('data', `${file}:${i + 1}: not valid JSON`); }
    for (const input of st.inputs) {
      if (!(input.name in rec)) throw new OptinError('data', `${file}:${i + 1}: missing model input "${input.name}"`);
      const dims: number[] = [];
      const data: number[] = [];
      flatten(rec[input.name], dims, data, `${file}:${i + 1} "${input.name}"`);
      const acc = values.get(input.name);
      if (!acc) values.set(input.name, { dims, data });
      else if (acc.dims.join() !== dims.join()) throw new OptinError('data', `${file}:${i + 1}: "${input.name}" has shape [${dims}] but line 1 had [${acc.dims}]`);
      else acc.data.push(...data);
    }
  });
  const B = lines.length;
  const feeds: Record<string, TensorData> = {};
  for (const input of st.inputs) {
    const v = values.get(input.name)!;
    const dims = [B, ...v.dims];
    if (input.dtype === 'int64') feeds[input.name] = { type: 'int64', dims, data: BigInt64Array.from(v.data.map((x) => BigInt(Math.trunc(x)))) };
    else if (input.dtype === 'int32') feeds[input.name] = { type: 'int32', dims, data: Int32Array.from(v.data) };
    else if (input.dtype === 'float32') feeds[input.name] = { type: 'float32', dims, data: Float32Array.from(v.data) };
    else throw new OptinError('unsupported', `input "${input.name}" has type ${input.dtype}`);
  }
  const mask = st.inputs.find((i) => i.role === 'attention_mask');
  const seqLen = st.visionTokens ?? (feeds[st.inputs[0]!.name]!.dims[1] ?? 1);
  const tokenMask = new Uint8Array(B * seqLen).fill(1);
  if (mask) feeds[mask.name]!.data.forEach((x, i) => { tokenMask[i] = Number(x) ? 1 : 0; });
  const meanLength = tokenMask.reduce((a, b) => a + b, 0) / B;
  return { kind: 'feeds', feeds, batch: B, seqLen, tokenMask, meanLength, source: file };
}
