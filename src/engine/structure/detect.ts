import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import { OptinError } from '../errors';
import { findLinears } from './linear';
import { LinearIndex } from './trace';
import { attentionFromFused, attentionFromMha, attentionFromSoftmax } from './attention';
import { attentionFromOnnx } from './onnxAttention';
import { attentionFromGqa } from './ortGqa';
import { ffnFromDown } from './ffn';
import { modelInputs } from './inputs';
import { cacheEvidence, causalEvidence } from './decoder';
import { normAfter, normProducing } from './norms';
import { visionTokenCount } from './vision';
import { checkWeightTypes } from './dtypes';
import type { AttentionBlock, EncoderLayer, FfnBlock, Linear, ModelInput, ModelStructure } from './types';
import type { TensorProto } from '../onnx/schema';

function attentionLinears(a: AttentionBlock): Linear[] {
  return [a.output, ...a.projections];
}

/** Ops that move a sublayer's output back into the residual stream's layout (Swin: window merge, reverse roll, unpad). */
const BACK_TO_STREAM = new Set(['Reshape', 'Transpose', 'Dropout', 'Identity', 'Slice']);

/**
 * The value a sublayer output becomes after layout ops with a single data consumer, or after a
 * cyclic shift (torch.roll exported as two Slices of the value joined by one Concat).
 */
function layoutStep(ix: GraphIndex, v: string): string | undefined {
  const data = ix.uses(v).filter((u) => u.opType !== 'Shape');
  if (data.length === 1 && BACK_TO_STREAM.has(data[0]!.opType) && data[0]!.input[0] === v) return data[0]!.output[0]!;
  if (data.length === 2 && data.every((u) => u.opType === 'Slice' && u.input[0] === v)) {
    const joins = data.map((u) => ix.uses(u.output[0]!));
    const c = joins[0]!.length === 1 ? joins[0]![0]! : undefined;
    if (c?.opType === 'Concat' && joins[1]!.length === 1 && joins[1]![0] === c && c.input.length === 2) return c.output[0]!;
  }
  return undefined;
}

/** Residual add after a sublayer output: the skip input, the add's output and the sublayer value the add reads. */
export function residualAfter(ix: GraphIndex, sub: Linear): { skip: string; out: string; value: string } | undefined {
  let v = sub.output;
  // A sequence-first sublayer (nn.MultiheadAttention) reshapes and transposes its output back first;
  // window attention (Swin) merges windows, reverses its cyclic shift and removes padding.
  for (let hop = 0; hop < 12; hop++) {
    for (const u of ix.uses(v)) {
      if (u.opType === 'Add') {
        const skip = u.input[0] === v ? u.input[1]! : u.input[0]!;
        if (!ix.constant(skip)) return { skip, out: u.output[0]!, value: v };
      }
      if (u.opType === 'SkipLayerNormalization' || u.opType === 'SkipSimplifiedLayerNormalization') {
        const skip = u.input[0] === v ? u.input[1]! : u.input[0]!;
        return { skip, out: u.output[0]!, value: v };
      }
    }
    const next = layoutStep(ix, v);
    if (!next) return undefined;
    v = next;
  }
  return undefined;
}

/** An FFN sits in the residual stream: its output is added back to its own input (post-LN) or to the value its input norm reads (pre-LN). */
function inResidualStream(ix: GraphIndex, f: FfnBlock): boolean {
  const r = residualAfter(ix, f.down);
  if (!r) return false;
  if (r.skip === f.up.input) return true;
  // Fused pre-LN (onnxruntime's Skip*LayerNormalization): the stream is the sum output of the norm the FFN reads.
  const p = ix.producer.get(r.skip);
  if (p && (p.opType === 'SkipLayerNormalization' || p.opType === 'SkipSimplifiedLayerNormalization') && p.output[3] === r.skip && p.output[0] === f.up.input) return true;
  return normAfter(ix, r.skip)?.output === f.up.input;
}


