import type { OnnxModel } from '../onnx/model';
import { GraphIndex } from '../onnx/graph';
import { loadCalibration, type CalibrationBatch } from '../data/calibration';
import type { ModelRef, PlanFile, ScoresFile } from '../plan/schema';
import { scoresFile } from '../plan/files';
import type { Scores, ScoreJob, ScoreProgress } from '../optin/types';
import { OptinError } from '../errors';
import type { InputSize } from '../data/types';
import { groupMacs, macTerms, nodeMacs, termsMacs, type MacTerm } from './macs';
import { scoreChannels } from './scorer';
import { channelWeightScores } from './baselines';
import { MIN_CHANNEL_EXAMPLES, affordableExamples, estimateChannelCost } from './cost';
import type { ChannelStructure } from './structure';

/** One prunable block as `optin inspect` reports it. */
export interface ChannelBlock {
  name: string;
  kind: 'channels';
  /** The group's prunable width. */
  channels: number;
  /** MACs per example of the group's share of its convolutions/projections (a shared conv is split between its groups). */
  macs: number;
  producers: string[];
  consumers: string[];
}

/** The channel side of `optin inspect`. */
export interface ChannelSummary {
  blocks: ChannelBlock[];
  /** Candidates that are not prunable alone, grouped by reason. */
  refused: Array<{ reason: string; op: string; count: number; example: string }>;
  /** Prunable MACs per example (every node a group touches) and all MACs of Conv/MatMul/Gemm nodes. */
  macs: { prunable: number; all: number };
  terms: MacTerm[];
  /** Set when the graph has attention transformer detection did not recognise (its heads are not pruned). */
  note?: string;
  /** The image height and width the MACs were measured at, when the model's are dynamic. */
  inputSize?: InputSize;
}

/** Why a graph with attention is pruned by channel groups only. */
export function attentionNote(cs: ChannelStructure): string | undefined {
  const a = cs.unrecognisedAttention;
  return a ? `${a.count} attention Softmax node(s) (e.g. ${a.example}) were not recognised as multi-head attention: their heads are not pruned; only its channel groups are (MLP widths and other coupled channels)` : undefined;
}

/** Inspect summary of a channel network. */
export function channelSummary(model: OnnxModel, cs: ChannelStructure): ChannelSummary {
  const ix = new GraphIndex(model.proto.graph!, model.ext);
  const terms = macTerms(ix, cs.shapes, cs.groups);
  const widths = cs.groups.map((g) => g.width);
  const per = groupMacs(terms, widths);
  const refused = new Map<string, { reason: string; op: string; count: number; example: string }>();
  for (const r of cs.refused) {
    const k = `${r.op}: ${r.reason}`;
    const e = refused.get(k);
    if (e) e.count++;
    else refused.set(k, { reason: r.reason, op: r.op, count: 1, example: r.node });
  }
  let all = 0;
  for (const n of ix.graph.node) {
    if (n.opType !== 'Conv' && n.opType !== 'MatMul' && n.opType !== 'Gemm') continue;
    all += nodeMacs(ix, cs.shapes, n)?.macs ?? 0;
  }
  const note = attentionNote(cs);
  return {
    blocks: cs.groups.map((g, l) => ({ name: g.name, kind: 'channels', channels: g.width, macs: per[l]!, producers: g.producers, consumers: g.consumers })),
    refused: [...refused.values()],
    macs: { prunable: termsMacs(terms, widths), all },
    terms,
    ...(note ? { note } : {}),
    ...(cs.inputSize ? { inputSize: cs.inputSize } : {}),
  };
}

/** Model identity + group geometry (a group is a "layer" of 0 heads and `width` neurons) + the MAC terms. */
export function channelModelRef(file: string, sha256: string, cs: ChannelStructure, terms: MacTerm[]): ModelRef {
  return {
    path: file, sha256, architecture: cs.architecture, modality: cs.modality, hidden: 0, norm: 'post',
    layers: cs.groups.map((g) => ({ heads: 0, headSize: 0, vHeadSize: 0, ffn: g.width })),
    channels: { names: cs.groups.map((g) => g.name), terms },
  };
}

