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

/** Load, check, detect, calibrate and score a model (runs inside the engine worker). */
export async function runScoreJob(job: ScoreJob, onProgress: (p: ScoreProgress, warning?: string) => void, signal: AbortSignal): Promise<ScoresFile> {
  const model = loadModel(job.model);
  await checkLoadable(model.path, model.path);
  const st = detectStructure(model);
  const batch = await loadCalibration(model.path, st, job.data);
  if (batch.warning) onProgress({ phase: 'teacher', done: 0, total: 0, elapsed: 0 }, batch.warning);
  const scores = await scoreModel(model, st, batch, { ep: job.ep, onProgress, signal, features: job.features ?? 'auto' });
  const macSeqLen = job.seqLen ?? (st.modality === 'text' ? batch.meanLength : batch.seqLen);
  return scoresFile(modelRef(model.path, sha256File(model.path), st), scores, macSeqLen);
}