function family(model: OnnxModel, vision: boolean): string {
  if (vision) return 'vit';
  const names = model.proto.graph!.initializer.slice(0, 40).map((t) => t.name).join(' ').toLowerCase();
  if (names.includes('distilbert')) return 'distilbert';
  if (names.includes('roberta')) return 'roberta';
  if (names.includes('tf_bert') || model.proto.producerName === 'keras2onnx') return 'tf-bert';
  return 'bert';
}

/**
 * Find every encoder layer of a transformer graph: Q/K/V and output projections, FFN, LayerNorms,
 * residual stream, head geometry and the places it is baked in.
 * @throws OptinError('decoder'|'not-transformer'|'unsupported') with the model path and the reason.
 */
export function detectStructure(model: OnnxModel): ModelStructure {
  const g = model.proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  const where = model.path;
  checkWeightTypes(model);
  const causal = causalEvidence(ix);
  const inputs = modelInputs(ix);
  const half = inputs.find((i) => i.dtype === 'float16');
  if (half) throw new OptinError('unsupported', `${where}: input "${half.name}" is float16; OPTIN needs a float32 model`);
  let blocks: ReturnType<typeof findBlocks>;
  try {
    blocks = findBlocks(ix, where);
  } catch (e) {
    if (causal && e instanceof OptinError && (e.code === 'not-transformer' || e.code === 'unsupported')) {
      throw new OptinError('decoder', `${where}: a decoder-only (causal) model (${causal}) that cannot be pruned yet: ${e.message.replace(`${where}: `, '')}`);
    }
    throw e;
  }
  const { attns, ffns, notes } = blocks;
  for (const a of attns) {
    const why = quantizedHeadRows(ix, a);
    if (why) throw new OptinError('unsupported', `${where}: ${why}`);
  }
  const cached = new Set(attns.flatMap((a) => a.cache ?? []));
  const cache = cacheEvidence(ix, cached);
  if (cache) {
    throw new OptinError('decoder', `${where}: this key/value-cache layout is not supported yet (${cache} is not joined to one attention's keys or values); export the model without its cache (use_cache=False) and prune that`);
  }
  const position = new Map(g.node.map((n, i) => [n.name || n.output[0]!, i]));
  const order = (name: string): number => position.get(name) ?? -1;
  const coreOrder = attns.map((a) => order(a.core));
  const hidden = attns[0]!.output.outFeatures;
  const layers: EncoderLayer[] = attns.map((attention, i) => {
    const lo = coreOrder[i]!;
    const hi = i + 1 < attns.length ? coreOrder[i + 1]! : Infinity;
    const mine = ffns.filter((f) => { const o = order(f.up.node); return o > lo && o < hi; });
    if (mine.length > 1) throw new OptinError('unsupported', `${where}: layer ${i} has ${mine.length} feed-forward blocks; expected one (a layer whose whole attention is gone, as after pruning all its heads, is not analysed again)`);
    return { index: i, attention, ffn: mine[0] ?? null, input: attention.input, output: '', feature: '' };
  });
  const widths = new Set(layers.map((l) => l.attention.output.outFeatures));
  if (widths.size > 1 && !inputs.some((i) => i.role === 'pixel_values')) {
    throw new OptinError('unsupported', `${where}: layer widths change between layers (${[...widths].join(', ')}); staged models are supported for image inputs (Swin), not for ${inputs.map((i) => i.name).join(', ')}`);
  }
  const res0 = residualAfter(ix, layers[0]!.attention.output);
  const norm: 'pre' | 'post' = !res0 || res0.skip === layers[0]!.attention.input ? 'post' : 'pre';
  layers.forEach((l, i) => {
    const next = layers[i + 1];
    const resA = residualAfter(ix, l.attention.output);
    const ffnRes = l.ffn ? residualAfter(ix, l.ffn.down) : undefined;
    if (norm === 'post') {
      l.input = l.attention.input;
      const n1 = l.ffn ? normProducing(ix, l.ffn.up.input) : resA ? normAfter(ix, resA.out) ?? normProducing(ix, resA.out) : undefined;
      if (n1) l.norm1 = n1;
      const after = ffnRes ?? resA;
      const n2 = next ? normProducing(ix, next.attention.input) : after ? normAfter(ix, after.out) ?? normProducing(ix, after.out) : undefined;
      if (n2) l.norm2 = n2;
      l.output = next ? next.attention.input : (l.norm2?.output ?? after?.out ?? l.attention.output.output);
      l.feature = l.ffn ? l.ffn.down.output : l.attention.output.output;
    } else {
      l.input = resA?.skip ?? l.attention.input;
      // Window attention (Swin) pads, shifts and partitions the normalised stream before its projections.
      const direct = normProducing(ix, l.attention.input);
      const n1 = direct ?? (resA ? normAfter(ix, resA.skip) : undefined);
      if (n1) l.norm1 = n1;
      const n2 = l.ffn ? normProducing(ix, l.ffn.up.input) : undefined;
      if (n2) l.norm2 = n2;
      l.output = next ? (residualAfter(ix, next.attention.output)?.skip ?? next.attention.input) : (ffnRes?.out ?? resA?.out ?? l.attention.output.output);
      l.feature = direct || !n1 ? l.attention.input : n1.output;
    }
  });
  const st = { ...withInterface(model, ix, inputs, hidden, norm, layers), ...(notes.length ? { notes } : {}) };
  return causal ? { ...st, architecture: 'decoder', causal } : st;
}

