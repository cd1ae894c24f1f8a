import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DataOptions } from '../data/calibration';
import type { EpChoice } from '../runtime/providers';
import type { ScoreProgress } from '../optin/types';
import type { PlanFile, ScoresFile } from '../plan/schema';
import { makePlan } from '../plan/files';
import { defaultOutput } from '../prune/output';
import type { ApplyReport } from '../prune/applyPlan';
import type { EvalReport } from '../eval/evaluate';
import type { BenchReport } from '../eval/bench';
import type { EngineClient } from './client';
import type { ScoreJob } from './protocol';

/** Everything `optin prune` (and the extension's Apply) does, in one request. */
export interface PruneRequest {
  model: string;
  budget: number;
  /** Kept neurons per layer a multiple of this (default 1). */
  multipleOf?: number;
  data: DataOptions;
  ep: EpChoice;
  ranking?: 'optin' | 'magnitude';
  /** Scoring mode (default exact). */
  scoring?: Pick<ScoreJob, 'mode' | 'neuronExamples' | 'horizon' | 'timeBudget'>;
  /** Reuse scores instead of scoring again (must belong to the same model file). */
  scores?: ScoresFile;
  tune?: boolean;
  out?: string;
  /** Labelled data to measure accuracy before and after. */
  evalData?: DataOptions & { data: string };
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
}

/** Callbacks of a prune run. */
export interface PruneEvents {
  progress?: (p: ScoreProgress, warning?: string) => void;
  step?: (s: string) => void;
}

/** The pruned file may live elsewhere: read the tokenizer / preprocessor from beside the original. */
function besideOriginal<T extends DataOptions>(model: string, data: T): T {
  const dir = path.dirname(path.resolve(model));
  const pre = path.join(dir, 'preprocessor_config.json');
  return { ...data, tokenizer: data.tokenizer ?? dir, ...(data.preprocessor || !fs.existsSync(pre) ? {} : { preprocessor: pre }) };
}

/** Score (unless given), plan, apply with verification, then evaluate and benchmark. */
export async function runPrune(engine: EngineClient, req: PruneRequest, ev: PruneEvents = {}, signal?: AbortSignal): Promise<PruneReport> {
  ev.step?.('checking model, data and destination');
  await engine.preflight({ model: req.model, data: req.data, out: req.out ?? defaultOutput(req.model, req.budget), ...(req.evalData ? { evalData: req.evalData } : {}) });
  ev.step?.(req.scores ? 'using saved scores' : req.ranking === 'magnitude' ? 'ranking by weight magnitude' : 'scoring heads and neurons');
  const scores = req.scores ?? await engine.score({ model: req.model, data: req.data, ep: req.ep, mode: 'exact', ...req.scoring, ranking: req.ranking ?? 'optin' }, ev.progress, signal);
  ev.step?.(`planning at budget ${req.budget}`);
  const plan = makePlan(scores, req.budget, scores.macSeqLen, req.multipleOf ?? 1);
  const apply = await engine.apply({ model: req.model, plan, data: req.data, ep: req.ep, ...(req.tune ? { tune: true } : {}), ...(req.out ? { out: req.out } : {}) }, ev.step, signal);
  const report: PruneReport = { scores, plan, apply, idealSpeedup: plan.macs.baseline / plan.macs.kept };
  if (req.evalData) {
    ev.step?.('evaluating accuracy');
    report.evaluation = await engine.evaluate(apply.output, { data: besideOriginal(req.model, req.evalData), reference: req.model, ep: req.ep }, signal);
  }
  if (req.bench !== false) {
    ev.step?.('measuring speed');
    report.bench = await engine.bench([req.model, apply.output], { ...(req.bench ?? {}), ep: req.ep }, signal);
  }
  return report;
}
