import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { ModelProto } from '../onnx/schema';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch, TensorData } from '../data/types';
import { sliceFeeds } from '../data/batches';
import { runSession, sessionFor, toOrt } from '../runtime/session';
import type { EpChoice } from '../runtime/providers';
import { OptinError } from '../errors';

/** What the incremental decode step of a cached decoder showed. */
export interface DecodeCheck {
  /** Largest |pruned - masked original| of the logits of one decode step after a prefill with the cache. */
  maxAbsDiff: number;
  /** Largest |decode step - full-sequence run| of the pruned model's logits at the last position. */
  selfMaxAbsDiff: number;
  outputScale: number;
}

/** Columns [from, to) of every [batch, seq] token feed; other feeds are kept. */
function columns(feeds: Record<string, TensorData>, st: ModelStructure, from: number, to: number, total: number): Record<string, TensorData> {
  const out: Record<string, TensorData> = {};
  for (const i of st.inputs) {
    const t = feeds[i.name];
    if (!t) continue;
    if (i.role === 'past_key_values') { out[i.name] = t; continue; }
    const [B, S] = t.dims as [number, number];
    const end = i.role === 'attention_mask' ? total : to;
    const start = i.role === 'attention_mask' ? 0 : from;
    const data = new (t.data.constructor as { new (n: number): TensorData['data'] })(B * (end - start));
    for (let b = 0; b < B; b++) (data as Float32Array).set((t.data as Float32Array).subarray(b * S + start, b * S + end), b * (end - start));
    out[i.name] = { type: t.type, dims: [B, end - start], data };
  }
  return out;
}

function maxDiff(a: ort.Tensor, b: ort.Tensor, lastOfB = false): number {
  const x = a.data as Float32Array, y = b.data as Float32Array;
  const [B, , V] = a.dims as [number, number, number];
  const S = b.dims[1]!;
  let d = 0;
  for (let r = 0; r < B; r++) {
    for (let j = 0; j < V; j++) {
      const yi = lastOfB ? (r * S + S - 1) * V + j : r * V + j;
      d = Math.max(d, Math.abs(x[r * V + j]! - y[yi]!));
    }
  }
  return Number.isNaN(d) ? Infinity : d;
}

/**
 * Generation with the key/value cache, checked: both models prefill the first S - 1 tokens of up to
 * 8 calibration rows (empty past), then take one decode step on token S with their own presents as
 * the past. The pruned model's step must equal the masked original's, and equal its own
 * full-sequence run at the last position.
 */
export async function checkDecodeStep(o: {
  original: OnnxModel; masked: ModelProto; pruned: OnnxModel; st: ModelStructure; batch: CalibrationBatch; ep: EpChoice;
  masks: (rows: number) => Record<string, ort.Tensor>;
}): Promise<DecodeCheck> {
  const S = o.batch.seqLen;
  if (S < 2) throw new OptinError('data', `${o.batch.source}: the decode check needs examples of at least 2 tokens`);
  const rows = Math.min(8, o.batch.batch);
  const all = sliceFeeds(o.batch.feeds, 0, rows);
  const logits = o.st.outputs[0]!;
  const pasts = o.st.inputs.filter((i) => i.role === 'past_key_values').map((i) => i.name);
  const presentOf = (past: string): string => {
    const cache = o.st.layers.find((x) => x.attention?.cache?.includes(past))?.attention!.cache ?? o.st.idleCache!;
    return cache[cache.indexOf(past) + 1]!;
  };
  const generate = async (model: OnnxModel, proto: ModelProto, extra: Record<string, ort.Tensor>, withFull: boolean): Promise<{ step: ort.Tensor; full?: ort.Tensor }> => {
    const s = await sessionFor(model, proto, `${model.path} (decode check)`, o.ep);
    try {
      const prefill = await runSession(s.session, emptyCachesOf(proto, { ...toOrt(columns(all, o.st, 0, S - 1, S - 1)), ...extra }), `${model.path} (prefill)`);
      const past = Object.fromEntries(pasts.map((p) => [p, prefill[presentOf(p)] as ort.Tensor]));
      const step = await runSession(s.session, { ...toOrt(columns(all, o.st, S - 1, S, S)), ...past, ...extra }, `${model.path} (decode step)`);
      if (!withFull) return { step: step[logits] as ort.Tensor };
      const full = await runSession(s.session, emptyCachesOf(proto, { ...toOrt(all), ...extra }), `${model.path} (full run)`);
      return { step: step[logits] as ort.Tensor, full: full[logits] as ort.Tensor };
    } finally {
      await s.session.release();
    }
  };
  const ref = await generate(o.original, o.masked, o.masks(rows), false);
  const got = await generate(o.pruned, o.pruned.proto, {}, true);
  const scale = (ref.step.data as Float32Array).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  return { maxAbsDiff: maxDiff(ref.step, got.step), selfMaxAbsDiff: maxDiff(got.step, got.full!, true), outputScale: scale };
}

/**
 * Feeds for a pruned decoder: empty key/value-cache inputs (the prefill's past of length 0) take the
 * pruned graph's fixed dims (fewer key/value heads); every other feed is passed as is.
 */
export function emptyCachesOf(proto: ModelProto, feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const out = { ...feeds };
  for (const v of proto.graph!.input) {
    const t = feeds[v.name];
    const dims = v.type?.value.case === 'tensorType' ? v.type.value.value.shape?.dim : undefined;
    if (!t || t.size !== 0 || !dims || dims.length !== t.dims.length) continue;
    const want = dims.map((d, k) => (d.value.case === 'dimValue' ? Number(d.value.value) : t.dims[k]!));
    if (want.join() !== t.dims.join()) out[v.name] = new ort.Tensor('float32', new Float32Array(0), want);
  }
  return out;
}
