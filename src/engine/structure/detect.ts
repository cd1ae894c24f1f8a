import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import { OptinError } from '../errors';
import { findLinears, nodeId } from './linear';
import { LinearIndex } from './trace';
import { attentionFromFused, attentionFromHeadOp, attentionFromSoftmax, SEQUENCE_FIRST } from './attention';
import { headOp } from '../groups/headOps';
import { batchFirstGraph, streamEntries } from './streamLayout';
import { feedForwardBlocks } from './ffn';
import { measureShapes, type MeasuredShapes } from '../groups/shapes';
import { attentionBlock, siteHeads, unmaskable } from './headUnits';
import { withMeasuredLayers } from './measure';
import type { InputSize } from '../data/types';
import { modelInputs, wordEmbedding } from './inputs';
import { cacheEvidence, carriedCache, causalEvidence, idleCacheOutput, isCacheValue } from './decoder';
import { normAfter, normProducing } from './norms';
import { visionTokenCount } from './vision';
import { checkWeightTypes } from './dtypes';
import type { AttentionBlock, AttentionSite, EncoderLayer, FfnBlock, Linear, ModelInput, ModelStructure } from './types';

function attentionLinears(a: AttentionSite): Linear[] {
  return [a.output, ...a.projections];
}

/** Ops that move a sublayer's output back into the residual stream's layout (Swin: window merge, reverse roll, unpad), or scale it. */
const BACK_TO_STREAM = new Set(['Reshape', 'Transpose', 'Dropout', 'Identity', 'Slice']);

/**
 * The value a sublayer output becomes after layout ops with a single data consumer, or after a
 * cyclic shift (torch.roll exported as two Slices of the value joined by one Concat).
 */
