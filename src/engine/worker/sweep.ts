import * as path from 'node:path';
import { qualityWarning } from '../eval/quality';
import type { DataOptions } from '../data/calibration';
import type { EpChoice } from '../runtime/providers';
import type { ScoreProgress } from '../optin/types';
import type { PlanFile, ScoresFile } from '../plan/schema';
import { makeLatencyPlan, makePlan } from '../plan/files';
import type { EvalReport } from '../eval/evaluate';
import type { ApplyReport } from '../prune/applyPlan';
import type { BenchReport } from '../eval/bench';
import { OptinError } from '../errors';
import type { EngineClient } from './client';
import type { ScoreJob } from './protocol';
import { comparisonEvaluations, evaluateOnCalibration, repairOf } from './pipeline';

/** `optin sweep` / the panel's frontier: one scoring run, then every budget applied, checked, evaluated and timed. */
export interface SweepRequest {
  model: string;
  /** MAC budgets (fractions kept), or latency targets when `kind` is 'latency'. */
  targets: number[];
  kind: 'macs' | 'latency';
  multipleOf?: number;
  data: DataOptions;
  ep: EpChoice;
  scoring?: Pick<ScoreJob, 'mode' | 'neuronExamples' | 'horizon' | 'timeBudget'>;
  /** Reuse scores instead of scoring again. */
  scores?: ScoresFile;
  /** Folder the pruned models go to (one file per target). */
  outDir: string;
  /**
   * Labelled data for accuracy. Without it, agreement with the original's predictions is measured
   * on the calibration file's examples after the ones scoring used (held out), or on the scored
   * ones when the file has no more.
   */
  evalData?: DataOptions & { data: string };
  bench: { batch: number; seqLen: number; runs: number };
  /** How the user turns the repair on where warnings are shown (default `--tune`). */
  repairHint?: string;
  /** Channel plans: also evaluate the L1-norm baseline with the same repair at every budget (default on). */
  compare?: boolean;
}

/** One point of the frontier. */
export interface SweepPoint {
  /** The target asked for (MAC fraction or latency fraction). */
  target: number;
  output: string;
  /** Every file written for it (the model and, for large models, its external data). */
  files: string[];
  /** Fraction of MACs kept (recounted from the pruned graph) and parameters kept. */
  macsRatio: number;
  paramsRatio: number;
  /** Verification: max |pruned - masked original| and its tolerance. */
  maxAbsDiff: number;
  tolerance: number;
  /** Accuracy on labelled data (undefined without labels; pixel accuracy for segmentation) and agreement with the original. */
  accuracy?: number;
  /** Segmentation: mean IoU over classes on the label maps. */
  miou?: number;
  agreement: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  /** Dense median / this median, in the same interleaved run. */
  speedup: number;
  /** Latency targets: predicted fraction of the dense latency. */
  predictedRatio?: number;
  /** Set when this model is much worse than the original (see {@link qualityWarning}). */
  warning?: string;
  /** Channel plans: the L1-norm baseline with the same repair at this budget, on the same examples. */
  baseline?: { accuracy?: number; miou?: number; agreement: number };
}

/** The frontier: the dense model and every target, measured in one run. */
export interface SweepReport {
  model: string;
  kind: 'macs' | 'latency';
  scores: Pick<ScoresFile, 'mode' | 'provider' | 'seconds' | 'calibration' | 'macSeqLen'>;
  evaluation: { data: string; examples: number; heldOut: boolean; labelled: boolean };
  dense: { accuracy?: number; miou?: number; medianMs: number; p10Ms: number; p90Ms: number };
  bench: Pick<BenchReport, 'batch' | 'seqLen' | 'shape' | 'runs' | 'threads' | 'provider'>;
  points: SweepPoint[];
  /** The plans, in target order (what the panel applies when a point is clicked). */
  plans: PlanFile[];
}

/** Callbacks of a sweep. */
export interface SweepEvents {
  progress?: (p: ScoreProgress, warning?: string) => void;
  step?: (s: string) => void;
}

function outputFor(req: SweepRequest, t: number): string {
  const base = path.basename(req.model).replace(/\.onnx$/i, '');
  return path.join(req.outDir, `${base}.optin-${req.kind === 'latency' ? 'latency-' : ''}${Math.round(t * 100)}.onnx`);
}

/** A point's measures from its evaluation. */
function measureOf(e: EvalReport): NonNullable<SweepPoint['baseline']> {
  return { ...(e.accuracy !== undefined ? { accuracy: e.accuracy } : {}), ...(e.segmentation ? { miou: e.segmentation.miou } : {}), agreement: e.reference?.agreement ?? 1 };
}

