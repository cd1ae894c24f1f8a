import type { InspectReport } from '../inspect';
import type { ScoreProgress } from '../optin/types';
import type { ScoresFile } from '../plan/schema';
import type { DataOptions } from '../data/calibration';
import type { EpChoice } from '../runtime/providers';
import type { ApplyReport, ApplyRequest } from '../prune/applyPlan';
import type { EvalOptions, EvalReport } from '../eval/evaluate';
import type { BenchOptions, BenchReport } from '../eval/bench';
import type { PreflightReport, PreflightRequest } from '../preflight';
import type { LatencyOptions } from '../latency/measure';
import type { LatencyTable } from '../latency/table';

/** A latency table and whether it came from the cache. */
export interface LatencyResult {
  table: LatencyTable;
  cached: boolean;
  /** The cache file it was read from or written to. */
  file: string;
}

/** Arguments of a scoring job. */
export interface ScoreJob {
  model: string;
  data: DataOptions;
  ep: EpChoice;
  /** 'exact', 'fast' (neurons on a subset of the examples) or 'auto' (exact when it fits timeBudget). */
  mode: 'exact' | 'fast' | 'auto';
  /** Fast mode: examples the neurons are scored on. */
  neuronExamples?: number;
  /** Fast mode: layers each neuron's trajectory covers (default all). */
  horizon?: number;
  /** Auto mode: seconds exact scoring may take (default 600). */
  timeBudget?: number;
  /** 'optin' (default), the weight-magnitude baseline, or (channel groups) L1-norm filter ranking. */
  ranking?: 'optin' | 'magnitude' | 'l1';
  seqLen?: number;
  features?: 'auto' | 'ffn-output' | 'attention-input';
}

/** Host -> engine worker. */
export type WorkerRequest =
  | { id: number; kind: 'inspect'; path: string; seqLen?: number }
  | { id: number; kind: 'preflight'; req: PreflightRequest }
  | { id: number; kind: 'score'; job: ScoreJob }
  | { id: number; kind: 'apply'; job: ApplyRequest }
  | { id: number; kind: 'eval'; model: string; options: Omit<EvalOptions, 'signal'> }
  | { id: number; kind: 'bench'; models: string[]; options: Omit<BenchOptions, 'signal'> }
  | { id: number; kind: 'latency'; model: string; options: Omit<LatencyOptions, 'signal' | 'onStep'> & { fresh?: boolean } }
  | { id: number; kind: 'cancel' };

/** Engine worker -> host: progress while a job runs, then exactly one result. */
export type WorkerReply =
  | { id: number; kind: 'progress'; progress: ScoreProgress; warning?: string }
  | { id: number; kind: 'step'; step: string }
  | { id: number; kind: 'result'; ok: true; inspect?: InspectReport; preflight?: PreflightReport; scores?: ScoresFile; apply?: ApplyReport; evaluation?: EvalReport; bench?: BenchReport; latency?: LatencyResult }
  | { id: number; kind: 'result'; ok: false; code: string; message: string };
