import * as fs from 'node:fs';
import { transformerLayerCount, type PlanFile, type ScoresFile } from '../engine/plan/schema';
import * as path from 'node:path';
import type { AppliedView, FrontierView, ModelSummary, PlanView } from '../shared/protocol';
import type { InspectReport } from '../engine/inspect';
import type { SweepReport } from '../engine/worker/sweep';
import type { Comparison } from '../engine/worker/pipeline';
import { macCosts } from '../engine/plan/costs';
import { importanceRanks } from '../shared/ranks';
import { planWarnings } from '../engine/plan/warnings';

/** Parameters of the prunable projections (weights + biases) for kept heads (key/value groups) and neurons per transformer layer. */
function prunableParams(plan: PlanFile, heads: number[], neurons: number[]): number {
  const D = plan.model.hidden;
  return plan.model.layers.slice(0, transformerLayerCount(plan.model)).reduce((a, g, l) => {
    const q = g.group ?? 1, kv = g.headSize + g.vHeadSize / q;
    const perHead = (q * g.headSize + (g.sharedKv ? 0 : kv)) * (D + 1) + g.vHeadSize * D;
    return a + heads[l]! * perHead + (g.sharedKv && heads[l]! > 0 ? kv * (D + 1) : 0) + neurons[l]! * ((g.gated ? 3 : 2) * D + 1);
  }, 0);
}

/** The panel's view of a plan. */
export function planView(plan: PlanFile): PlanView {
  return {
    budget: plan.budget,
    keepHeads: plan.keep.heads,
    keepNeurons: plan.keep.neurons,
    macs: { seqLen: plan.macs.seqLen, baseline: plan.macs.baseline, kept: plan.macs.kept },
    ...(plan.model.channels ? {} : {
      parameters: {
        before: prunableParams(plan, plan.model.layers.map((g) => g.heads), plan.model.layers.map((g) => g.ffn)),
        after: prunableParams(plan, plan.layers.map((l) => l.heads), plan.layers.map((l) => l.neurons)),
      },
    }),
    warnings: planWarnings(plan),
    ...(plan.latency ? { latency: { target: plan.latency.target, predictedMs: plan.latency.predictedMs, denseMs: plan.latency.denseMs, shape: plan.latency.phase === 'decode' ? `one decode step of batch ${plan.latency.batch} after a cache of ${plan.latency.seqLen} tokens` : `batch ${plan.latency.batch} x ${plan.latency.seqLen} tokens`, provider: plan.latency.provider } } : {}),
  };
}

/** Scores as CSV: layer, kind, index, score, rank, kept (under the plan when given). */
export function scoresCsv(scores: ScoresFile, plan?: PlanFile): string {
  const lines = ['layer,kind,index,score,rank,kept'];
  const hr = importanceRanks(scores.heads), nr = importanceRanks(scores.neurons);
  const kept = (set: number[][] | undefined, l: number, i: number): string => (set ? (set[l]!.includes(i) ? '1' : '0') : '');
  scores.heads.forEach((row, l) => row.forEach((s, h) => lines.push(`${l},head,${h},${s},${hr[l]![h]},${kept(plan?.keep.heads, l, h)}`)));
  const L = transformerLayerCount(scores.model);
  scores.neurons.forEach((row, l) => row.forEach((s, j) => lines.push(`${l},${l < L ? 'neuron' : 'channel'},${j},${s},${nr[l]![j]},${kept(plan?.keep.neurons, l, j)}`)));
  return lines.join('\n') + '\n';
}

