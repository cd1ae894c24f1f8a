import type { InspectReport } from '../inspect';
import type { ScoreJob, ScoreProgress } from '../optin/types';
import type { ScoresFile } from '../plan/schema';
import type { ApplyReport, ApplyRequest } from '../prune/applyPlan';
import type { EvalOptions, EvalReport } from '../eval/evaluate';
import type { BenchOptions, BenchReport } from '../eval/bench';
import type { PreflightReport, PreflightRequest } from '../preflight';
import type { LatencyOptions } from '../latency/measure';
import type { LatencyTable } from '../latency/table';
import type { InputSize } from '../data/types';

/** A latency table and whether it came from the cache. */
export interface LatencyResult {
  table: LatencyTable;
  cached: boolean;
  /** The cache file it was read from or written to. */
  file: string;
}

export type { ScoreJob } from '../optin/types';

/** Host -> engine worker. */
export type WorkerRequest =
  | { id: number; kind: 'inspect'; path: string; seqLen?: number; inputSize?: InputSize }
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
