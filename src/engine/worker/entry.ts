import { parentPort } from 'node:worker_threads';
import { inspectModel } from '../inspect';
import { isOptinError } from '../errors';
import { runScoreJob } from './jobs';
import type { WorkerReply, WorkerRequest } from './protocol';

/** Engine worker: every onnxruntime call runs here, never on the caller's thread. */
const port = parentPort!;
const controllers = new Map<number, AbortController>();
const send = (r: WorkerReply): void => port.postMessage(r);

port.on('message', (req: WorkerRequest) => {
  if (req.kind === 'cancel') {
    controllers.get(req.id)?.abort();
    return;
  }
  void handle(req);
});

async function handle(req: Exclude<WorkerRequest, { kind: 'cancel' }>): Promise<void> {
  const ac = new AbortController();
  controllers.set(req.id, ac);
  try {
    if (req.kind === 'inspect') send({ id: req.id, kind: 'result', ok: true, inspect: await inspectModel(req.path, req.seqLen) });
    else {
      const scores = await runScoreJob(req.job, (progress, warning) => send({ id: req.id, kind: 'progress', progress, ...(warning ? { warning } : {}) }), ac.signal);
      send({ id: req.id, kind: 'result', ok: true, scores });
    }
  } catch (e) {
    send({ id: req.id, kind: 'result', ok: false, code: isOptinError(e) ? e.code : 'internal', message: e instanceof Error ? e.message : String(e) });
  } finally {
    controllers.delete(req.id);
  }
}
