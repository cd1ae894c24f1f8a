import * as path from 'node:path';
import { OptinError } from '../errors';
import type { ModelInput } from '../structure/types';
import { readTextExamples, type TextExample } from './examples';
import { loadTokenizer, type LoadedTokenizer } from './tokenizer';
import { readFeeds } from './feeds';
import { readImages } from './images';
import { mulberry32 } from '../optin/random';
import type { CalibrationBatch, DataModel, DataOptions, TensorData } from './types';

export type { TensorData, CalibrationBatch, DataModel, DataOptions, InputSize } from './types';

/** Default number of calibration examples. */
export const DEFAULT_SAMPLES = 32;

function intTensor(input: ModelInput, dims: number[], values: number[]): TensorData {
  if (input.dtype === 'int32') return { type: 'int32', dims, data: Int32Array.from(values) };
  if (input.dtype === 'int64') return { type: 'int64', dims, data: BigInt64Array.from(values.map(BigInt)) };
  throw new OptinError('unsupported', `input "${input.name}" has type ${input.dtype}; expected int64 or int32 token ids`);
}

function textMaxLength(st: DataModel, tok: LoadedTokenizer | undefined, opts: DataOptions): number {
  const fixed = st.inputs.find((i) => i.role === 'input_ids')?.shape[1];
  if (typeof fixed === 'number' && fixed > 0) return fixed;
  let m = opts.maxLength ?? Math.min(tok?.maxLength ?? 128, 128);
  if (st.maxPositions) m = Math.min(m, st.maxPositions);
  return m;
}

/** Turn token id rows into model feeds, padding to the longest row (or the graph's fixed length). */
export function textFeeds(st: DataModel, rows: Array<{ ids: number[]; types: number[] }>, padId: number, fixedLen?: number): Pick<CalibrationBatch, 'feeds' | 'seqLen' | 'tokenMask' | 'meanLength' | 'batch'> {
  const B = rows.length;
  const S = fixedLen ?? Math.max(...rows.map((r) => r.ids.length));
  const ids: number[] = [], mask: number[] = [], types: number[] = [], pos: number[] = [];
  for (const r of rows) {
    for (let j = 0; j < S; j++) {
      const real = j < r.ids.length;
      ids.push(real ? r.ids[j]! : padId);
      mask.push(real ? 1 : 0);
      types.push(real ? (r.types[j] ?? 0) : 0);
      pos.push(j);
    }
  }
  const feeds: Record<string, TensorData> = {};
  for (const input of st.inputs) {
    const dims = [B, S];
    switch (input.role) {
      case 'input_ids': feeds[input.name] = intTensor(input, dims, ids); break;
      case 'attention_mask': feeds[input.name] = intTensor(input, dims, mask); break;
      case 'token_type_ids': feeds[input.name] = intTensor(input, dims, types); break;
      case 'position_ids': feeds[input.name] = intTensor(input, dims, pos); break;
      case 'past_key_values': feeds[input.name] = emptyCache(input, B); break;
      default:
        throw new OptinError('data', `model input "${input.name}" (${input.dtype}) cannot be built from text; give a feeds .jsonl with --data`);
    }
  }
  const hasMask = st.inputs.some((i) => i.role === 'attention_mask');
  const tokenMask = Uint8Array.from(hasMask ? mask : mask.map(() => 1));
  const meanLength = rows.reduce((a, r) => a + Math.min(r.ids.length, S), 0) / B;
  return { feeds, seqLen: S, tokenMask, meanLength, batch: B };
}

function tokenize(tok: LoadedTokenizer, ex: TextExample[], maxLen: number, wantTypes: boolean): Array<{ ids: number[]; types: number[] }> {
  return ex.map((e) => {
    const enc = tok.tokenizer.encode(e.text, { ...(e.textPair !== undefined ? { text_pair: e.textPair } : {}), return_token_type_ids: true });
    let ids = enc.ids;
    let types = wantTypes ? (enc.token_type_ids ?? ids.map(() => 0)) : ids.map(() => 0);
    if (ids.length > maxLen) {
      // A closing special token ([SEP], </s>) is kept; text without one (decoders) is cut at maxLen.
      const plain = tok.tokenizer.encode(e.text, { ...(e.textPair !== undefined ? { text_pair: e.textPair } : {}), add_special_tokens: false }).ids;
      const closing = plain.length > 0 && ids[ids.length - 1] !== plain[plain.length - 1] ? 1 : 0;
      ids = [...ids.slice(0, maxLen - closing), ...ids.slice(ids.length - closing)];
      types = [...types.slice(0, maxLen - closing), ...types.slice(types.length - closing)];
    }
    return { ids, types };
  });
}

/**
 * Build the calibration batch for a model: text (tokenised with the model's tokenizer), an image
 * folder, named feeds, or — with no data — a clearly labelled synthetic batch.
 * @throws OptinError('data') for missing columns, empty files, unreadable images, bad labels...
 */
