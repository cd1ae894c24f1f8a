import { loadModel } from '../onnx/model';
import { detectStructure } from '../structure/detect';
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

/** Load, check, detect, calibrate and score a model (runs inside the engine worker). */
export async function runScoreJob(job: ScoreJob, onProgress: (p: ScoreProgress, warning?: string) => void, signal: AbortSignal): Promise<ScoresFile> {
  const model = loadModel(job.model);
  await checkLoadable(model.path, model.path);
  const st = detectStructure(model);
  const batch = await loadCalibration(model.path, st, job.data);
  if (batch.warning) onProgress({ phase: 'teacher', done: 0, total: 0, elapsed: 0 }, batch.warning);
  const macSeqLen = job.seqLen ?? (st.modality === 'text' ? batch.meanLength : batch.seqLen);
  const scores = job.ranking === 'magnitude'
    ? magnitudeRun(model, st, batch, macSeqLen)
    : await scoreModel(model, st, batch, { ep: job.ep, onProgress, signal, features: job.features ?? 'auto' });
  return scoresFile(modelRef(model.path, sha256File(model.path), st), scores, macSeqLen);
}

function magnitudeRun(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, seqLen: number): Scores {
  const t0 = performance.now();
  const m = magnitudeScores(model, st, seqLen);
  const none = (rows: number[][]): Array<{ md: number[]; kl: number[] }> => rows.map(() => ({ md: [], kl: [] }));
  return {
    ...m, raw: { heads: none(m.heads), neurons: none(m.neurons) }, outputLoss: 'kl', tokenRows: 0,
    calibration: { examples: batch.batch, seqLen: batch.seqLen, meanLength: batch.meanLength, source: batch.source, ...(batch.warning ? { warning: batch.warning } : {}) },
    mode: 'magnitude', provider: 'none', seconds: (performance.now() - t0) / 1000,
  };
}