function weightRun(model: OnnxModel, cs: ChannelStructure, batch: CalibrationBatch, kind: 'l1' | 'magnitude'): Scores {
  const t0 = performance.now();
  const neurons = channelWeightScores(model, cs, kind);
  return {
    heads: cs.groups.map(() => []), neurons, raw: { heads: cs.groups.map(() => ({ md: [], kl: [] })), neurons: cs.groups.map(() => ({ md: [], kl: [] })) },
    outputLoss: 'kl', tokenRows: 0,
    calibration: { examples: batch.batch, seqLen: batch.seqLen, meanLength: batch.meanLength, source: batch.source, ...(batch.warning ? { warning: batch.warning } : {}) },
    mode: 'magnitude', provider: 'none', seconds: (performance.now() - t0) / 1000,
  };
}

const minutes = (s: number): string => (s < 90 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);

/**
 * Auto mode for channel groups: exact scores on every calibration example when the estimate fits the
 * time budget (`timeBudget`, default 600 s), else on as many of the first examples as fit (the loader
 * draws them round-robin over classes), never fewer than {@link MIN_CHANNEL_EXAMPLES}.
 */
async function fitTimeBudget(model: OnnxModel, cs: ChannelStructure, batch: CalibrationBatch, job: ScoreJob): Promise<{ batch: CalibrationBatch; reason: string }> {
  const budget = job.timeBudget ?? 600;
  const est = await estimateChannelCost(model, cs, batch, job.ep);
  const n = affordableExamples(batch.batch, est.secondsFor, budget);
  if (n === batch.batch) return { batch, reason: `--mode ${job.mode}: exact on all ${n} examples (estimated ${minutes(est.seconds)}, within the ${minutes(budget)} budget)` };
  const fewer = await loadCalibration(model.path, cs, { ...job.data, samples: n });
  return { batch: fewer, reason: `--mode ${job.mode}: exact on ${fewer.batch} of the ${batch.batch} calibration examples to fit the ${minutes(budget)} budget (all ${batch.batch}: estimated ${minutes(est.seconds)}; --mode exact scores on all)` };
}

/** Score a channel network (exact OPTIN, or a weight baseline) into a scores file. */
export async function runChannelScoreJob(model: OnnxModel, cs: ChannelStructure, sha256: string, job: ScoreJob, onProgress: (p: ScoreProgress, warning?: string) => void, signal: AbortSignal): Promise<ScoresFile> {
  const batch = await loadCalibration(model.path, cs, job.data);
  if (batch.warning) onProgress({ phase: 'teacher', done: 0, total: 0, elapsed: 0 }, batch.warning);
  const note = attentionNote(cs);
  if (note) onProgress({ phase: 'teacher', done: 0, total: 0, elapsed: 0 }, note);
  const ranking = job.ranking ?? 'optin';
  if (ranking === 'wanda') throw new OptinError('usage', `${model.path}: --ranking wanda ranks attention heads and FFN neurons; this model is pruned by channel groups (use optin, magnitude or l1)`);
  let scores: Scores;
  if (ranking === 'optin') {
    const fit = job.mode === 'exact' ? undefined : await fitTimeBudget(model, cs, batch, job);
    scores = await scoreChannels(model, cs, fit?.batch ?? batch, { ep: job.ep, onProgress, signal });
    scores.modeReason = fit?.reason ?? '--mode exact';
    if (fit && fit.batch.batch < batch.batch) scores.calibration.of = batch.batch;
  } else scores = weightRun(model, cs, batch, ranking);
  const terms = macTerms(new GraphIndex(model.proto.graph!, model.ext), cs.shapes, cs.groups);
  const file = scoresFile(channelModelRef(model.path, sha256, cs, terms), scores, 1);
  if (ranking === 'l1') file.modeReason = 'L1-norm filter ranking (Li et al., 2017)';
  return file;
}

/** Plan files name what they keep; check a channel plan fits the analysed groups. */
export function checkChannelPlan(cs: ChannelStructure, plan: PlanFile, where: string): number[][] {
  const keep = plan.keep.neurons;
  if (keep.length !== cs.groups.length) throw new OptinError('data', `${where}: the plan has ${keep.length} channel groups, the model ${cs.groups.length}`);
  cs.groups.forEach((g, l) => {
    const k = keep[l]!;
    if (!k.length || k.some((j) => !Number.isInteger(j) || j < 0 || j >= g.width) || new Set(k).size !== k.length) {
      throw new OptinError('data', `${where}: group ${g.name} keeps [${k.slice(0, 5).join(', ')}${k.length > 5 ? ', …' : ''}]; expected 1..${g.width} distinct channel indices below ${g.width}`);
    }
  });
  return keep;
}
