import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch, TensorData } from '../data/calibration';
import type { EpChoice } from '../runtime/providers';
import { GraphBuilder } from '../graph/builder';
import { createSession, runSession } from '../runtime/session';
import { defaultOpset } from '../graph/surgery';
import { OptinError } from '../errors';
import { ffnFrontier, headMaskDims, headMaskName, instrument, neuronMaskDims, neuronMaskName } from './instrument';
import { appendManifoldLoss, appendRowOutputs, concatRows, manifoldModel, outputLoss, ROWS_INPUT, ROWS_SHAPE_INPUT, rowsOutputName, type LossConstants, type TeacherRows } from './lossGraph';
import { bucketRows, planBuckets, type BucketRun } from './buckets';
import { layerValues, runTeacher, type TeacherRun } from './teacher';
import { DeviceFeeds } from '../runtime/deviceFeeds';
import { scoreVariants } from './variants';
import { rankOneStart, withoutNeuron, type RankOneStart } from './rankOne';
import { GraphIndex } from '../onnx/graph';
import { sampleIndices } from './random';
import { gatherPixels, samplePixels } from './pixels';
import { balance } from './balance';
import { OPTIN_DEFAULTS, type OptinConstants, type RawLosses, type ScoreProgress, type Scores } from './types';
import { headCount } from '../structure/layer';
import { scoredOutput } from '../graph/scoredOutput';

/** Default token rows per run on GPU providers (stacked masked variants). */
export const GPU_CHUNK_TOKENS = 16384;

/** Options for {@link scoreModel}. */
export interface ScoreOptions {
  ep?: EpChoice;
  constants?: Partial<OptinConstants>;
  /**
   * Token rows per onnxruntime run: variants are stacked along the batch axis up to this. Default
   * 1024 on the CPU (measured: moderate stacking helps small runs, large stacks are slower there)
   * and {@link GPU_CHUNK_TOKENS} on a GPU provider, where one large run fills the device better
   * than many small ones.
   */
  chunkTokens?: number;
  onProgress?: (p: ScoreProgress) => void;
  signal?: AbortSignal;
  /**
   * Layer features for the manifold term: 'auto' = the paper's defaults (post-LN: output of the
   * second FFN linear; pre-LN: output of the first LayerNorm), or force one of them.
   */
  features?: FeatureChoice;
  /** Run the layers before l once and reuse them (default true; false = full model per run, for benchmarks). */
  reusePrefix?: boolean;
  /**
   * Start each neuron's suffix at its layer's FFN activations (default true): the layer's attention
   * and first FFN matrix, which a neuron does not change, come from the dense run; false = from the
   * layer input, as heads.
   */
  neuronCut?: boolean;
  /**
   * Where a neuron's removal is a rank-1 change of its FFN's second product (rankOne.ts), start the
   * neuron suffix after that matrix, fed the corrected product (default true; false = at the activations).
   */
  rankOne?: boolean;
  /** Which elements to score (default both); the other kind gets zeros. */
  kinds?: Array<'head' | 'neuron'>;
  /**
   * Compare only the next `horizon` layers' features (fast mode): the suffix graph stops there, and
   * the output term is left out (0) for layers whose suffix no longer reaches the logits.
   */
  horizon?: number;
  /** Only these layers (default all); the others get zeros. */
  layers?: number[];
  /** Only these neuron indices per layer (default all); the others get zeros. */
  neuronSubset?: number[][];
  /**
   * Score text in length buckets (default true): examples grouped by length run padded only to their
   * bucket's longest, when the model's real tokens are checked not to depend on the padding
   * ({@link planBuckets}); false = one padded batch, as the naive method and the reference do.
   */
  buckets?: boolean;
  /**
   * Keep the inputs every masked run shares (the layer input and the batch, tiled) on the device
   * between runs where the provider allows it (default true; false = upload them for every run, for
   * benchmarks). See {@link DeviceFeeds}.
   */
  deviceFeeds?: boolean;
}

/** Which value of each layer the manifold-distillation term compares. */
export type FeatureChoice = 'auto' | 'ffn-output' | 'attention-input';