/** Score once, then plan, apply (verified), evaluate and benchmark every target. */
export async function runSweep(engine: EngineClient, req: SweepRequest, ev: SweepEvents = {}, signal?: AbortSignal): Promise<SweepReport> {
  if (!req.targets.length) throw new OptinError('usage', 'sweep needs at least one budget');
  const targets = [...new Set(req.targets)].sort((a, b) => b - a);
  ev.step?.('checking model, data and destination');
  await engine.preflight({ model: req.model, data: req.data, out: outputFor(req, targets[0]!), ...(req.evalData ? { evalData: req.evalData } : {}) });
  const lat = req.kind === 'latency' ? await engine.latency(req.model, { ep: req.ep, batch: req.bench.batch, seqLen: req.bench.seqLen }, ev.step, signal) : undefined;
  ev.step?.(req.scores ? 'using saved scores' : 'scoring heads and neurons');
  const scores = req.scores ?? await engine.score({ model: req.model, data: req.data, ep: req.ep, mode: 'exact', ...req.scoring }, ev.progress, signal);
  const plans: PlanFile[] = [];
  const applied: ApplyReport[] = [];
  for (const [i, t] of targets.entries()) {
    ev.step?.(`budget ${i + 1} of ${targets.length}: planning and writing ${path.basename(outputFor(req, t))}`);
    const plan = lat ? makeLatencyPlan(scores, lat.table, t, scores.macSeqLen, req.multipleOf ?? 1) : makePlan(scores, t, scores.macSeqLen, req.multipleOf);
    plans.push(plan);
    applied.push(await engine.apply({ model: req.model, plan, data: req.data, ep: req.ep, out: outputFor(req, t) }, undefined, signal));
  }
  if (!req.evalData && !req.data.data) throw new OptinError('usage', 'sweep needs data to evaluate on: give --data (calibration) or --eval (labelled)');
  const evals: EvalReport[] = [];
  let heldOut = !req.evalData;
  for (const [i, a] of applied.entries()) {
    ev.step?.(`evaluating ${i + 1} of ${applied.length}`);
    if (req.evalData) evals.push(await engine.evaluate(a.output, { data: req.evalData, reference: req.model, ep: req.ep }, signal));
    else {
      const r = await evaluateOnCalibration(engine, a.output, req.model, { ...req.data, data: req.data.data! }, req.ep, signal);
      evals.push(r.evaluation);
      heldOut = r.heldOut;
    }
  }
  const baselines = scores.model.channels && !lat && req.compare !== false
    ? (await comparisonEvaluations(engine, req, targets.map((t, i) => ({ budget: t, multipleOf: plans[i]!.multipleOf ?? 1, repaired: !!applied[i]!.reconstruction })), [], ev.step, signal)).l1
    : undefined;
  ev.step?.(`timing the dense model and ${applied.length} pruned ones interleaved`);
  const bench = await engine.bench([req.model, ...applied.map((a) => a.output)], { ...req.bench, ep: req.ep, ...(req.data.inputSize ? { inputSize: req.data.inputSize } : {}) }, signal);
  const e0 = evals[0]!;
  return {
    model: req.model, kind: req.kind,
    scores: { mode: scores.mode, provider: scores.provider, seconds: scores.seconds, calibration: scores.calibration, macSeqLen: scores.macSeqLen },
    evaluation: { data: e0.data, examples: e0.examples, heldOut: heldOut && !req.evalData, labelled: e0.accuracy !== undefined },
    dense: { ...(e0.reference?.accuracy !== undefined ? { accuracy: e0.reference.accuracy } : {}), ...(e0.reference?.segmentation ? { miou: e0.reference.segmentation.miou } : {}), medianMs: bench.models[0]!.medianMs, p10Ms: bench.models[0]!.p10Ms, p90Ms: bench.models[0]!.p90Ms },
    bench: { batch: bench.batch, seqLen: bench.seqLen, shape: bench.shape, runs: bench.runs, threads: bench.threads, provider: bench.provider },
    points: targets.map((t, i) => {
      const a = applied[i]!, e = evals[i]!, m = bench.models[i + 1]!, p = plans[i]!;
      const warning = qualityWarning(e, { ...repairOf(a), ...(req.repairHint ? { repair: req.repairHint } : {}), ...(scores.model.quantized ? { unrepairable: true } : {}) });
      return {
        target: t, output: a.output, files: a.files, macsRatio: a.macs.after / a.macs.before, paramsRatio: a.parameters.after / a.parameters.before,
        maxAbsDiff: a.verification.maxAbsDiff, tolerance: a.verification.tolerance,
        ...measureOf(e),
        medianMs: m.medianMs, p10Ms: m.p10Ms, p90Ms: m.p90Ms, speedup: bench.speedup[i + 1]!,
        ...(p.latency ? { predictedRatio: p.latency.predictedMs / p.latency.denseMs } : {}),
        ...(warning ? { warning } : {}),
        ...(baselines?.[i] ? { baseline: measureOf(baselines[i]!) } : {}),
      };
    }),
    plans,
  };
}
