import * as path from 'node:path';
import type { ScoreProgress } from '../optin/types';
import type { WorkerRequest } from './protocol';
import { describeJob, jobModel } from './where';

/**
 * Fault injection for the crash-containment tests: `OPTIN_FAULT_INJECT=abort:<model file name>:<words>`
 * makes the engine process abort (SIGABRT, as a native onnxruntime abort does) right after a job on
 * that model reports a phase whose description contains the words, e.g. `abort:crash.onnx:scoring layer`.
 * Call it after sending the report (IPC writes go to the pipe at once). Unset (always, outside tests)
 * it does nothing.
 */
export function faultFor(req: Exclude<WorkerRequest, { kind: 'cancel' }>): ((last: { progress?: ScoreProgress; step?: string }) => void) | undefined {
  const m = /^abort:([^:]+):(.+)$/.exec(process.env.OPTIN_FAULT_INJECT ?? '');
  if (!m || path.basename(jobModel(req)) !== m[1]) return undefined;
  const words = m[2]!;
  return (last) => {
    if (!describeJob(req, last).includes(words)) return;
    process.stderr.write(`terminate called after throwing an instance of 'Ort::Exception'\n  what():  injected fault (OPTIN_FAULT_INJECT)\n`);
    process.abort();
  };
}
