import * as ort from 'onnxruntime-node';
import type { ModelStructure } from '../structure/types';
import { mulberry32 } from '../optin/random';
import { OptinError } from '../errors';

/** Deterministic synthetic inputs for a model at a batch and sequence length (token ids, all-ones mask, pixels). */
export function benchFeeds(st: Pick<ModelStructure, 'inputs' | 'vocabSize'>, batch: number, seqLen: number): Record<string, ort.Tensor> {
  const rnd = mulberry32(42);
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of st.inputs) {
    const dims = i.shape.map((d, k) => (k === 0 ? batch : typeof d === 'number' && d > 0 ? d : seqLen));
    const n = dims.reduce((a, b) => a * b, 1);
    const vocab = Math.max(2, Math.min(st.vocabSize ?? 100, 30000));
    const ints = (f: () => number): ort.Tensor => (i.dtype === 'int32'
      ? new ort.Tensor('int32', Int32Array.from({ length: n }, f), dims)
      : new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(f())), dims));
    switch (i.role) {
      case 'input_ids': feeds[i.name] = ints(() => 1 + Math.floor(rnd() * (vocab - 1))); break;
      case 'attention_mask': feeds[i.name] = ints(() => 1); break;
      case 'token_type_ids': feeds[i.name] = ints(() => 0); break;
      case 'position_ids': feeds[i.name] = ints(() => 0); break;
      case 'past_key_values': feeds[i.name] = new ort.Tensor('float32', new Float32Array(0), dims.map((d, k) => (k === dims.length - 2 ? 0 : d))); break;
      default:
        if (i.dtype !== 'float32') throw new OptinError('unsupported', `cannot make benchmark data for input "${i.name}" (${i.dtype})`);
        feeds[i.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, () => rnd() * 2 - 1), dims);
    }
  }
  return feeds;
}

/** Inputs of one decode step: one new token per row after a cache of `context` tokens (random keys and values). */
export function decodeFeeds(st: Pick<ModelStructure, 'inputs' | 'vocabSize'>, batch: number, context: number): Record<string, ort.Tensor> {
  const rnd = mulberry32(7);
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of st.inputs) {
    const int = (dims: number[], f: () => number): ort.Tensor => (i.dtype === 'int32'
      ? new ort.Tensor('int32', Int32Array.from({ length: dims[0]! * dims[1]! }, f), dims)
      : new ort.Tensor('int64', BigInt64Array.from({ length: dims[0]! * dims[1]! }, () => BigInt(f())), dims));
    if (i.role === 'input_ids') feeds[i.name] = int([batch, 1], () => 1 + Math.floor(rnd() * (Math.max(2, st.vocabSize ?? 100) - 1)));
    else if (i.role === 'attention_mask') feeds[i.name] = int([batch, context + 1], () => 1);
    else if (i.role === 'position_ids') feeds[i.name] = int([batch, 1], () => context);
    else if (i.role === 'token_type_ids') feeds[i.name] = int([batch, 1], () => 0);
    else if (i.role === 'past_key_values') {
      const dims = i.shape.map((d, k) => (k === 0 ? batch : k === i.shape.length - 2 ? context : Number(d)));
      feeds[i.name] = new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rnd() * 2 - 1), dims);
    } else throw new OptinError('unsupported', `cannot make decode-step inputs for "${i.name}"`);
  }
  return feeds;
}
