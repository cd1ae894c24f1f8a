import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch } from '../data/types';
import { chunks, fixedBatch } from '../data/batches';
import { createSession, runSession, toOrt } from '../runtime/session';
import type { EpChoice } from '../runtime/providers';
import { OptinError } from '../errors';

/** Next-token quality of a language model on real tokens: perplexity, bits per token, and each position's prediction. */
export interface NextTokenResult {
  perplexity: number;
  bitsPerToken: number;
  /** Predicted positions (a real token followed by a real token). */
  tokens: number;
  /** Argmax at every position of [batch, seq], -1 where nothing is predicted. */
  predicted: Int32Array;
}

/** True when the model is a causal language model: its first output is [batch, seq, vocabulary]. */
export function isLanguageModel(st: ModelStructure, dims: readonly number[]): boolean {
  return !!st.causal && dims.length === 3 && dims[2] !== st.hidden && (st.vocabSize === undefined || dims[2] === st.vocabSize);
}

/**
 * Add one chunk's terms: for each row r and position t whose next position is a real token, the
 * negative log-likelihood of token t + 1 under logits[r, t] (log-sum-exp in float64) and the argmax.
 */
function addChunk(logits: Float32Array, dims: readonly number[], ids: BigInt64Array | Int32Array, mask: Uint8Array, row0: number, S: number, acc: { nll: number; tokens: number }, predicted: Int32Array): void {
  const [b, s, V] = dims as [number, number, number];
  for (let r = 0; r < b; r++) {
    for (let t = 0; t + 1 < s; t++) {
      const at = (row0 + r) * S + t;
      if (!mask[at] || !mask[at + 1]) continue;
      const o = (r * s + t) * V;
      let best = 0, max = -Infinity;
      for (let j = 0; j < V; j++) if (logits[o + j]! > max) { max = logits[o + j]!; best = j; }
      let sum = 0;
      for (let j = 0; j < V; j++) sum += Math.exp(logits[o + j]! - max);
      const target = Number(ids[(r * s) + t + 1]);
      acc.nll += max + Math.log(sum) - logits[o + target]!;
      acc.tokens++;
      predicted[at] = best;
    }
  }
}

/**
 * Next-token perplexity of a causal language model on text (the batch's token mask says which
 * positions are real; padding is never predicted nor a target).
 * @throws OptinError('unsupported') when the first output is not [batch, seq, vocabulary]
 */
export async function nextTokenQuality(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, batchSize: number, ep: EpChoice = 'cpu', signal?: AbortSignal): Promise<NextTokenResult> {
  const idsName = st.inputs.find((i) => i.role === 'input_ids')?.name;
  if (!idsName) throw new OptinError('unsupported', `${model.path}: perplexity needs an input_ids input`);
  const S = batch.seqLen;
  const predicted = new Int32Array(batch.batch * S).fill(-1);
  const acc = { nll: 0, tokens: 0 };
  const s = await createSession(model.path, { ep, label: model.path });
  try {
    for (const c of chunks(batch.feeds, batch.batch, fixedBatch(st) ?? batchSize)) {
      if (signal?.aborted) throw new OptinError('cancelled', 'evaluation cancelled');
      const r = await runSession(s.session, toOrt(c.feeds), model.path);
      const y = r[st.outputs[0]!] as ort.Tensor;
      if (!isLanguageModel(st, y.dims)) throw new OptinError('unsupported', `${model.path}: first output "${st.outputs[0]}" has shape [${y.dims}]; perplexity needs next-token logits [batch, seq, vocabulary]`);
      addChunk(y.data as Float32Array, y.dims, c.feeds[idsName]!.data as BigInt64Array | Int32Array, batch.tokenMask, c.start, S, acc, predicted);
    }
  } finally {
    await s.session.release();
  }
  if (!acc.tokens) throw new OptinError('data', `${batch.source}: no example has two real tokens; perplexity needs text`);
  const mean = acc.nll / acc.tokens;
  return { perplexity: Math.exp(mean), bitsPerToken: mean / Math.LN2, tokens: acc.tokens, predicted };
}

/** Share of predicted positions where two models predict the same next token. */
export function nextTokenAgreement(a: Int32Array, b: Int32Array): number {
  let n = 0, same = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i]! < 0 || b[i]! < 0) continue;
    n++;
    if (a[i] === b[i]) same++;
  }
  return n ? same / n : 1;
}