function layoutStep(ix: GraphIndex, v: string): string | undefined {
  const data = ix.uses(v).filter((u) => u.opType !== 'Shape');
  if (data.length === 1 && BACK_TO_STREAM.has(data[0]!.opType) && data[0]!.input[0] === v) return data[0]!.output[0]!;
  // A sublayer scaled before its residual add (Conformer's half-step feed-forward blocks: x + 0.5 * ffn(x)).
  if (data.length === 1 && data[0]!.opType === 'Mul') {
    const other = data[0]!.input[0] === v ? data[0]!.input[1]! : data[0]!.input[0]!;
    const c = ix.constant(other);
    if (c && c.dims.reduce((a, d) => a * Number(d), 1) === 1) return data[0]!.output[0]!;
  }
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

/** A structure whose layers hold attention of type `A` (sites before the heads are measured). */
type Structure<A extends AttentionSite> = Omit<ModelStructure, 'layers'> & { layers: Array<EncoderLayer<A>> };

/** What the shape-free pass finds: attention sites, the projections, and how the graph was read. */
interface AttentionPass<A extends AttentionSite = AttentionSite> {
  ix: GraphIndex;
  li: LinearIndex;
  attns: A[];
  notes: string[];
  inputs: ModelInput[];
  causal: string | undefined;
  /** Cache inputs no attention reads, each with the output it is carried to (a layer whose attention a pruning removed). */
  idleCache: string[];
  sequenceFirst?: ModelStructure['sequenceFirst'];
}

/** Where measured shapes come from: a probe at `size` (dynamic image axes), or shapes measured already on the same graph. */
export interface DetectOptions {
  size?: InputSize;
  shapes?: MeasuredShapes;
}

/**
 * Find every encoder layer of a transformer graph: Q/K/V and output projections, FFN neurons (by
 * the channel propagation on shapes measured in one onnxruntime run), LayerNorms, residual stream,
 * head geometry and the places it is baked in; for fixed-size inputs (images, audio features) the
 * token count and, where layers differ (Swin), each layer's shape, from the same run
 * ({@link withMeasuredLayers}; with `size`, the inputs carry it).
 * @throws OptinError('decoder'|'not-transformer'|'unsupported') with the model path and the reason.
 */
export async function detectStructure(model: OnnxModel, opts: DetectOptions = {}): Promise<ModelStructure> {
  return (await analyzeStructure(model, opts)).st;
}

/** {@link detectStructure}, with the shapes it measured (for the analyses that follow on the same graph). */
export async function analyzeStructure(model: OnnxModel, opts: DetectOptions = {}): Promise<{ st: ModelStructure; shapes: MeasuredShapes }> {
  const pass = attentionPass(model);
  let shapes: MeasuredShapes, attns: AttentionBlock[];
  try {
    shapes = opts.shapes ?? await measureShapes(model, opts.size);
    attns = withHeads(pass.ix, shapes, pass.attns, model.path);
  } catch (e) {
    if (pass.causal && e instanceof OptinError && (e.code === 'unsupported' || e.code === 'runtime')) throw asDecoderRefusal(model.path, pass.causal, e);
    throw e;
  }
  const { ffns, notes } = feedForward(pass.ix, pass.li, attns, shapes);
  return { st: withMeasuredLayers(pass.ix, assemble(model, { ...pass, attns }, ffns, [...pass.notes, ...notes]), shapes, opts.size), shapes };
}

/** A refusal of a causal model, saying why in the words of the error that stopped its analysis. */
function asDecoderRefusal(where: string, causal: string, e: OptinError): OptinError {
  const why = e.message.replace(`${where}: `, '').replace(`${where} (shape probe): `, 'measuring its shapes on a synthetic batch failed: ');
  return new OptinError('decoder', `${where}: a decoder-only (causal) model (${causal}) that cannot be pruned yet: ${why}`);
}

/**
 * Each site's heads as the propagation finds them on the measured shapes ({@link siteHeads}).
 * @throws OptinError('unsupported') naming the attention whose heads no closure gives, or whose
 * units would split a block-quantized output projection's blocks.
 */
function withHeads(ix: GraphIndex, shapes: MeasuredShapes, sites: AttentionSite[], where: string): AttentionBlock[] {
  return sites.map((site) => {
    const at = ix.label(ix.graph.node.find((n) => nodeId(n) === site.core)!);
    const u = siteHeads(ix, shapes, site);
    if (typeof u === 'string') throw new OptinError('unsupported', `${where}: the heads of the attention at ${at} cannot be cut: ${u}`);
    const odd = unmaskable(ix, shapes, site, u.group);
    if (odd) throw new OptinError('unsupported', `${where}: attention at ${at}: ${odd}`);
    const a = attentionBlock(site, u);
    const why = quantizedHeadRows(a);
    if (why) throw new OptinError('unsupported', `${where}: ${why}`);
    return a;
  });
}

/** The residual feed-forward blocks outside the attention blocks, with a note when their neurons are cut in quantization blocks. */
function feedForward(ix: GraphIndex, li: LinearIndex, attns: AttentionSite[], shapes: MeasuredShapes): { ffns: FfnBlock[]; notes: string[] } {
  const taken = new Set<Linear>(attns.flatMap(attentionLinears));
  const ffns = feedForwardBlocks(ix, li, shapes, taken, (f) => inResidualStream(ix, f));
  const quantized = ffns.filter((f) => f.down.blockSize);
  const notes = quantized.length
    ? [`the neurons of ${quantized.length} feed-forward block${quantized.length > 1 ? 's' : ''} (first: "${quantized[0]!.down.node}") are cut in whole blocks of ${quantized[0]!.down.blockSize}: their second matrix is quantized in blocks along the neurons (MatMulNBits), and codes are copied, never re-quantized`]
    : [];
  return { ffns, notes };
}

/** Attention and residual feed-forward blocks of a graph in node order, without assigning layers, on its measured shapes. */
export function findBlocks(ix: GraphIndex, where: string, shapes: MeasuredShapes): { attns: AttentionBlock[]; ffns: FfnBlock[]; notes: string[] } {
  const { attns: sites, li } = findAttention(ix, where);
  const attns = withHeads(ix, shapes, sites, where);
  return { attns, ...feedForward(ix, li, attns, shapes) };
}

/** Attention blocks (shape-free), after the float, quantization-block and cache checks; a sequence-first stack is rewritten batch-first first. */
function attentionPass(model: OnnxModel): AttentionPass {
  let g = model.proto.graph!;
  let ix = new GraphIndex(g, model.ext);
  const where = model.path;
  checkWeightTypes(model);
  const causal = causalEvidence(ix);
  const inputs = modelInputs(ix);
  const half = inputs.find((i) => i.dtype === 'float16');
  if (half) throw new OptinError('unsupported', `${where}: input "${half.name}" is float16; OPTIN needs a float32 model`);
  let blocks: ReturnType<typeof findAttention>;
  let sequenceFirst: ModelStructure['sequenceFirst'];
  try {
    blocks = findAttention(ix, where);
  } catch (e) {
    const flipped = e instanceof OptinError && e.message.includes(SEQUENCE_FIRST) ? withBatchFirstStream(model, where) : undefined;
    if (flipped) {
      g = model.proto.graph!;
      ix = new GraphIndex(g, model.ext);
      blocks = flipped;
      sequenceFirst = { transposes: flipped.transposes };
    } else {
      if (causal && e instanceof OptinError && (e.code === 'not-transformer' || e.code === 'unsupported')) {
        throw asDecoderRefusal(where, causal, e);
      }
      throw e;
    }
  }
  const { attns } = blocks;
  const cached = new Set(attns.flatMap((a) => a.cache ?? []));
  const idleCache = g.input.filter((i) => !cached.has(i.name) && isCacheValue(i)).flatMap((i) => {
    const present = idleCacheOutput(ix, i.name);
    return present ? [i.name, present] : [];
  });
  for (const v of idleCache) cached.add(v);
  const cache = cacheEvidence(ix, cached);
  const carried = g.input.filter((i) => !cached.has(i.name) && isCacheValue(i)).map((i) => ({ name: i.name, to: carriedCache(ix, i.name) })).find((c) => c.to);
  if (carried) {
    throw new OptinError('decoder', `${where}: the key/value-cache input "${carried.name}" is only carried to the output "${carried.to}": no attention reads it, so an earlier pruning removed this layer's whole attention. A cached decoder in that state cannot be analysed again; prune the original model once at the budget you want (two prunings at 0.8 and 0.7 keep 0.56 of the original's MACs)`);
  }
  if (cache) {
    throw new OptinError('decoder', `${where}: this key/value-cache layout is not supported yet (${cache} is not joined to one attention's keys or values); export the model without its cache (use_cache=False) and prune that`);
  }
  return { ix, li: blocks.li, attns, notes: blocks.notes, inputs, causal, idleCache, ...(sequenceFirst ? { sequenceFirst } : {}) };
}

/** The structure from the attention pass and the feed-forward blocks: cache checks, layers, norms, interface. */
function assemble<A extends AttentionSite>(model: OnnxModel, pass: AttentionPass<A>, ffns: FfnBlock[], notes: string[]): Structure<A> {
  const { ix, attns, inputs, causal, sequenceFirst } = pass;
  const g = ix.graph;
  const where = model.path;
  const { idleCache } = pass;
  const position = new Map(g.node.map((n, i) => [n.name || n.output[0]!, i]));
  const order = (name: string): number => position.get(name) ?? -1;
  const hidden = attns[0]!.output.outFeatures;
  const layers = assignLayers(attns, ffns, order);
  const widths = new Set(layers.map((l) => sublayerOutput(l).outFeatures));
  if (widths.size > 1 && !inputs.some((i) => i.role === 'pixel_values')) {
    throw new OptinError('unsupported', `${where}: layer widths change between layers (${[...widths].join(', ')}); staged models are supported for image inputs (Swin), not for ${inputs.map((i) => i.name).join(', ')}`);
  }
  const first = layers.find((l) => l.attention)!.attention!;
  const res0 = residualAfter(ix, first.output);
  const norm: 'pre' | 'post' = !res0 || res0.skip === first.input ? 'post' : 'pre';
  /** The value the first sublayer of a layer reads, and its residual add. */
  const entry = (l: EncoderLayer<A>): { reads: string; res: ReturnType<typeof residualAfter> } =>
    l.attention ? { reads: l.attention.input, res: residualAfter(ix, l.attention.output) } : { reads: l.ffn!.up.input, res: residualAfter(ix, l.ffn!.down) };
  layers.forEach((l, i) => {
    const next = layers[i + 1];
    const resA = l.attention ? residualAfter(ix, l.attention.output) : undefined;
    const ffnRes = l.ffn ? residualAfter(ix, l.ffn.down) : undefined;
    if (norm === 'post') {
      l.input = entry(l).reads;
      const n1 = l.attention ? (l.ffn ? normProducing(ix, l.ffn.up.input) : resA ? normAfter(ix, resA.out) ?? normProducing(ix, resA.out) : undefined) : undefined;
      if (n1) l.norm1 = n1;
      const after = ffnRes ?? resA;
      const n2 = next ? normProducing(ix, entry(next).reads) : after ? normAfter(ix, after.out) ?? normProducing(ix, after.out) : undefined;
      if (n2) l.norm2 = n2;
      l.output = next ? entry(next).reads : (l.norm2?.output ?? after?.out ?? sublayerOutput(l).output);
      l.feature = l.ffn ? l.ffn.down.output : l.attention!.output.output;
    } else {
      const e = entry(l);
      l.input = e.res?.skip ?? e.reads;
      // Window attention (Swin) pads, shifts and partitions the normalised stream before its projections.
      const direct = normProducing(ix, e.reads);
      const n1 = l.attention ? direct ?? (resA ? normAfter(ix, resA.skip) : undefined) : undefined;
      if (n1) l.norm1 = n1;
      const n2 = l.ffn ? normProducing(ix, l.ffn.up.input) : undefined;
      if (n2) l.norm2 = n2;
      l.output = next ? (entry(next).res?.skip ?? entry(next).reads) : (ffnRes?.out ?? resA?.out ?? sublayerOutput(l).output);
      l.feature = l.attention ? (direct || !n1 ? l.attention.input : n1.output) : e.reads;
    }
  });
  const base = withInterface(model, ix, inputs, hidden, norm, layers);
  const st = {
    ...base, outputs: base.outputs.filter((o) => !idleCache.includes(o)),
    ...(notes.length ? { notes } : {}), ...(sequenceFirst ? { sequenceFirst } : {}), ...(idleCache.length ? { idleCache } : {}),
  };
  return causal ? { ...st, architecture: 'decoder', causal } : st;
}

/** A structure around `layers`: inputs, outputs, modality, vocabulary, position table and vision tokens. */
function withInterface<A extends AttentionSite>(model: OnnxModel, ix: GraphIndex, inputs: ModelInput[], hidden: number, norm: 'pre' | 'post', layers: Array<EncoderLayer<A>>): Structure<A> {
  const pixel = inputs.find((i) => i.role === 'pixel_values');
  const ids = inputs.find((i) => i.role === 'input_ids');
  const s: Structure<A> = {
    architecture: inputs.some((i) => i.name === 'input_features') ? 'audio-encoder' : family(model, !!pixel),
    modality: pixel ? 'vision' : ids ? 'text' : 'hidden-states',
    hidden,
    norm,
    layers,
    inputs,
    outputs: ix.graph.output.map((o) => o.name).filter((o) => !layers.some((l) => l.attention?.cache?.includes(o))),
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
function quantizedHeadRows(a: AttentionBlock): string | undefined {
  if (a.output.op !== 'MatMulNBits') return undefined;
  const block = a.output.blockSize!;
  if (a.vHeadSize % block === 0) return undefined;
  return `${a.output.node} (MatMulNBits) is quantized in blocks of ${block} input rows, but one ${a.group ? 'key/value group' : 'head'} owns ${a.vHeadSize} of them; cutting one would split a block: prune the float32 model and quantize the pruned model (or quantize with a block size dividing ${a.vHeadSize})`;
}

/**
 * A model whose transformer stack runs sequence-first ([seq, batch, width], heads folded into the
 * batch axis: torchaudio's Conformer, nn.TransformerEncoder without batch_first) gets its graph
 * replaced, in memory, by one computing the same function with a batch-first stream
 * ({@link batchFirstGraph}), tried from each candidate Transpose that enters the stream; returns the
 * blocks found in it, or undefined (graph unchanged) when no candidate gives recognised attention.
 */
function withBatchFirstStream(model: OnnxModel, where: string): (ReturnType<typeof findAttention> & { transposes: number }) | undefined {
  const g = model.proto.graph!;
  const opset = Number(model.proto.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
  for (const entry of streamEntries(g)) {
    const r = batchFirstGraph(g, entry, opset, model.ext);
    if (!r) continue;
    let blocks: ReturnType<typeof findAttention>;
    try {
      blocks = findAttention(new GraphIndex(r.graph, model.ext), where);
    } catch {
      continue;
    }
    model.proto.graph = r.graph;
    const note = `the transformer stack runs sequence-first ([seq, batch, width]); it is analysed and cut with its residual stream batch-first (${r.transposes} Transposes moved or added around the layout-dependent ops), which computes the same function`;
    return { ...blocks, notes: [...blocks.notes, note], transposes: r.transposes };
  }
  return undefined;
}

/** The projection that writes a layer's last sublayer back to the residual stream. */
function sublayerOutput(l: EncoderLayer<AttentionSite>): Linear {
  return l.ffn?.down ?? l.attention!.output;
}

/**
 * Layers in node order: an attention block with the first feed-forward block after it (before the
 * next attention); any other feed-forward block (before the first attention, or a second one after
 * an attention) is a layer of its own with no attention.
 */
function assignLayers<A extends AttentionSite>(attns: A[], ffns: FfnBlock[], order: (name: string) => number): Array<EncoderLayer<A>> {
  const items = [
    ...attns.map((a) => ({ at: order(a.core), attention: a, ffn: undefined })),
    ...ffns.map((f) => ({ at: order(f.up.node), attention: undefined, ffn: f })),
  ].sort((x, y) => x.at - y.at);
  const layers: Array<EncoderLayer<A>> = [];
  let open: EncoderLayer<A> | undefined;
  for (const it of items) {
    if (it.attention) {
      open = { index: layers.length, attention: it.attention, ffn: null, input: it.attention.input, output: '', feature: '' };
      layers.push(open);
    } else if (open) {
      open.ffn = it.ffn!;
      open = undefined;
    } else {
      layers.push({ index: layers.length, attention: null, ffn: it.ffn!, input: it.ffn!.up.input, output: '', feature: '' });
    }
  }
  return layers;
}

/** Attention blocks of a graph in node order, with the graph's projections. */
function findAttention(ix: GraphIndex, where: string): { attns: AttentionSite[]; li: LinearIndex; notes: string[] } {
  const g = ix.graph;
  let li: LinearIndex;
  try {
    li = new LinearIndex([...findLinears(ix).values()]);
  } catch (e) {
    if (e instanceof OptinError) throw new OptinError(e.code, `${where}: ${e.message}`);
    throw e;
  }
  const attns: AttentionSite[] = [];
  const skipped: string[] = [];
  for (const n of g.node) {
    try {
      if (n.opType === 'Softmax') {
        const a = attentionFromSoftmax(ix, li, n);
        if (typeof a === 'string') skipped.push(`${ix.label(n)}: ${a}`);
        else if (a) attns.push(a);
      } else if (n.opType === 'Attention' && n.domain === 'com.microsoft') attns.push(attentionFromFused(ix, li, n));
      else if (headOp(n)) attns.push(attentionFromHeadOp(ix, li, n, headOp(n)!));
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
  // Attention probabilities in a form not recognised beside attention that is: said, never left out silently.
  const notes = skipped.map((x) => `the Softmax at ${x}; its heads are not pruned (the projections around it are left whole)`);
  return { attns, li, notes };
}

/**
 * The model's interface (inputs with their roles, outputs without the key/value cache, vocabulary,
 * position table, hidden width, causal evidence) for running it on data, from the shape-free
 * attention pass, or from what the inputs and embeddings show when it finds no attention (e.g. a
 * pruned model in which whole layers lost their attention, a decoder whose cache a removed
 * attention no longer reads). `layers` is empty: the units need {@link detectStructure}.
 */
export function describeInterface(model: OnnxModel): ModelStructure {
  try {
    return { ...assemble(model, attentionPass(model), [], []), layers: [] };
  } catch (e) {
    if (!(e instanceof OptinError) || !['unsupported', 'not-transformer', 'decoder'].includes(e.code)) throw e;
    const ix = new GraphIndex(model.proto.graph!, model.ext);
    const inputs = modelInputs(ix);
    const ids = inputs.find((i) => i.role === 'input_ids');
    const word = ids ? wordEmbedding(ix, ids.name) : undefined;
    const st = { ...withInterface(model, ix, inputs, word ? Number(word.dims[1]) : 0, 'post', []), layers: [] };
    const causal = causalEvidence(ix);
    return causal ? { ...st, architecture: 'decoder', causal } : st;
  }
}