export async function loadCalibration(modelPath: string, st: DataModel, opts: DataOptions): Promise<CalibrationBatch> {
  const samples = opts.samples ?? DEFAULT_SAMPLES;
  if (!opts.data) return synthetic(st, samples, opts);
  const ext = path.extname(opts.data).toLowerCase();
  if (st.modality === 'vision') {
    if (ext === '.jsonl') return readFeeds(opts.data, st, samples);
    return readImages(opts.data, st, samples, opts.preprocessor ?? path.join(path.dirname(modelPath), 'preprocessor_config.json'), opts.skip ?? 0, opts.inputSize);
  }
  if (st.modality !== 'text') return readFeeds(opts.data, st, samples);
  if (ext === '.jsonl') {
    const first = readTextExamplesOrUndefined(opts.data);
    if (!first) return readFeeds(opts.data, st, samples);
  }
  const examples = readTextExamples(opts.data, samples, opts.skip ?? 0);
  const tok = loadTokenizer(opts.tokenizer ?? path.dirname(modelPath));
  const maxLen = textMaxLength(st, tok, opts);
  const fixed = st.inputs.find((i) => i.role === 'input_ids')?.shape[1];
  const rows = tokenize(tok, examples, maxLen, st.inputs.some((i) => i.role === 'token_type_ids'));
  const labels = examples.every((e) => e.label !== undefined) ? examples.map((e) => e.label!) : undefined;
  return {
    kind: 'text',
    ...textFeeds(st, rows, tok.padId, typeof fixed === 'number' && fixed > 0 ? fixed : undefined),
    ...(labels ? { labels } : {}),
    source: opts.data,
  };
}

function readTextExamplesOrUndefined(file: string): TextExample[] | undefined {
  try {
    return readTextExamples(file, 1);
  } catch (e) {
    if (e instanceof OptinError && /no text column/.test(e.message)) return undefined;
    throw e;
  }
}

function synthetic(st: DataModel, samples: number, opts: DataOptions): CalibrationBatch {
  const rnd = mulberry32(opts.seed ?? 1234);
  const warning = `${opts.synthetic === 'chosen' ? 'synthetic calibration data chosen' : 'no calibration data given'}: scoring on a synthetic batch (random tokens / noise images); the scores are much less meaningful than on real data`;
  if (st.modality === 'text') {
    const fixed = st.inputs.find((i) => i.role === 'input_ids')?.shape[1];
    const len = typeof fixed === 'number' && fixed > 0 ? fixed : Math.min(32, st.maxPositions ?? 32);
    const vocab = st.vocabSize ?? 100;
    const lo = Math.min(vocab - 1, 1000);
    const rows = Array.from({ length: samples }, () => {
      const ids = Array.from({ length: len }, () => lo + Math.floor(rnd() * (vocab - lo)));
      return { ids, types: ids.map(() => 0) };
    });
    return { kind: 'synthetic', ...textFeeds(st, rows, 0, typeof fixed === 'number' && fixed > 0 ? fixed : undefined), warning, source: 'synthetic' };
  }
  const feeds: Record<string, TensorData> = {};
  let tokens = 1;
  for (const i of st.inputs) {
    const dims = i.shape.map((d, k) => (typeof d === 'number' && d > 0 ? d : k === 0 ? samples : 16));
    dims[0] = samples;
    const n = dims.reduce((a, b) => a * b, 1);
    if ((i.dtype === 'int64' || i.dtype === 'int32') && i.role === 'attention_mask') {
      feeds[i.name] = intTensor(i, dims, new Array<number>(n).fill(1));
      continue;
    }
    if (i.dtype !== 'float32') throw new OptinError('data', `cannot synthesise input "${i.name}" of type ${i.dtype}; give --data`);
    feeds[i.name] = { type: 'float32', dims, data: Float32Array.from({ length: n }, () => gaussian(rnd)) };
    if (i.role === 'hidden_states') tokens = dims[1] ?? 1;
  }
  const seqLen = st.visionTokens ?? tokens;
  return { kind: 'synthetic', feeds, batch: samples, seqLen, tokenMask: new Uint8Array(samples * seqLen).fill(1), meanLength: seqLen, warning, source: 'synthetic' };
}

/** Standard normal sample (Box-Muller). */
export function gaussian(rnd: () => number): number {
  const u = Math.max(rnd(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
}

/**
 * The same batch for another model of the same interface whose cache inputs may have other head
 * counts (the original of a pruned decoder): its own empty caches.
 */
export function withOwnCache(batch: CalibrationBatch, inputs: ModelInput[]): CalibrationBatch {
  const past = inputs.filter((i) => i.role === 'past_key_values');
  if (!past.length) return batch;
  return { ...batch, feeds: { ...batch.feeds, ...Object.fromEntries(past.map((i) => [i.name, emptyCache(i, batch.batch)])) } };
}

/**
 * An empty key/value cache [batch, heads, 0, head size] for a decoder's past input: calibration,
 * scoring and verification run the prefill (the first step of generation).
 * @throws OptinError('data') when the cache's head axes are not fixed numbers
 */
export function emptyCache(input: ModelInput, batch: number): TensorData {
  const dims = input.shape.map((d, k) => (k === 0 ? batch : k === input.shape.length - 2 ? 0 : d));
  if (dims.some((d) => typeof d !== 'number' || d < 0)) throw new OptinError('data', `cache input "${input.name}" has shape [${input.shape.join(', ')}]; expected [batch, heads, past length, head size] with fixed heads and head size`);
  return { type: 'float32', dims: dims as number[], data: new Float32Array(0) };
}
