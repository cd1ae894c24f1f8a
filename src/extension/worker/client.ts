import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { InspectReport } from '../../engine/inspect';
import type { WorkerReply, WorkerRequest } from './protocol';

/** Error from the engine worker, keeping the engine's error code. */
export class EngineError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

type Pending = { resolve: (r: WorkerReply) => void; reject: (e: Error) => void };

/** Talks to the engine worker thread; starts it lazily and restarts it after a crash. */
export class EngineClient {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly distDir: string) {}

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(path.join(this.distDir, 'engineWorker.js'));
    w.on('message', (r: WorkerReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      p?.resolve(r);
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

  private request(req: Omit<WorkerRequest, 'id'>): Promise<WorkerReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ensure().postMessage({ ...req, id });
    });
  }

  /** Analyse a model in the worker. */
  async inspect(file: string, seqLen?: number): Promise<InspectReport> {
    const r = await this.request({ kind: 'inspect', path: file, ...(seqLen ? { seqLen } : {}) });
    if (!r.ok) throw new EngineError(r.code, r.message);
    return r.report;
  }

  /** Stop the worker. */
  async dispose(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}
