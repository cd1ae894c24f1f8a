import type * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import { sessionBytes } from '../onnx/writer';
import type { ModelStructure } from '../structure/types';
import type { EpChoice } from '../runtime/providers';
import { createSession, describeSession, runSession, type Session } from '../runtime/session';
import { quantile, timeInterleaved } from '../eval/bench';
import { benchFeeds, decodeFeeds } from '../data/synthetic';
import { GraphIndex } from '../onnx/graph';
import type { ModelProto } from '../onnx/schema';
import { modelInputs } from '../structure/inputs';
import { instrument } from '../optin/instrument';
import { applyKeep, type KeepSet } from '../prune/apply';
import { extractSubgraph } from '../graph/surgery';
import { OptinError } from '../errors';
import { sha256File } from '../util/atomic';
import type { LatencyCurve, LatencyTable } from './table';

/** Options for {@link measureLatencyTable}. */
export interface LatencyOptions {
  ep?: EpChoice;
  /** Batch size of the timed runs (default 32; a model with a fixed batch uses its own). */
  batch?: number;
  /** Tokens per example for text models (vision models use their patch count); with `decode`, the cache's context length. */
  seqLen?: number;
  /** Time one decode step with the key/value cache instead of the whole sequence (decoders exported with their cache). */
  decode?: boolean;
  /** Timed runs per configuration after 3 warm-up rounds (default: enough rounds for about 3 s of timing, 15 to 200). */
  runs?: number;
  threads?: number;
  signal?: AbortSignal;
  onStep?: (what: string) => void;
}

/** Kept widths timed for a sublayer of `full` elements: 0, 1/8 .. 1 of the width (heads: every count up to 4). */
export function widthGrid(full: number): number[] {
  const fr = full <= 4 ? Array.from({ length: full + 1 }, (_, i) => i / Math.max(full, 1)) : [0, 0.125, 0.25, 0.5, 0.75, 1];
  return [...new Set(fr.map((f) => Math.round(f * full)))].sort((a, b) => a - b);
}

function geometryKey(l: ModelStructure['layers'][number]): string {
  const a = l.attention;
  return `${a?.heads ?? 0}/${a?.headSize ?? 0}/${a?.vHeadSize ?? 0}/${l.ffn?.width ?? 0}/${a?.layout ?? 'none'}`;
}

