import { inspectModel } from '../inspect';
import { isOptinError } from '../errors';
import { runScoreJob } from './jobs';
import { applyPlan } from '../prune/applyPlan';
import { evaluate } from '../eval/evaluate';
import { benchModels } from '../eval/bench';
import { preflight } from '../preflight';
import { loadModel } from '../onnx/model';
import { detectStructure, type DetectOptions } from '../structure/detect';
import { inputSizeFor } from '../data/inputSize';
import { latencyTableFor } from '../latency/cache';
import { faultFor } from './fault';
import type { WorkerReply, WorkerRequest } from './protocol';

/** Dynamic image axes are measured at the size of the model's preprocessor config, as calibration uses. */
function sizeOf(modelPath: string): DetectOptions {
  const size = inputSizeFor(modelPath);
  return size ? { size } : {};
}

/**
 * The engine process (forked by {@link EngineClient}): every onnxruntime call runs here, so a native
 * abort ends this process, never the editor's extension host or the CLI.
 */
const controllers = new Map<number, AbortController>();
const send = (r: WorkerReply): void => {
  if (process.connected) process.send!(r);
};

// The parent owns Ctrl-C (it cancels the job); a parent that went away or a SIGTERM ends this process
// at once, without running onnxruntime's teardown while a run may still be in flight.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => process.kill(process.pid, 'SIGKILL'));
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));

process.on('message', (req: WorkerRequest) => {
  if (req.kind === 'cancel') {
    controllers.get(req.id)?.abort();
    return;
  }
  void handle(req);
});

async function handle(req: Exclude<WorkerRequest, { kind: 'cancel' }>): Promise<void> {
  const ac = new AbortController();
  controllers.set(req.id, ac);
  const fault = faultFor(req);
  try {
    switch (req.kind) {
      case 'inspect':
        send({ id: req.id, kind: 'result', ok: true, inspect: await inspectModel(req.path, req.seqLen, req.inputSize) });
        break;
      case 'preflight':
        send({ id: req.id, kind: 'result', ok: true, preflight: await preflight(req.req) });
        break;
      case 'score': {
        const scores = await runScoreJob(req.job, (progress, warning) => {
          send({ id: req.id, kind: 'progress', progress, ...(warning ? { warning } : {}) });
          fault?.({ progress });
        }, ac.signal);
        send({ id: req.id, kind: 'result', ok: true, scores });
        break;
      }
      case 'apply': {
        const apply = await applyPlan(req.job, ac.signal, (step) => {
          send({ id: req.id, kind: 'step', step });
          fault?.({ step });
        });
        send({ id: req.id, kind: 'result', ok: true, apply });
        break;
      }
      case 'eval':
        send({ id: req.id, kind: 'result', ok: true, evaluation: await evaluate(req.model, { ...req.options, signal: ac.signal }) });
        break;
      case 'bench':
        send({ id: req.id, kind: 'result', ok: true, bench: await benchModels(req.models, { ...req.options, signal: ac.signal }) });
        break;
      case 'latency': {
        const model = loadModel(req.model);
        const onStep = (step: string): void => send({ id: req.id, kind: 'step', step });
        send({ id: req.id, kind: 'result', ok: true, latency: await latencyTableFor(model, await detectStructure(model, sizeOf(req.model)), { ...req.options, signal: ac.signal, onStep }) });
        break;
      }
    }
  } catch (e) {
    send({ id: req.id, kind: 'result', ok: false, code: isOptinError(e) ? e.code : 'internal', message: e instanceof Error ? e.message : String(e) });
  } finally {
    controllers.delete(req.id);
  }
}