/** The structure with each layer's feature set per the choice. */
export function withFeatures(st: ModelStructure, choice: FeatureChoice): ModelStructure {
  if (choice === 'auto') return st;
  return {
    ...st,
    layers: st.layers.map((l) => ({
      ...l,
      feature: choice === 'attention-input' ? (l.shape && l.norm1 ? l.norm1.output : l.attention?.input ?? l.feature) : (l.ffn?.down.output ?? l.attention!.output.output),
    })),
  };
}

/** Layers whose features the trajectory of an element in layer l compares (k > l; k = l for the last). */
export function comparedLayers(l: number, layers: number): number[] {
  if (l === layers - 1) return [l];
  return Array.from({ length: layers - l - 1 }, (_, i) => l + 1 + i);
}

export function teacherRowsOf(f: Float32Array, rows: number[], D: number): { raw: Float32Array; normalised: Float32Array; norms: Float32Array } {
  const raw = new Float32Array(rows.length * D);
  const normalised = new Float32Array(rows.length * D);
  const norms = new Float32Array(rows.length);
  rows.forEach((r, i) => {
    let s = 0;
    for (let j = 0; j < D; j++) s += f[r * D + j]! ** 2;
    const n = Math.max(Math.sqrt(s), 1e-12);
    norms[i] = n;
    for (let j = 0; j < D; j++) {
      raw[i * D + j] = f[r * D + j]!;
      normalised[i * D + j] = f[r * D + j]! / n;
    }
  });
  return { raw, normalised, norms };
}

/** Sampled real-token rows of the batch: same rows for teacher and student and for every element. */
export function tokenRows(batch: CalibrationBatch, k: number, seed: number): number[] {
  const real: number[] = [];
  batch.tokenMask.forEach((m, i) => { if (m) real.push(i); });
  if (!real.length) throw new OptinError('data', 'the calibration batch has no real tokens');
  return sampleIndices(real.length, k, seed).map((i) => real[i]!);
}

/** The output side of the loss constants: the teacher's logits as probabilities (KL), raw values (squared error) or unit rows (cosine). */
export type OutputConstants = Pick<LossConstants, 'logitRows' | 'classes' | 'teacherProbs' | 'teacherLogProbs' | 'teacherProbs64' | 'teacherLogProbs64' | 'kind' | 'rowWeights'>;

/**
 * Output-term constants from the teacher's output [.., classes]: a single value is a regression
 * (squared error), as many values as the hidden size an embedding (cosine), otherwise logits (KL).
 * `rowWeights` marks the rows that count (real tokens of per-token outputs).
 */
export function outputConstants(logits: Float32Array, dims: number[], hidden: number, rowWeights?: Uint8Array): OutputConstants {
  const classes = dims[dims.length - 1]!;
  const regression = classes === 1;
  const kind: LossConstants['kind'] = regression ? 'squared-error' : classes === hidden ? 'cosine' : 'kl';
  const probs = new Float64Array(logits.length);
  const logProbs = new Float64Array(logits.length);
  if (regression) probs.set(logits);
  else if (kind === 'cosine') {
    for (let r = 0; r < logits.length / classes; r++) {
      let n = 0;
      for (let j = 0; j < classes; j++) n += logits[r * classes + j]! ** 2;
      const inv = 1 / Math.max(Math.sqrt(n), 1e-12);
      for (let j = 0; j < classes; j++) probs[r * classes + j] = logits[r * classes + j]! * inv;
    }
  } else {
    for (let r = 0; r < logits.length / classes; r++) {
      let mx = -Infinity;
      for (let j = 0; j < classes; j++) mx = Math.max(mx, logits[r * classes + j]!);
      let s = 0;
      for (let j = 0; j < classes; j++) s += Math.exp(logits[r * classes + j]! - mx);
      const lse = mx + Math.log(s);
      for (let j = 0; j < classes; j++) {
        const lp = logits[r * classes + j]! - lse;
        logProbs[r * classes + j] = lp;
        probs[r * classes + j] = Math.exp(lp);
      }
    }
  }
  return {
    logitRows: logits.length / classes, classes,
    teacherProbs: Float32Array.from(probs), teacherLogProbs: Float32Array.from(logProbs), teacherProbs64: probs, teacherLogProbs64: logProbs, kind,
    ...(rowWeights ? { rowWeights } : {}),
  };
}

