import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { OptinError, type OptinErrorCode } from '../errors';
import type { InspectReport } from '../inspect';
import type { ScoreProgress } from '../optin/types';
import type { ScoresFile } from '../plan/schema';
import type { LatencyResult, ScoreJob, WorkerReply, WorkerRequest } from './protocol';
import type { ApplyReport, ApplyRequest } from '../prune/applyPlan';
import type { EvalOptions, EvalReport } from '../eval/evaluate';
import type { BenchOptions, BenchReport } from '../eval/bench';
import type { LatencyOptions } from '../latency/measure';
import type { PreflightReport, PreflightRequest } from '../preflight';

/** A job request before the client assigns its id. */
type JobRequest = DistributiveOmit<Exclude<WorkerRequest, { kind: 'cancel' }>, 'id'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

type Pending = { resolve: (r: Extract<WorkerReply, { kind: 'result' }>) => void; reject: (e: Error) => void; progress?: (p: ScoreProgress, warning?: string) => void; step?: (s: string) => void };

/**
 * Runs engine jobs in a worker thread (dist/engineWorker.js next to the caller's bundle), so
 * onnxruntime never blocks the calling thread. Used by the CLI and the extension.
 */
export class EngineClient {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly workerFile: string = path.join(__dirname, 'engineWorker.js')) {}

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.workerFile);
    w.on('message', (r: WorkerReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      if (r.kind === 'progress') p.progress?.(r.progress, r.warning);
      else if (r.kind === 'step') p.step?.(r.step);
      else {
        this.pending.delete(r.id);
        p.resolve(r);
      }
    });
    w.on('error', (e) => this.failAll(e));
    w.on('exit', (code) => {
      this.worker = undefined;
      if (this.pending.size) this.failAll(new Error(`engine worker exited with code ${code}`));
    });
    this.worker = w;
    return w;
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private async request(req: JobRequest, progress?: Pending['progress'], signal?: AbortSignal, step?: Pending['step']): Promise<Extract<WorkerReply, { kind: 'result'; ok: true }>> {
    const id = this.nextId++;
    const w = this.ensure();
    const r = await new Promise<Extract<WorkerReply, { kind: 'result' }>>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(progress ? { progress } : {}), ...(step ? { step } : {}) });
      const cancel = (): void => w.postMessage({ id, kind: 'cancel' } satisfies WorkerRequest);
      if (signal?.aborted) cancel();
      signal?.addEventListener('abort', cancel, { once: true });
      w.postMessage({ ...req, id });
    });
    if (!r.ok) throw new OptinError(r.code as OptinErrorCode, r.message);
    return r;
  }

  /** Analyse a model. */
  async inspect(file: string, seqLen?: number): Promise<InspectReport> {
    return (await this.request({ kind: 'inspect', path: file, ...(seqLen ? { seqLen } : {}) })).inspect!;
  }

  /** Check model, data and destinations before any work (about a second; see {@link preflight}). */
  async preflight(req: PreflightRequest): Promise<PreflightReport> {
    return (await this.request({ kind: 'preflight', req })).preflight!;
  }

  /** Score a model; `signal` cancels within one onnxruntime run. */
  async score(job: ScoreJob, progress?: (p: ScoreProgress, warning?: string) => void, signal?: AbortSignal): Promise<ScoresFile> {
    return (await this.request({ kind: 'score', job }, progress, signal)).scores!;
  }

  /** Tune, cut, verify and write a pruned model; `step` reports each phase. */
  async apply(job: ApplyRequest, step?: (s: string) => void, signal?: AbortSignal): Promise<ApplyReport> {
    return (await this.request({ kind: 'apply', job }, undefined, signal, step)).apply!;
  }

  /** Accuracy on labelled data (and agreement with a reference model). */
  async evaluate(model: string, options: Omit<EvalOptions, 'signal'>, signal?: AbortSignal): Promise<EvalReport> {
    return (await this.request({ kind: 'eval', model, options }, undefined, signal)).evaluation!;
  }

  /** The model's per-layer latency table (cached per model, provider and shape). */
  async latency(model: string, options: Omit<LatencyOptions, 'signal' | 'onStep'> & { fresh?: boolean }, step?: (s: string) => void, signal?: AbortSignal): Promise<LatencyResult> {
    return (await this.request({ kind: 'latency', model, options }, undefined, signal, step)).latency!;
  }

  /** Interleaved latency benchmark of models on one synthetic batch. */
  async bench(models: string[], options: Omit<BenchOptions, 'signal'>, signal?: AbortSignal): Promise<BenchReport> {
    return (await this.request({ kind: 'bench', models, options }, undefined, signal)).bench!;
  }

  /** Stop the worker. */
  async dispose(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}