/** A structure around `layers`: inputs, outputs, modality, vocabulary, position table and vision tokens. */
function withInterface(model: OnnxModel, ix: GraphIndex, inputs: ModelInput[], hidden: number, norm: 'pre' | 'post', layers: EncoderLayer[]): ModelStructure {
  const pixel = inputs.find((i) => i.role === 'pixel_values');
  const ids = inputs.find((i) => i.role === 'input_ids');
  const s: ModelStructure = {
    architecture: inputs.some((i) => i.name === 'input_features') ? 'audio-encoder' : family(model, !!pixel),
    modality: pixel ? 'vision' : ids ? 'text' : 'hidden-states',
    hidden,
    norm,
    layers,
    inputs,
    outputs: ix.graph.output.map((o) => o.name).filter((o) => !layers.some((l) => l.attention.cache?.includes(o))),
    opset: Number(model.proto.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0),
    producer: `${model.proto.producerName} ${model.proto.producerVersion}`.trim(),
  };
  if (pixel && hidden) {
    const t = visionTokenCount(ix, pixel, hidden);
    if (t) s.visionTokens = t;
  }
  if (ids) {
    const word = wordEmbedding(ix, ids.name);
    if (word) s.vocabSize = Number(word.dims[0]);
    const p = hidden ? maxPositions(ix, ids.name, hidden, ids.shape[1]) : undefined;
    if (p) s.maxPositions = p;
  }
  return s;
}

function wordEmbedding(ix: GraphIndex, idsName: string): TensorProto | undefined {
  return ix.uses(idsName).map((u) => (u.opType === 'Gather' ? ix.constant(u.input[0]!) : undefined)).find((t) => t && t.dims.length === 2);
}

function maxPositions(ix: GraphIndex, idsName: string, hidden: number, seqDim: number | string | undefined): number | undefined {
  if (typeof seqDim === 'number' && seqDim > 0) return seqDim;
  let best: number | undefined;
  for (const n of ix.graph.node) {
    if (n.opType !== 'Gather' || n.input[1] === idsName) continue;
    const t = ix.constant(n.input[0]!);
    if (!t || t.dims.length !== 2 || Number(t.dims[1]) !== hidden) continue;
    const rows = tensorShape(t)[0]!;
    if (rows > 16 && (best === undefined || rows < best)) best = rows;
  }
  return best;
}

/**
 * Why a block-quantized output projection cannot lose one unit's rows (a unit's context width is not
 * a whole number of quantization blocks), or undefined.
 */