/** Teacher-side constants of the loss graph. */
export function lossConstants(st: ModelStructure, batch: CalibrationBatch, teacher: TeacherRun, c: OptinConstants, sampled?: number[]): LossConstants {
  const rows = sampled ?? tokenRows(batch, c.tokenSample, c.seed);
  const D = st.hidden;
  // Staged models (Swin): every layer samples its own positions at its own width (all positions are real in images).
  const layerRows = st.layers.some((l) => l.shape)
    ? new Map(st.layers.map((l, k) => [k, { rows: sampleIndices(batch.batch * l.shape!.tokens, c.tokenSample, c.seed), tokens: l.shape!.tokens, hidden: l.shape!.hidden }]))
    : undefined;
  const teacherRows = new Map<number, ReturnType<typeof teacherRowsOf>>();
  teacher.features.forEach((f, k) => {
    const own = layerRows?.get(k);
    teacherRows.set(k, teacherRowsOf(f, own?.rows ?? rows, own?.hidden ?? D));
  });
  const base = { rows, tokensPerVariant: batch.seqLen, hidden: D, teacherRows, ...(layerRows ? { layerRows } : {}) };
  const outHidden = st.layers[st.layers.length - 1]?.shape?.hidden ?? D;
  const term = (logits: Float32Array, dims: number[]): LossConstants => {
    const pixels = samplePixels(logits, dims, c.seed);
    if (pixels) return { ...base, pixels, ...outputConstants(pixels.teacher, [pixels.rows.length, pixels.classes], outHidden) };
    const perToken = dims.length === 3 && dims[0] === batch.batch && dims[1] === batch.seqLen;
    return { ...base, ...outputConstants(logits, dims, outHidden, perToken ? batch.tokenMask : undefined) };
  };
  const first = term(teacher.logits, teacher.logitsDims);
  const others = teacher.others.map((o) => ({ name: o.name, constants: term(o.data, o.dims) }));
  return others.length ? { ...first, others } : first;
}

interface Element { kind: 'head' | 'neuron'; index: number }

/** Where a layer's neuron suffixes start (see scoreModel's neuronStart), with the dense values they read, per part. */
interface NeuronStart {
  start: string;
  frontier: string[];
  rankOne?: RankOneStart;
  values: Array<Map<string, TensorData & { data: Float32Array }>>;
}

/** The rank-1 start's feed: the dense product once per element, each without its neuron. */
function withoutNeurons(r1: RankOneStart, dense: TensorData & { data: Float32Array }, act: TensorData & { data: Float32Array }, chunk: Element[]): ort.Tensor {
  const n = dense.data.length;
  const out = new Float32Array(chunk.length * n);
  chunk.forEach((e, j) => withoutNeuron(dense.data, act.data, r1.row(e.index), e.index, r1.width, out, j * n));
  return new ort.Tensor('float32', out, [chunk.length * dense.dims[0]!, ...dense.dims.slice(1)]);
}

/**
 * Loss constants of each length bucket: the padded batch's sampled rows mapped into the buckets, the
 * output terms from each bucket's own dense run, and the teacher rows bucket after bucket (the order
 * the student rows are concatenated in: the Gram norm is the same under a permutation shared by both).
 */
function bucketConstants(st: ModelStructure, runs: BucketRun[], lc: LossConstants, S: number, c: OptinConstants): { local: number[][]; constants: LossConstants[]; teacherRows: Map<number, TeacherRows> } {
  const { local } = bucketRows(lc.rows, S, runs.map((r) => r.bucket));
  const constants = runs.map((r, p) => lossConstants(st, r.batch, r.teacher, c, local[p]));
  const teacherRows = new Map([...lc.teacherRows.keys()].map((k) => [k, concatRows(constants.map((x) => x.teacherRows.get(k)!))]));
  return { local, constants, teacherRows };
}

/** Sampled rows [v, K_p, D] of each bucket joined along the row axis: [v, sum K_p, D]. */
function concatVariantRows(parts: ort.Tensor[], v: number): ort.Tensor {
  const D = parts[0]!.dims[2]!;
  const K = parts.reduce((a, t) => a + t.dims[1]!, 0);
  const out = new Float32Array(v * K * D);
  for (let j = 0, o = 0; j < v; j++) {
    for (const t of parts) {
      const n = t.dims[1]! * D;
      out.set((t.data as Float32Array).subarray(j * n, (j + 1) * n), o);
      o += n;
    }
  }
  return new ort.Tensor('float32', out, [v, K, D]);
}

function checkCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new OptinError('cancelled', 'scoring was cancelled');
}

/**
 * Exact OPTIN scores (docs/method.md §2) with the layers before l run once and reused: for each
 * layer a suffix graph from its residual input computes, per masked variant stacked along the batch
 * axis, the manifold-distillation and KL terms inside onnxruntime.
 */
export async function scoreModel(model: OnnxModel, structure: ModelStructure, batch: CalibrationBatch, opts: ScoreOptions = {}): Promise<Scores> {
  const st = withFeatures(structure, opts.features ?? 'auto');
  const c: OptinConstants = { ...OPTIN_DEFAULTS, ...opts.constants };
  const ep = opts.ep ?? 'cpu';
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  checkCancelled(opts.signal);
  const L = st.layers.length;
  const doHeads = !opts.kinds || opts.kinds.includes('head');
  const doNeurons = !opts.kinds || opts.kinds.includes('neuron');
  const neuronIdx = (l: ModelStructure['layers'][number]): number[] => (!doNeurons || (opts.layers && !opts.layers.includes(l.index)) ? [] : opts.neuronSubset?.[l.index] ?? Array.from({ length: l.ffn?.width ?? 0 }, (_, j) => j));
  const count = (l: ModelStructure['layers'][number]): number => (opts.layers && !opts.layers.includes(l.index) ? 0 : (doHeads ? headCount(l) : 0) + neuronIdx(l).length);
  const total = st.layers.reduce((a, l) => a + count(l), 0);
  opts.onProgress?.({ phase: 'teacher', done: 0, total, elapsed: 0 });
  const reuse = opts.reusePrefix ?? true;
  const teacher = await runTeacher(model, st, batch, ep);
  const B = batch.batch;
  const S = batch.seqLen;
  const measured = teacher.layerInputs[0]!.length / (B * st.hidden);
  if (measured !== S) {
    const open = st.inputs.filter((i) => i.shape.slice(1).some((d) => typeof d !== 'number' || d <= 0)).map((i) => `"${i.name}" [${i.shape.join(' x ')}]`);
    throw new OptinError('unsupported', `${model.path}: layer 0 receives ${measured} tokens per example, but the calibration batch was built for ${S}${open.length ? `: the input ${open.join(', ')} has dynamic axes that set the token count; for images put the preprocessor_config.json (its "size") next to the model or pass --input-size HxW, otherwise export the model with fixed sizes` : ''}`);
  }
  const lc = lossConstants(st, batch, teacher, c);
  const plan = reuse && opts.buckets !== false ? await planBuckets(model, st, batch, teacher, ep) : undefined;
  const bucketed = plan?.runs ? { runs: plan.runs, ...bucketConstants(st, plan.runs, lc, S, c) } : undefined;
  const parts = bucketed
    ? bucketed.runs.map((r, p) => ({ batch: r.batch, layerInputs: r.teacher.layerInputs, rows: bucketed.local[p]!, constants: bucketed.constants[p]! }))
    : [{ batch, layerInputs: teacher.layerInputs, rows: lc.rows, constants: lc }];
  const layerInput = (l: number, part: (typeof parts)[number]): TensorData => {
    const layer = st.layers[l]!, b = part.batch.batch;
    return { type: 'float32', dims: layer.shape ? [b, ...layer.shape.inputDims] : [b, part.batch.seqLen, st.hidden], data: part.layerInputs[l]! };
  };
  /**
   * Where layer l's neurons can start inside the FFN: after its second matrix when a neuron's removal
   * is a rank-1 change there (rankOne.ts), else at the activations; with the dense values they then
   * read (the activations, that product, and what the graph reads from before them), per part, when
   * each is a float tensor with one row per example (else the neurons run from the layer input, as heads do).
   */
  let ix: GraphIndex | undefined;
  const graphIndex = (): GraphIndex => (ix ??= new GraphIndex(model.proto.graph!, model.ext));
  const neuronStart = async (l: number, rankOne = opts.rankOne !== false): Promise<NeuronStart | undefined> => {
    const layer = st.layers[l]!;
    if (!reuse || opts.neuronCut === false || !layer.ffn) return undefined;
    const r1 = rankOne ? rankOneStart(model, layer, graphIndex()) : undefined;
    const start = r1?.value ?? layer.ffn.hidden;
    const frontier = ffnFrontier(model.proto.graph!, layer, start).filter((n) => n !== layer.ffn!.hidden);
    const names = [...new Set([layer.ffn.hidden, start, ...frontier])];
    const values = await layerValues(model, st, l, parts.map((p) => ({ batch: p.batch, layerInput: layerInput(l, p) })), names, ep);
    if (!values.every((v, p) => names.every((n) => v.get(n)!.type === 'float32' && v.get(n)!.dims[0] === parts[p]!.batch.batch))) return undefined;
    if (r1) {
      const a = values[0]!.get(layer.ffn.hidden)!.dims, y = values[0]!.get(start)!.dims;
      const aligned = a.length === y.length && a.slice(0, -1).every((d, i) => d === y[i]) && a[a.length - 1] === r1.width && y[y.length - 1] === r1.out;
      if (!aligned) return neuronStart(l, false);
    }
    return {
      start, frontier, ...(r1 ? { rankOne: r1 } : {}),
      values: values.map((v) => new Map([...v].map(([n, t]) => [n, { type: 'float32' as const, dims: [...t.dims], data: t.data as Float32Array }]))),
    };
  };
  const perVariant = Math.max(...parts.map((p) => p.batch.batch * p.batch.seqLen));
  const m = Math.max(1, Math.floor((opts.chunkTokens ?? (teacher.provider === 'cpu' ? 1024 : GPU_CHUNK_TOKENS)) / perVariant));
  const dev = new DeviceFeeds(opts.deviceFeeds === false ? 'cpu' : teacher.provider);
  const rawHeads: RawLosses[] = [];
  const rawNeurons: RawLosses[] = [];
  let done = 0;
  let provider = 'cpu';
  let workDone = 0;
  let workTotal = 0;
  st.layers.forEach((l, i) => { workTotal += (L - i) * count(l); });
  const logitsName = scoredOutput(model.proto, st.outputs[0]!);
  /** One suffix graph of layer l (from its input, or from inside its FFN: {@link neuronStart}) scoring `elements`; `offset` = their place among the layer's. */
  const scoreSuffix = async (l: number, compared: number[], truncated: boolean, elements: Element[], offset: number, ns: NeuronStart | undefined): Promise<{ md: number[]; kl: number[]; provider: string }> => {
    const layer = st.layers[l]!;
    const nH = doHeads ? headCount(layer) : 0;
    const nIdx = neuronIdx(layer);
    const scored = [logitsName, ...(lc.others ?? []).map((o) => o.name)];
    const values = ns?.values;
    const neuronFrom = ns ? { start: ns.start, rank: values![0]!.get(ns.start)!.dims.length, values: new Map(ns.frontier.map((n) => [n, values![0]!.get(n)!.dims.length])) } : undefined;
    const proto = instrument(model, st, { maskLayers: [l], outputs: [...(truncated ? [] : scored), ...compared.map((k) => st.layers[k]!.feature)], ...(reuse ? { cutAt: l } : {}), ...(neuronFrom ? { neuronFrom } : {}), onlyOutputs: true });
    const b = new GraphBuilder(proto.graph!, defaultOpset(proto));
    const features = new Map(compared.map((k) => [k, st.layers[k]!.feature]));
    const mdName = bucketed ? undefined : appendManifoldLoss(b, features, lc, B);
    const termOf = (o: LossConstants, i: number): LossConstants => (i === 0 ? o : o.others![i - 1]!.constants);
    const terms = truncated ? [] : [{ name: logitsName, constants: lc }, ...(lc.others ?? [])].map((o, i) => {
      const name = o.constants.pixels ? gatherPixels(b, o.name, o.constants.pixels) : o.name;
      if (name !== o.name) b.output(name);
      return { name, index: i };
    });
    proto.graph!.output = proto.graph!.output.filter((o) => terms.some((t) => t.name === o.name));
    if (mdName) b.output(mdName);
    const rowOutputs = bucketed ? appendRowOutputs(b, features) : undefined;
    const gram = bucketed ? manifoldModel(new Map(compared.map((k) => [k, bucketed.teacherRows.get(k)!]))) : undefined;
    const gramSession = gram ? (await createSession(gram.bytes, { ep, label: `${model.path} (layer ${l} manifold term)` })).session : undefined;
    const inputs = new Set(proto.graph!.input.map((i) => i.name));
    const hd = headMaskDims(layer) ?? { dims: [], repeat: 0, windows: 1 };
    const H = headCount(layer);
    const hWidth = H * hd.repeat;
    const I = layer.ffn?.width ?? 0;
    return scoreVariants({
      model, proto, label: `layer ${l} ${ns ? 'neuron ' : ''}suffix`, ep, dev, count: elements.length, perRun: m, parts: parts.length, ...(opts.signal ? { signal: opts.signal } : {}),
      feeds: async (start, v, p) => {
        const part = parts[p]!;
        const B = part.batch.batch, S = part.batch.seqLen;
        const hRows = B * hd.windows;
        const chunk = elements.slice(start, start + v);
        const feeds: Record<string, ort.Tensor> = {};
        if (reuse && inputs.has(layer.input)) feeds[layer.input] = await dev.tiled(`layer ${l} input/${p}`, layerInput(l, part), v);
        for (const [name, t] of values?.[p] ?? []) if (inputs.has(name) && name !== ns?.rankOne?.value) feeds[name] = await dev.tiled(`${name}/${p}`, t, v);
        if (ns?.rankOne && inputs.has(ns.rankOne.value)) feeds[ns.rankOne.value] = withoutNeurons(ns.rankOne, values![p]!.get(ns.rankOne.value)!, values![p]!.get(layer.ffn!.hidden)!, chunk);
        for (const [name, t] of Object.entries(part.batch.feeds)) if (inputs.has(name)) feeds[name] = await dev.tiled(`${name}/${p}`, t, v);
        if (bucketed) {
          feeds[ROWS_INPUT] = new ort.Tensor('int64', BigInt64Array.from(part.rows, BigInt), [part.rows.length]);
          feeds[ROWS_SHAPE_INPUT] = new ort.Tensor('int64', BigInt64Array.from([v, B * S, st.hidden], BigInt), [3]);
        }
        if (inputs.has(headMaskName(l))) {
          const hm = new Float32Array(v * hRows * hWidth).fill(1);
          chunk.forEach((e, j) => {
            if (e.kind === 'head') for (let r = j * hRows; r < (j + 1) * hRows; r++) hm.fill(0, r * hWidth + e.index * hd.repeat, r * hWidth + (e.index + 1) * hd.repeat);
          });
          feeds[headMaskName(l)] = new ort.Tensor('float32', hm, hd.dims.map((d) => (d === 'n' ? v * hRows : d)) as number[]);
        }
        if (inputs.has(neuronMaskName(l))) {
          const nm = new Float32Array(v * B * Math.max(I, 1)).fill(1);
          chunk.forEach((e, j) => {
            if (e.kind === 'neuron') for (let r = j * B; r < (j + 1) * B; r++) nm[r * I + e.index] = 0;
          });
          feeds[neuronMaskName(l)] = new ort.Tensor('float32', nm, neuronMaskDims(layer).map((d) => (d === 'n' ? v * B : d)) as number[]);
        }
        return feeds;
      },
      read: async (outs, v) => {
        const klv = new Array<number>(v).fill(0);
        outs.forEach((out, p) => {
          for (const t of terms) outputLoss(out[t.name]!.data as Float32Array, v, termOf(parts[p]!.constants, t.index), c.temperature).forEach((x, j) => { klv[j] = klv[j]! + x; });
        });
        if (!gramSession) return { md: outs[0]![mdName!]!.data as Float32Array, kl: klv };
        const gramFeeds = Object.fromEntries([...rowOutputs!].map(([k, name]) => [rowsOutputName(k), concatVariantRows(outs.map((o) => o[name]!), v)]));
        const res = await runSession(gramSession, gramFeeds, `${model.path} (layer ${l} manifold term)`);
        return { md: res[gram!.output]!.data as Float32Array, kl: klv };
      },
      onRun: (start, v, { md, kl }) => {
        done += v;
        const el = elapsed();
        workDone += v * (L - l);
        // Elapsed time per unit of suffix work (an element of layer l runs L - l layers) times the work left:
        // within 0.96-1.21x of the time actually left from 5% of the run on (npm run bench:eta).
        const eta = (el / workDone) * (workTotal - workDone);
        // The layer's heads are all done while its neurons still run: show its head row now.
        const at = offset + start;
        const headsDone = nH > 0 && nIdx.length > 0 && at < nH && at + v >= nH;
        const headRow = headsDone ? { partial: { layer: l, heads: balance([...rawHeads, { md: md.slice(0, nH), kl: kl.slice(0, nH) }], 'head', c, L)[l]! } } : {};
        opts.onProgress?.({ phase: 'layer', layer: l, done, total, elapsed: el, eta, ...headRow });
      },
    }).finally(async () => { await gramSession?.release(); });
  };
  try {
    for (let l = 0; l < L; l++) {
      checkCancelled(opts.signal);
      const layer = st.layers[l]!;
      const nH = doHeads ? headCount(layer) : 0;
      const nIdx = neuronIdx(layer);
      const zeros = (n: number): RawLosses => ({ md: new Array<number>(n).fill(0), kl: new Array<number>(n).fill(0) });
      if (count(layer) === 0) {
        rawHeads.push(zeros(headCount(layer)));
        rawNeurons.push(zeros(layer.ffn?.width ?? 0));
        continue;
      }
      const full = comparedLayers(l, L);
      const truncated = opts.horizon !== undefined && full.length > opts.horizon;
      const compared = truncated ? full.slice(0, Math.max(1, opts.horizon!)) : full;
      const H = headCount(layer);
      const I = layer.ffn?.width ?? 0;
      const all: Element[] = [
        ...Array.from({ length: nH }, (_, index) => ({ kind: 'head' as const, index })),
        ...nIdx.map((index) => ({ kind: 'neuron' as const, index })),
      ];
      // Heads run from the layer input; neurons, where the dense run supplies what they need, from the FFN activations.
      const ns = nIdx.length ? await neuronStart(l) : undefined;
      const suffixes = ns ? [{ elements: all.slice(0, nH), offset: 0 }, { elements: all.slice(nH), offset: nH, ns }] : [{ elements: all, offset: 0 }];
      const md: number[] = [];
      const kl: number[] = [];
      for (const sfx of suffixes) {
        if (!sfx.elements.length) continue;
        const r = await scoreSuffix(l, compared, truncated, sfx.elements, sfx.offset, sfx.ns);
        provider = r.provider;
        md.push(...r.md);
        kl.push(...r.kl);
      }
      rawHeads.push(nH ? { md: md.slice(0, nH), kl: kl.slice(0, nH) } : zeros(H));
      if (!doNeurons) rawNeurons.push(zeros(I));
      else {
        const r = zeros(I);
        nIdx.forEach((j, k) => { r.md[j] = md[nH + k]!; r.kl[j] = kl[nH + k]!; });
        rawNeurons.push(r);
      }
      const partial = { layer: l, heads: balance(rawHeads, 'head', c, L)[l]!, neurons: balance(rawNeurons, 'neuron', c, L)[l]! };
      opts.onProgress?.({ phase: 'layer', layer: l, done, total, elapsed: elapsed(), partial });
    }
  } finally {
    await dev.close();
  }
  return {
    heads: balance(rawHeads, 'head', c),
    neurons: balance(rawNeurons, 'neuron', c),
    raw: { heads: rawHeads, neurons: rawNeurons },
    outputLoss: lc.kind === 'cosine' ? 'cosine-distance' : lc.kind,
    tokenRows: lc.rows.length,
    calibration: {
      examples: B, seqLen: S, meanLength: batch.meanLength, source: batch.source, ...(batch.warning ? { warning: batch.warning } : {}),
      ...(bucketed ? { buckets: bucketed.runs.map((r) => ({ examples: r.batch.batch, seqLen: r.batch.seqLen })) } : {}),
    },
    mode: 'exact',
    provider,
    ...(dev.onDevice ? { inputsOnDevice: true } : {}),
    seconds: elapsed(),
  };
}