function firstN(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Run the dense model once on the benchmark inputs and return every layer's residual input. */
async function layerInputs(model: OnnxModel, st: ModelStructure, feeds: Record<string, ort.Tensor>, ep: EpChoice, threads: number): Promise<ort.Tensor[]> {
  const proto = instrument(model, st, { maskLayers: [], outputs: st.layers.map((l) => l.input), onlyOutputs: true });
  const s = await createSession(sessionBytes({ ...model, proto }), { ep, threads, label: `${model.path} (layer inputs)` });
  try {
    const out = await runSession(s.session, feeds, `${model.path} (layer inputs)`);
    return st.layers.map((l) => out[l.input] as ort.Tensor);
  } finally {
    await s.session.release();
  }
}

/**
 * Build the per-layer latency table of a model (Kwon et al. 2022's lookup-table idea, on the
 * model's own graph): for one layer of every distinct geometry, the layer is cut out of the model
 * (its residual input becomes a graph input, its residual output the graph output) and physically
 * pruned to several head counts (FFN dense) and neuron counts (attention dense); every variant and
 * the whole dense model are timed interleaved in one run on the chosen provider, at the batch and
 * sequence length given, fed with the layer's real input from a dense run.
 * @throws OptinError('cancelled'|'runtime'|'unsupported')
 */
export async function measureLatencyTable(model: OnnxModel, st: ModelStructure, opts: LatencyOptions = {}): Promise<LatencyTable> {
  const ep = opts.ep ?? 'cpu', threads = opts.threads ?? 0;
  const fixedBatch = st.inputs.map((i) => i.shape[0]).find((d) => typeof d === 'number' && d > 0);
  const batch = typeof fixedBatch === 'number' ? fixedBatch : opts.batch ?? 32;
  if (opts.decode && !st.layers.some((l) => l.attention?.cache?.length)) {
    throw new OptinError('usage', `${model.path}: decode-step latency needs a decoder exported with its key/value cache (past_key_values inputs, present outputs); this model has none: time the whole sequence (the default) or export it with use_cache=True`);
  }
  // A decode step's cache inputs follow each variant's kept key/value heads, so every graph gets its own feeds.
  const feedsOf = (proto: ModelProto): Record<string, ort.Tensor> => (opts.decode
    ? decodeFeeds({ inputs: modelInputs(new GraphIndex(proto.graph!, model.ext)), ...(st.vocabSize ? { vocabSize: st.vocabSize } : {}) }, batch, opts.seqLen ?? 48)
    : benchFeeds(st, batch, opts.seqLen ?? 48));
  const feeds = feedsOf(model.proto);
  opts.onStep?.(`running the dense model once for each layer's input${opts.decode ? ' (one decode step)' : ''}`);
  const inputs = await layerInputs(model, st, feeds, ep, threads).catch((e: unknown) => {
    if (!opts.decode || !(e instanceof OptinError) || e.code !== 'runtime') throw e;
    throw new OptinError('runtime', `${model.path}: one decode step after a cache of ${opts.seqLen ?? 48} tokens failed (${e.message.replace(`${model.path} (layer inputs): `, '')}); the model may hold fewer positions (a position or rotary table): give a shorter context (--bench-seq-len, or --seq-len for optin latency)`);
  });
  const seqLen = opts.decode ? opts.seqLen ?? 48 : inputs[0]!.dims[1]!;
  const reps = new Map<string, number>();
  for (const l of st.layers) if (!reps.has(geometryKey(l))) reps.set(geometryKey(l), l.index);
  const full: KeepSet = { heads: st.layers.map((l) => firstN(l.attention?.heads ?? 0)), neurons: st.layers.map((l) => firstN(l.ffn?.width ?? 0)) };
  const sessions: Session[] = [];
  const jobs: Array<() => Promise<unknown>> = [];
  const configs: Array<{ rep: number; kind: 'heads' | 'neurons' | 'dense'; kept: number; job: number }> = [];
  const add = async (rep: number, kind: 'heads' | 'neurons' | 'dense', kept: number): Promise<void> => {
    const l = st.layers[rep]!;
    const keep: KeepSet = { heads: full.heads.slice(), neurons: full.neurons.slice() };
    if (kind === 'heads') keep.heads[rep] = firstN(kept);
    if (kind === 'neurons') keep.neurons[rep] = firstN(kept);
    const pruned = kind === 'dense' ? model.proto : applyKeep(model, st, keep);
    const graph = extractSubgraph(pruned.graph!, new Map([[l.input, [...inputs[rep]!.dims]]]), [l.output]);
    const label = `${model.path} (layer ${rep}, ${kind === 'dense' ? 'dense' : `${kept} ${kind}`})`;
    const s = await createSession(sessionBytes({ ...model, proto: { ...pruned, graph } }), { ep, threads, label, noSpin: true });
    sessions.push(s);
    const own = opts.decode && kind !== 'dense' ? feedsOf(pruned) : feeds;
    const f: Record<string, ort.Tensor> = { [l.input]: inputs[rep]! };
    for (const n of s.session.inputNames) if (n !== l.input) f[n] = own[n] ?? missingInput(model.path, rep, n);
    configs.push({ rep, kind, kept, job: jobs.length });
    jobs.push(() => runSession(s.session, f, label));
  };
  try {
    const dense = await createSession(model.path, { ep, threads, label: model.path, noSpin: true });
    sessions.push(dense);
    jobs.push(() => runSession(dense.session, feeds, model.path));
    const withHeads = st.layers.findIndex((l) => l.attention);
    const floorKeep: KeepSet = { heads: st.layers.map((_, i) => (i === withHeads ? [0] : [])), neurons: st.layers.map(() => []) };
    const floorProto = applyKeep(model, st, floorKeep);
    const floor = await createSession(sessionBytes({ ...model, proto: floorProto }), { ep, threads, label: `${model.path} (floor plan)`, noSpin: true });
    sessions.push(floor);
    const floorFeeds = opts.decode ? feedsOf(floorProto) : feeds;
    jobs.push(() => runSession(floor.session, floorFeeds, `${model.path} (floor plan)`));
    for (const rep of reps.values()) {
      if (opts.signal?.aborted) throw new OptinError('cancelled', 'latency measurement cancelled');
      opts.onStep?.(`cutting layer ${rep} out at ${reps.size > 1 ? 'each geometry\'s' : 'every'} width`);
      const l = st.layers[rep]!;
      await add(rep, 'dense', 0);
      const H = l.attention?.heads ?? 0;
      for (const k of widthGrid(H)) if (k < H) await add(rep, 'heads', k);
      const block = l.ffn?.down.blockSize ?? 1;
      for (const k of new Set(widthGrid(l.ffn?.width ?? 0).map((x) => Math.floor(x / block) * block))) if (k < (l.ffn?.width ?? 0)) await add(rep, 'neurons', k);
    }
    const round = (await timeInterleaved(jobs, 1, 3, opts.signal)).reduce((a, t) => a + t[0]!, 0);
    const runs = opts.runs ?? Math.min(200, Math.max(15, Math.ceil(3000 / round)));
    opts.onStep?.(`timing ${jobs.length} graphs interleaved, ${runs} runs each`);
    const times = await timeInterleaved(jobs, runs, 0, opts.signal);
    const med = times.map((t) => quantile(t, 0.5));
    const curve = (rep: number, kind: 'heads' | 'neurons', fullWidth: number): LatencyCurve => {
      const pts = configs.filter((c) => c.rep === rep && c.kind === kind).map((c) => ({ k: c.kept, ms: med[c.job]! }));
      pts.push({ k: fullWidth, ms: med[configs.find((c) => c.rep === rep && c.kind === 'dense')!.job]! });
      pts.sort((a, b) => a.k - b.k);
      return { kept: pts.map((p) => p.k), ms: pts.map((p) => p.ms) };
    };
    const perRep = new Map([...reps.values()].map((rep) => {
      const l = st.layers[rep]!;
      return [rep, { heads: curve(rep, 'heads', l.attention?.heads ?? 0), neurons: curve(rep, 'neurons', l.ffn?.width ?? 0) }];
    }));
    return {
      schema: 'optin-latency', version: 1, model: { path: model.path, sha256: sha256File(model.path) },
      provider: describeSession(dense), batch, seqLen, ...(opts.decode ? { phase: 'decode' as const } : {}), threads, runs, denseMs: med[0]!,
      floor: { heads: floorKeep.heads.map((h) => h.length), neurons: floorKeep.neurons.map(() => 0), ms: med[1]! },
      layers: st.layers.map((l) => ({ ...perRep.get(reps.get(geometryKey(l))!)!, measuredOn: reps.get(geometryKey(l))! })),
      created: new Date().toISOString(),
    };
  } finally {
    for (const s of sessions) await s.session.release();
  }
}

function missingInput(model: string, layer: number, name: string): never {
  throw new OptinError('unsupported', `${model}: layer ${layer} cut out of the model still needs input "${name}", which the benchmark cannot make`);
}
