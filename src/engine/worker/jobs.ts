import { loadModel } from '../onnx/model';
import { inputSizeFor } from '../data/inputSize';
import { analyzeModel } from '../analyze';
import { runChannelScoreJob } from '../channels/jobs';
import { OptinError } from '../errors';
import { checkWeightTypes } from '../structure/dtypes';
import { cpuFallbackNodes } from '../runtime/fallback';
import { EP_CHOICES, type Provider } from '../runtime/providers';
import { loadCalibration } from '../data/calibration';
import { scoreModel } from '../optin/scorer';
import { modelRef, scoresFile } from '../plan/files';
import { sha256File } from '../util/atomic';
import { checkLoadable } from '../runtime/session';
import type { ScoresFile } from '../plan/schema';
import type { ScoreProgress } from '../optin/types';
import type { ScoreJob } from './protocol';
import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch } from '../data/calibration';
import type { Scores } from '../optin/types';
import { magnitudeScores } from '../optin/magnitude';
import { activationMagnitudeScores } from '../optin/wanda';
import { scoreFast } from '../optin/fast';
import { chooseMode, estimateCost, type ModeChoice } from '../optin/mode';
import { hybridModelRef, withChannelScores } from '../hybrid/scores';

/** Load, check, detect, calibrate and score a model (runs inside the engine worker). */
export async function runScoreJob(job: ScoreJob, onProgress: (p: ScoreProgress, warning?: string) => void, signal: AbortSignal): Promise<ScoresFile> {
  const model = loadModel(job.model);
  checkWeightTypes(model);
  await checkLoadable(model.path, model.path);
  const size = inputSizeFor(job.model, job.data);
  const analysis = await analyzeModel(model, size);
  if (analysis.kind === 'channels') return runChannelScoreJob(model, analysis.cs, sha256File(model.path), job, onProgress, signal);
  if (job.ranking === 'l1') throw new OptinError('usage', `${model.path}: --ranking l1 ranks convolution filters; this model is pruned by attention heads and FFN neurons (use optin, magnitude or wanda)`);
  const st = analysis.st;
  const batch = await loadCalibration(model.path, st, job.data);
  if (batch.warning) onProgress({ phase: 'teacher', done: 0, total: 0, elapsed: 0 }, batch.warning);
  const macSeqLen = job.seqLen ?? (st.modality === 'text' ? batch.meanLength : batch.seqLen);
  const opts = { ep: job.ep, onProgress, signal, features: job.features ?? 'auto' } as const;
  let mode: ModeChoice = { mode: job.mode === 'fast' ? 'fast' : 'exact', ...(job.neuronExamples ? { neuronExamples: job.neuronExamples } : {}), ...(job.horizon ? { horizon: job.horizon } : {}), reason: `--mode ${job.mode}` };
  const baseline = job.ranking === 'magnitude' || job.ranking === 'wanda';
  if (!baseline && job.mode === 'auto') {
    mode = chooseMode(await estimateCost(model, st, batch, job.ep), batch.batch, job.timeBudget ?? 600);
  }
  const scores = baseline
    ? await baselineRun(model, st, batch, macSeqLen, job.ranking === 'wanda')
    : mode.mode === 'fast'
      ? await scoreFast(model, st, batch, { ...opts, ...(mode.neuronExamples ? { neuronExamples: mode.neuronExamples } : {}), ...(mode.horizon ? { horizon: mode.horizon } : {}) })
      : await scoreModel(model, st, batch, opts);
  if (!baseline) scores.modeReason = mode.reason;
  const cs = analysis.channels;
  const all = cs ? await withChannelScores(model, st, cs, batch, scores, macSeqLen, opts) : scores;
  const sha = sha256File(model.path);
  const file = scoresFile(cs ? hybridModelRef(model, sha, st, cs) : modelRef(model.path, sha, st), all, macSeqLen);
  const provider = scores.provider.split(' ')[0] as Provider;
  if (EP_CHOICES.includes(provider) && provider !== 'cpu') {
    file.cpuNodes = await cpuFallbackNodes(model.path, provider);
  }
  return file;
}

async function baselineRun(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, seqLen: number, wanda: boolean): Promise<Scores> {
  const t0 = performance.now();
  const m = wanda ? await activationMagnitudeScores(model, st, batch, seqLen) : magnitudeScores(model, st, seqLen);
  const none = (rows: number[][]): Array<{ md: number[]; kl: number[] }> => rows.map(() => ({ md: [], kl: [] }));
  return {
    ...m, raw: { heads: none(m.heads), neurons: none(m.neurons) }, outputLoss: 'kl', tokenRows: 0,
    calibration: { examples: batch.batch, seqLen: batch.seqLen, meanLength: batch.meanLength, source: batch.source, ...(batch.warning ? { warning: batch.warning } : {}) },
    mode: 'magnitude', ...(wanda ? { modeReason: 'activation-weighted magnitude (Wanda, Sun et al., 2023)' } : {}), provider: 'none', seconds: (performance.now() - t0) / 1000,
  };
}
