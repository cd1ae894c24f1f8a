import * as path from 'node:path';
import type { ScoreProgress } from '../optin/types';
import type { WorkerRequest } from './protocol';

type Job = Exclude<WorkerRequest, { kind: 'cancel' }>;

/** The model file a job works on (the first one for a benchmark). */
export function jobModel(req: Job): string {
  switch (req.kind) {
    case 'inspect': return req.path;
    case 'preflight': return req.req.model;
    case 'score': return req.job.model;
    case 'apply': return req.job.model;
    case 'eval': return req.model;
    case 'bench': return req.models[0] ?? '';
    case 'latency': return req.model;
  }
}

const STARTED: Record<Job['kind'], string> = {
  inspect: 'analysing the model',
  preflight: 'checking model, data and destination',
  score: 'starting to score',
  apply: 'starting to apply the plan',
  eval: 'evaluating',
  bench: 'timing the models',
  latency: 'measuring the latency table',
};

/** What a job is doing, in words, for messages about it ("scoring layer 3 (14 of 96 elements)"). */
export function describeJob(req: Job, last?: { progress?: ScoreProgress; step?: string }): string {
  if (last?.step) return last.step;
  const p = last?.progress;
  if (p?.phase === 'teacher') return 'running the unpruned model on the calibration batch';
  if (p?.phase === 'layer') return `scoring${p.layer !== undefined ? ` layer ${p.layer}` : ''} (${p.done} of ${p.total} elements)`;
  return STARTED[req.kind];
}

/** `describeJob` with the model's file name: "scoring layer 3 (14 of 96 elements) of model.onnx". */
export function describeJobOn(req: Job, last?: { progress?: ScoreProgress; step?: string }): string {
  const model = jobModel(req);
  return `${describeJob(req, last)}${model ? ` of ${path.basename(model)}` : ''}`;
}
