import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { qualityWarning } from '../eval/quality';
import type { DataOptions } from '../data/calibration';
import { testSplitFor } from '../data/discover';
import type { EpChoice } from '../runtime/providers';
import type { ScoreProgress } from '../optin/types';
import type { PlanFile, ScoresFile } from '../plan/schema';
import { makeLatencyPlan, makePlan } from '../plan/files';
import { defaultOutput } from '../prune/output';
import type { ApplyReport } from '../prune/applyPlan';
import type { EvalReport } from '../eval/evaluate';
import type { BenchReport } from '../eval/bench';
import { OptinError } from '../errors';
import type { EngineClient } from './client';
import type { ScoreJob } from './protocol';
import type { ChannelAllocation } from '../plan/channelSearch';

/** Everything `optin prune` (and the extension's Apply) does, in one request. */
export interface PruneRequest {
  model: string;
  /** Fraction of MACs to keep (ignored when `latency` is set). */
  budget: number;
  /**
   * Fraction of the dense model's measured latency to keep instead of a MAC budget: a per-layer
   * latency table is measured (or read from the cache) at the benchmark's batch and sequence length.
   */
  latency?: number;
  /** With `latency`: the target is one decode step with the key/value cache (at the benchmark's sequence length as context), not the whole sequence. */
  decode?: boolean;
  /** Kept neurons per layer a multiple of this (default 1). */
  multipleOf?: number;
  data: DataOptions;
  ep: EpChoice;
  ranking?: 'optin' | 'magnitude' | 'wanda' | 'l1';
  /** Scoring mode (default exact). */
  scoring?: Pick<ScoreJob, 'mode' | 'neuronExamples' | 'horizon' | 'timeBudget'>;
  /** Reuse scores instead of scoring again (must belong to the same model file). */
  scores?: ScoresFile;
  /** Repair before writing (see ApplyRequest.tune: unset = channel groups repaired, transformers not). */
  tune?: boolean;
  /** Channel groups: how the budget is shared (default: plan/files.ts DEFAULT_ALLOCATION). */
  allocation?: ChannelAllocation;
  /** Least-squares refit of the kept elements' output weights (see ApplyRequest.refit). */
  refit?: boolean;
  out?: string;
  /** Labelled data to measure accuracy before and after. */
  evalData?: DataOptions & { data: string };
  /**
   * Without `evalData`: evaluate on held-out data found from the calibration data (see
   * {@link evaluateOnCalibration}); data that cannot evaluate the model leaves `notEvaluated`.
   */
  evalBesideData?: boolean;
  /** How the user turns the repair on where warnings are shown (default `--tune`). */
  repairHint?: string;
  /**
   * Channel plans with an evaluation: also evaluate, at the same budget on the same data, the simple
   * baseline (L1-norm filters, uniform shares, the same repair) and the plan without its repair
   * (default on; each is one more apply and evaluation, written to a temporary folder).
   */
  compare?: boolean;
  /** Latency benchmark of original vs pruned (default on). */
  bench?: { batch: number; seqLen: number; runs: number } | false;
}

/** The report `optin prune` prints. */
export interface PruneReport {
  scores: ScoresFile;
  plan: PlanFile;
  apply: ApplyReport;
  /** Accuracy of the pruned model, with the original as reference. */
  evaluation?: EvalReport;
  bench?: BenchReport;
  /** Ideal speedup implied by the MAC counts (baseline / kept). */
  idealSpeedup: number;
  /** Latency target runs: the table used, and predicted vs measured latency of the pruned model. */
  latency?: LatencyOutcome;
  /** Set when the evaluation shows a much worse model (see {@link qualityWarning}). */
  warning?: string;
  /** With `evalBesideData`: the data evaluated on (`heldOut` false: the calibration examples themselves). */
  evaluatedOn?: { source: string; heldOut: boolean };
  /** With `evalBesideData`: why the written, verified model could not be evaluated. */
  notEvaluated?: string;
  /** Channel plans (see PruneRequest.compare): the same evaluation of other models at the same budget. */
  comparisons?: Comparison[];
}

/** Another model made at the same budget, evaluated on the same data as the written one. */
export interface Comparison {
  /** 'l1': L1-norm filters, uniform shares, the same repair (Li et al., 2017); 'unrepaired': this plan cut without the repair. */
  kind: 'l1' | 'unrepaired';
  evaluation: EvalReport;
}

/** What a written model's repair was, for {@link qualityWarning}. */
export function repairOf(a: ApplyReport): { channels: boolean; repaired: boolean } {
  return { channels: !!a.groups?.length, repaired: !!(a.reconstruction || a.tuning || a.refit) };
}

/** Predicted vs measured latency of a plan searched under a latency target. */
export interface LatencyOutcome {
  target: number;
  /** 'decode': one decode step with the cache at the table's context length; absent: the whole sequence. */
  phase?: 'decode';
  /** Dense latency in the table and predicted pruned latency. */
  tableDenseMs: number;
  predictedMs: number;
  /** predictedMs / tableDenseMs. */
  predictedRatio: number;
  /** Dense and pruned medians of the benchmark that followed (same run, interleaved). */
  measuredDenseMs?: number;
  measuredMs?: number;
  /** measuredMs / measuredDenseMs. */
  measuredRatio?: number;
  cached: boolean;
  tableFile: string;
}

