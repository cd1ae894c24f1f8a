import { parentPort } from 'node:worker_threads';
import { inspectModel } from '../../engine/inspect';
import { isOptinError } from '../../engine/errors';
import type { WorkerReply, WorkerRequest } from './protocol';

/** Engine worker: all onnxruntime work happens here, off the extension host's thread. */
parentPort!.on('message', (req: WorkerRequest) => {
  void handle(req).then((reply) => parentPort!.postMessage(reply));
});

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  try {
    switch (req.kind) {
      case 'inspect':
        return { id: req.id, ok: true, kind: 'inspect', report: await inspectModel(req.path, req.seqLen) };
    }
  } catch (e) {
    return { id: req.id, ok: false, code: isOptinError(e) ? e.code : 'internal', message: e instanceof Error ? e.message : String(e) };
  }
}