/** Turn an engine report into the panel's summary (MACs at `source`'s sequence length). */
export function toSummary(r: InspectReport, source: 'calibration' | 'default' = 'default'): ModelSummary {
  const s = r.structure;
  if (r.channels) {
    return {
      path: r.path, fileName: path.basename(r.path), architecture: s.architecture, modality: s.modality, hidden: 0, norm: 'post',
      parameters: r.parameters, fileBytes: r.fileBytes, seqLen: 1, seqLenSource: 'fixed', totalMacs: r.channels.macs.prunable, units: 'channels',
      layers: r.channels.blocks.map((b) => ({ name: b.name, heads: 0, headSize: 0, ffn: b.channels, qkv: '-', activation: null, macs: b.macs })),
      ...(r.channels.note ? { note: r.channels.note } : {}),
    };
  }
  return {
    path: r.path,
    fileName: path.basename(r.path),
    architecture: s.architecture,
    modality: s.modality,
    hidden: s.hidden,
    norm: s.norm,
    parameters: r.parameters,
    fileBytes: r.fileBytes,
    seqLen: r.macs.seqLen,
    seqLenSource: s.modality === 'vision' ? 'fixed' : source,
    totalMacs: r.macs.total + (r.hybrid?.macs.prunable ?? 0),
    ...(s.layers.some((l) => l.shape) ? { perLayerGeometry: true } : {}),
    ...(s.notes?.length ? { note: s.notes.join(' ') } : {}),
    layers: s.layers.map((l, i): ModelSummary['layers'][number] => ({
      heads: l.attention?.heads ?? 0,
      headSize: l.attention?.headSize ?? 0,
      ...(l.attention?.group ? { group: l.attention.group } : {}),
      ffn: l.ffn?.width ?? 0,
      qkv: l.attention?.layout ?? '(no attention)',
      activation: l.ffn?.activation ?? null,
      macs: r.macs.layers[i]!.total,
    })).concat((r.hybrid?.blocks ?? []).map((b) => ({ name: b.name, heads: 0, headSize: 0, ffn: b.channels, qkv: '-', activation: null, macs: b.macs }))),
  };
}

/** The summary with every MAC count at the scores' sequence length (the calibration data's), from the geometry alone. */
export function atScoresSeqLen(summary: ModelSummary, scores: ScoresFile): ModelSummary {
  if (summary.seqLenSource === 'fixed') return summary;
  const g = scores.model.layers;
  const c = macCosts(g, scores.model.hidden, scores.macSeqLen);
  const L = transformerLayerCount(scores.model);
  const layers = summary.layers.map((l, i) => (i < L ? { ...l, macs: c.head(i, g[i]!.heads) + c.neuron(i, g[i]!.ffn) } : l));
  return { ...summary, seqLen: scores.macSeqLen, seqLenSource: 'calibration', layers, totalMacs: layers.reduce((a, l) => a + l.macs, 0) };
}

/** The panel's view of a sweep. */
export function frontierView(r: SweepReport): FrontierView {
  const metric = r.dense.miou !== undefined ? 'mIoU' : r.evaluation.labelled ? 'accuracy' : 'agreement';
  const value = (x: { accuracy?: number; miou?: number }, agreement: number): number => (metric === 'mIoU' ? x.miou ?? 0 : metric === 'accuracy' ? x.accuracy ?? 0 : agreement);
  return {
    metric, examples: r.evaluation.examples, source: path.basename(r.evaluation.data), heldOut: r.evaluation.heldOut,
    dense: { value: value(r.dense, 1), medianMs: r.dense.medianMs, p10Ms: r.dense.p10Ms, p90Ms: r.dense.p90Ms },
    points: r.points.map((p) => ({
      budget: p.target, macsRatio: p.macsRatio, value: value(p, p.agreement),
      speedup: p.speedup, medianMs: p.medianMs, p10Ms: p.p10Ms, p90Ms: p.p90Ms, output: p.output,
    })),
    bench: { shape: r.bench.shape, runs: r.bench.runs, threads: r.bench.threads, provider: r.bench.provider },
    files: sweepFiles(r),
  };
}

/** The files a sweep wrote that are still on disk, their folder and total size. */
export function sweepFiles(r: SweepReport): { folder: string; count: number; bytes: number; paths: string[] } {
  const paths = r.points.flatMap((p) => p.files).filter((f) => fs.existsSync(f));
  const count = r.points.filter((p) => fs.existsSync(p.output)).length;
  return { folder: path.dirname(r.points[0]?.output ?? r.model), count, bytes: paths.reduce((a, f) => a + fs.statSync(f).size, 0), paths };
}

/** A prune report's comparison as the panel shows it (the same measure as the written model's line). */
export function comparisonView(c: Comparison): NonNullable<AppliedView['comparisons']>[number] {
  const e = c.evaluation;
  if (e.segmentation) return { kind: c.kind, measure: 'mIoU', value: e.segmentation.miou };
  if (e.accuracy !== undefined) return { kind: c.kind, measure: 'accuracy', value: e.accuracy };
  return { kind: c.kind, measure: 'agreement', value: e.reference?.agreement ?? 0 };
}