/** Callbacks of a prune run. */
export interface PruneEvents {
  progress?: (p: ScoreProgress, warning?: string) => void;
  step?: (s: string) => void;
  /** Why an evaluation fell back to other data. */
  note?: (m: string) => void;
}

/**
 * Evaluate `output` against `reference` on held-out data: the test split beside the calibration
 * data when there is one (`train.tsv` -> `test.tsv`, `train/` -> `test/`; {@link testSplitFor}),
 * else the calibration file's examples after the ones scoring used; when the file has no more, on
 * the scored examples themselves (heldOut false). `source` is the file or folder evaluated on.
 * Cancellation and other failures of a held-out run propagate only when no fallback applies. A file
 * written elsewhere is read with the reference's tokenizer / preprocessor config (see evaluate).
 */
export async function evaluateOnCalibration(engine: EngineClient, output: string, reference: string, data: DataOptions & { data: string }, ep: EpChoice, signal?: AbortSignal, note?: (m: string) => void): Promise<{ evaluation: EvalReport; heldOut: boolean; source: string }> {
  const fallback = (e: unknown, what: string): void => {
    if (!(e instanceof OptinError) || e.code === 'cancelled') throw e;
    note?.(`${what} (${e.message})`);
  };
  const test = testSplitFor(data.data);
  if (test) {
    try {
      return { evaluation: await engine.evaluate(output, { data: { ...data, data: test, skip: 0, samples: 1000 }, reference, ep }, signal), heldOut: true, source: test };
    } catch (e) {
      fallback(e, `could not evaluate on the test split ${test}; using held-out calibration examples`);
    }
  }
  try {
    return { evaluation: await engine.evaluate(output, { data: { ...data, skip: data.samples ?? 32, samples: 500 }, reference, ep }, signal), heldOut: true, source: data.data };
  } catch (e) {
    fallback(e, 'no held-out examples to evaluate on; measuring on the calibration examples');
  }
  return { evaluation: await engine.evaluate(output, { data: { ...data, skip: 0 }, reference, ep }, signal), heldOut: false, source: data.data };
}

/** What a prune or a sweep evaluates its models on: labelled data when given, else held out from the calibration data. */
export interface EvaluationSource {
  model: string;
  data: DataOptions;
  ep: EpChoice;
  evalData?: DataOptions & { data: string };
}

/**
 * The models a CNN report is compared with, written into a temporary folder and evaluated as the
 * written ones: at each budget the L1-norm baseline (same repair, same widths rule), and each of
 * `unrepaired` cut without its repair.
 */
