import * as path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
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
import { describeJobOn } from './where';
import type { InputSize } from '../data/types';

/** A job request before the client assigns its id. */
type JobRequest = DistributiveOmit<Exclude<WorkerRequest, { kind: 'cancel' }>, 'id'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

type Job = Exclude<WorkerRequest, { kind: 'cancel' }>;
type Pending = {
  req: Job;
  resolve: (r: Extract<WorkerReply, { kind: 'result' }>) => void;
  reject: (e: Error) => void;
  progress?: (p: ScoreProgress, warning?: string) => void;
  step?: (s: string) => void;
  last: { progress?: ScoreProgress; step?: string };
};

const TAIL_LINES = 40;

/**
 * Runs engine jobs in a child process (dist/engineWorker.js next to the caller's bundle), so
 * onnxruntime never blocks the caller and a native abort inside it ends only that process: pending
 * jobs fail with one sentence naming the step and the model, and the next job starts a fresh process.
 * Used by the CLI and the extension.
 */
export class EngineClient {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly tail: string[] = [];

  /**
   * @param workerFile the engine process's script
   * @param onLog receives what the engine process prints (onnxruntime's warnings), a line at a time
   */
  constructor(
    private readonly workerFile: string = path.join(__dirname, 'engineWorker.js'),
    private readonly onLog?: (line: string) => void,
  ) {}

  /** The engine process's id while it runs (its temporary files carry it). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    const child = fork(this.workerFile, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    this.tail.length = 0;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      let partial = '';
      stream?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) this.logLine(l);
      });
      stream?.on('end', () => this.logLine(partial));
    }
    child.on('message', (r: WorkerReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      if (r.kind === 'progress') {
        p.last = { progress: r.progress };
        p.progress?.(r.progress, r.warning);
      } else if (r.kind === 'step') {
        p.last = { step: r.step };
        p.step?.(r.step);
      } else {
        this.pending.delete(r.id);
        p.resolve(r);
      }
    });
    child.on('error', (e) => this.failAll(() => e));
    child.on('close', (code, signal) => {
      if (this.child === child) this.child = undefined;
      this.failAll((p) => new OptinError('crashed', crashMessage(p, code, signal, this.tail)));
    });
    this.child = child;
    return child;
  }

  private logLine(line: string): void {
    if (!line.trim()) return;
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    this.onLog?.(line);
  }

  private failAll(error: (p: Pending) => Error): void {
    for (const p of this.pending.values()) p.reject(error(p));
    this.pending.clear();
  }

  private async request(req: JobRequest, progress?: Pending['progress'], signal?: AbortSignal, step?: Pending['step']): Promise<Extract<WorkerReply, { kind: 'result'; ok: true }>> {
    const id = this.nextId++;
    const child = this.ensure();
    const job = { ...req, id } as Job;
    const r = await new Promise<Extract<WorkerReply, { kind: 'result' }>>((resolve, reject) => {
      this.pending.set(id, { req: job, resolve, reject, last: {}, ...(progress ? { progress } : {}), ...(step ? { step } : {}) });
      const cancel = (): void => {
        if (child.connected) child.send({ id, kind: 'cancel' } satisfies WorkerRequest);
      };
      if (signal?.aborted) cancel();
      signal?.addEventListener('abort', cancel, { once: true });
      child.send(job);
    });
    if (!r.ok) throw new OptinError(r.code as OptinErrorCode, r.message);
    return r;
  }

  /** Analyse a model. */
  async inspect(file: string, seqLen?: number, inputSize?: InputSize): Promise<InspectReport> {
    return (await this.request({ kind: 'inspect', path: file, ...(seqLen ? { seqLen } : {}), ...(inputSize ? { inputSize } : {}) })).inspect!;
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

  /** Stop the engine process at once; jobs still running fail as cancelled. */
  async dispose(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    this.failAll(() => new OptinError('cancelled', 'the engine was stopped'));
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
}

/** One sentence for a job whose engine process ended under it: what it was doing, how it ended, what onnxruntime said. */
function crashMessage(p: Pending, code: number | null, signal: NodeJS.Signals | null, tail: readonly string[]): string {
  const how = signal === 'SIGABRT' ? 'aborted' : signal ? `was killed (${signal})` : `exited with code ${code}`;
  const said = nativeReason(tail);
  const hint = signal === 'SIGKILL' ? 'if memory ran out, use fewer calibration examples (--samples)' : 'run it again; if it repeats, try --ep cpu and report it with the model';
  return `the engine process ${how} while ${describeJobOn(p.req, p.last)}${said ? ` (it said: ${said})` : ''}; nothing was written; ${hint}`;
}

/** The native error's own words from the engine's last output lines ("what(): ..."), if any. */
function nativeReason(tail: readonly string[]): string | undefined {
  const what = [...tail].reverse().find((l) => /what\(\)/.test(l));
  const line = what ?? [...tail].reverse().find((l) => /terminate called|error|exception|abort/i.test(l));
  if (!line) return undefined;
  const text = line.replace(/^\s*what\(\):\s*/, '').trim();
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