function quantizedHeadRows(ix: GraphIndex, a: AttentionBlock): string | undefined {
  if (a.output.op !== 'MatMulNBits') return undefined;
  const block = a.output.blockSize!;
  if (a.vHeadSize % block === 0) return undefined;
  return `${a.output.node} (MatMulNBits) is quantized in blocks of ${block} input rows, but one ${a.group ? 'key/value group' : 'head'} owns ${a.vHeadSize} of them; cutting one would split a block: prune the float32 model and quantize the pruned model (or quantize with a block size dividing ${a.vHeadSize})`;
}

/** Attention blocks and residual FFN blocks of a graph, in node order, without assigning layers. */
export function findBlocks(ix: GraphIndex, where: string): { attns: AttentionBlock[]; ffns: FfnBlock[]; notes: string[] } {
  const g = ix.graph;
  let li: LinearIndex;
  try {
    li = new LinearIndex([...findLinears(ix).values()]);
  } catch (e) {
    if (e instanceof OptinError) throw new OptinError(e.code, `${where}: ${e.message}`);
    throw e;
  }
  const attns: AttentionBlock[] = [];
  for (const n of g.node) {
    try {
      if (n.opType === 'Softmax') {
        const a = attentionFromSoftmax(ix, li, n);
        if (a) attns.push(a);
      } else if (n.opType === 'Attention' && n.domain === 'com.microsoft') attns.push(attentionFromFused(ix, li, n));
      else if (n.opType === 'MultiHeadAttention' && n.domain === 'com.microsoft') attns.push(attentionFromMha(ix, li, n));
      else if (n.opType === 'Attention' && (!n.domain || n.domain === 'ai.onnx')) attns.push(attentionFromOnnx(ix, li, n));
      else if (n.opType === 'GroupQueryAttention' && n.domain === 'com.microsoft') attns.push(attentionFromGqa(ix, li, n));
    } catch (e) {
      if (e instanceof OptinError) throw new OptinError(e.code, `${where}: ${e.message}`);
      throw e;
    }
  }
  if (attns.length === 0) {
    throw new OptinError(
      'not-transformer',
      `${where}: no multi-head attention found (no Softmax between query-key and value MatMuls fed by projections, no Attention op); this does not look like a transformer encoder`,
    );
  }
  const taken = new Set<Linear>(attns.flatMap(attentionLinears));
  const ffns: FfnBlock[] = [];
  for (const l of li.all) {
    if (taken.has(l)) continue;
    const f = ffnFromDown(ix, li, l, taken);
    if (f && inResidualStream(ix, f)) {
      ffns.push(f);
      taken.add(f.up).add(f.down);
      if (f.gate) taken.add(f.gate);
    }
  }
  const quantized = ffns.filter((f) => f.down.blockSize);
  const notes = quantized.length
    ? [`the neurons of ${quantized.length} feed-forward block${quantized.length > 1 ? 's' : ''} (first: "${quantized[0]!.down.node}") are cut in whole blocks of ${quantized[0]!.down.blockSize}: their second matrix is quantized in blocks along the neurons (MatMulNBits), and codes are copied, never re-quantized`]
    : [];
  return { attns, ffns, notes };
}

/**
 * The model's interface (inputs with their roles, outputs, vocabulary, position table) for running
 * it on data: the full structure when it can be detected, otherwise what the inputs and embeddings
 * show (e.g. a pruned model in which whole layers lost their attention, a decoder whose cache a
 * removed attention no longer reads). `layers` may be empty.
 */
export function describeInterface(model: OnnxModel): ModelStructure {
  try {
    return detectStructure(model);
  } catch (e) {
    if (!(e instanceof OptinError) || !['unsupported', 'not-transformer', 'decoder'].includes(e.code)) throw e;
    const ix = new GraphIndex(model.proto.graph!, model.ext);
    const inputs = modelInputs(ix);
    const ids = inputs.find((i) => i.role === 'input_ids');
    const word = ids ? wordEmbedding(ix, ids.name) : undefined;
    const st = withInterface(model, ix, inputs, word ? Number(word.dims[1]) : 0, 'post', []);
    const causal = causalEvidence(ix);
    return causal ? { ...st, architecture: 'decoder', causal } : st;
  }
}