export async function comparisonEvaluations(engine: EngineClient, src: EvaluationSource, l1At: Array<{ budget: number; multipleOf: number; repaired: boolean }>, unrepaired: PlanFile[], step?: (s: string) => void, signal?: AbortSignal): Promise<{ l1: EvalReport[]; unrepaired: EvalReport[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-compare-'));
  const evaluate = async (file: string): Promise<EvalReport> => (src.evalData
    ? engine.evaluate(file, { data: src.evalData, reference: src.model, ep: src.ep }, signal)
    : (await evaluateOnCalibration(engine, file, src.model, { ...src.data, data: src.data.data! }, src.ep, signal)).evaluation);
  const written = async (plan: PlanFile, tune: boolean, file: string): Promise<EvalReport> => {
    await engine.apply({ model: src.model, plan, data: src.data, ep: src.ep, tune, out: path.join(dir, file) }, undefined, signal);
    return evaluate(path.join(dir, file));
  };
  try {
    const out: { l1: EvalReport[]; unrepaired: EvalReport[] } = { l1: [], unrepaired: [] };
    const l1 = l1At.length ? await engine.score({ model: src.model, data: src.data, ep: src.ep, mode: 'exact', ranking: 'l1' }, undefined, signal) : undefined;
    for (const [i, b] of l1At.entries()) {
      step?.(`baseline${l1At.length > 1 ? ` ${i + 1} of ${l1At.length}` : ''}: L1-norm filters at ${b.budget}${b.repaired ? ', same repair' : ''}`);
      out.l1.push(await written(makePlan(l1!, b.budget, l1!.macSeqLen, b.multipleOf), b.repaired, `l1-${i}.onnx`));
    }
    for (const [i, plan] of unrepaired.entries()) {
      step?.('the same plan without the repair');
      out.unrepaired.push(await written(plan, false, `unrepaired-${i}.onnx`));
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The L1 baseline (unless it is the ranking used) and, when repaired, the plan without its repair. */
async function compareChannelPlans(engine: EngineClient, req: PruneRequest, plan: PlanFile, apply: ApplyReport, ev: PruneEvents, signal?: AbortSignal): Promise<Comparison[]> {
  const repaired = !!apply.reconstruction;
  const l1At = (req.ranking ?? 'optin') !== 'l1' ? [{ budget: plan.budget, multipleOf: plan.multipleOf ?? 1, repaired }] : [];
  const r = await comparisonEvaluations(engine, req, l1At, repaired ? [plan] : [], ev.step, signal);
  return [...r.l1.map((evaluation) => ({ kind: 'l1' as const, evaluation })), ...r.unrepaired.map((evaluation) => ({ kind: 'unrepaired' as const, evaluation }))];
}

/** Score (unless given), plan, apply with verification, then evaluate and benchmark. */
export async function runPrune(engine: EngineClient, req: PruneRequest, ev: PruneEvents = {}, signal?: AbortSignal): Promise<PruneReport> {
  ev.step?.('checking model, data and destination');
  const out = req.out ?? (req.latency ? defaultOutput(req.model, req.latency, 'latency') : defaultOutput(req.model, req.budget));
  await engine.preflight({ model: req.model, data: req.data, out, ...(req.evalData ? { evalData: req.evalData } : {}), ...(req.refit ? { repair: '--refit' as const } : req.tune ? { repair: '--tune' as const } : {}) });
  const benchShape = { batch: 32, seqLen: 48, runs: 20, ...(req.bench || {}) };
  const lat = req.latency ? await engine.latency(req.model, { ep: req.ep, batch: benchShape.batch, seqLen: benchShape.seqLen, ...(req.decode ? { decode: true } : {}) }, ev.step, signal) : undefined;
  ev.step?.(req.scores ? 'using saved scores' : req.ranking === 'magnitude' ? 'ranking by weight magnitude' : req.ranking === 'wanda' ? 'ranking by activation-weighted magnitude' : req.ranking === 'l1' ? 'ranking filters by L1 norm' : 'scoring');
  const scores = req.scores ?? await engine.score({ model: req.model, data: req.data, ep: req.ep, mode: 'exact', ...req.scoring, ranking: req.ranking ?? 'optin' }, ev.progress, signal);
  ev.step?.(req.latency ? `planning at ${req.latency} of the dense latency` : `planning at budget ${req.budget}`);
  const plan = lat ? makeLatencyPlan(scores, lat.table, req.latency!, scores.macSeqLen, req.multipleOf ?? 1) : makePlan(scores, req.budget, scores.macSeqLen, req.multipleOf, req.allocation);
  const apply = await engine.apply({ model: req.model, plan, data: req.data, ep: req.ep, ...(req.tune !== undefined ? { tune: req.tune } : {}), ...(req.refit ? { refit: true } : {}), out }, ev.step, signal);
  const report: PruneReport = { scores, plan, apply, idealSpeedup: plan.macs.baseline / plan.macs.kept };
  if (lat && plan.latency) {
    report.latency = {
      target: req.latency!, tableDenseMs: plan.latency.denseMs, predictedMs: plan.latency.predictedMs, predictedRatio: plan.latency.predictedMs / plan.latency.denseMs,
      cached: lat.cached, tableFile: lat.file, ...(lat.table.phase ? { phase: lat.table.phase } : {}),
    };
  }
  if (req.evalData) {
    ev.step?.('evaluating accuracy');
    report.evaluation = await engine.evaluate(apply.output, { data: req.evalData, reference: req.model, ep: req.ep }, signal);
  } else if (req.evalBesideData && req.data.data) {
    ev.step?.('evaluating on held-out data');
    try {
      const h = await evaluateOnCalibration(engine, apply.output, req.model, { ...req.data, data: req.data.data }, req.ep, signal, ev.note);
      report.evaluation = h.evaluation;
      report.evaluatedOn = { source: h.source, heldOut: h.heldOut };
    } catch (e) {
      // The model is written and verified; data that cannot evaluate it (labels the model does not have) is said, not fatal.
      if (!(e instanceof OptinError) || e.code === 'cancelled') throw e;
      report.notEvaluated = e.message;
    }
  }
  if (report.evaluation && plan.model.channels && req.compare !== false && !req.latency) {
    try {
      report.comparisons = await compareChannelPlans(engine, req, plan, apply, ev, signal);
    } catch (e) {
      // The model is written, verified and evaluated; a comparison that cannot be made is said, not fatal.
      if (!(e instanceof OptinError) || e.code === 'cancelled') throw e;
      ev.note?.(`no baseline comparison: ${e.message}`);
    }
  }
  const warning = qualityWarning(report.evaluation, { ...repairOf(apply), ...(req.repairHint ? { repair: req.repairHint } : {}), ...(plan.model.quantized ? { unrepairable: true } : {}) });
  if (warning) report.warning = warning;
  if (req.bench !== false) {
    ev.step?.('measuring speed');
    report.bench = await engine.bench([req.model, apply.output], { ...benchShape, ep: req.ep, ...(req.data.inputSize ? { inputSize: req.data.inputSize } : {}) }, signal);
    if (report.latency) {
      const [d, p] = req.decode ? report.bench.decode?.models ?? [] : report.bench.models;
      if (!d || !p) throw new OptinError('runtime', `${req.model}: the benchmark timed no decode step to compare with the decode-step latency target`);
      Object.assign(report.latency, { measuredDenseMs: d!.medianMs, measuredMs: p!.medianMs, measuredRatio: p!.medianMs / d!.medianMs });
    }
  }
  return report;
}
