import * as fs from 'node:fs';
import { OptinError } from '../errors';
import type { ModelStructure } from '../structure/types';
import type { Scores } from '../optin/types';
import { TOOL } from '../version';
import { searchMasks } from './search';
import { SCHEMA_VERSION, type ModelRef, type PlanFile, type ScoresFile } from './schema';

/** Model identity + geometry for scores and plans. */
export function modelRef(path: string, sha256: string, st: ModelStructure): ModelRef {
  return {
    path, sha256, architecture: st.architecture, modality: st.modality, hidden: st.hidden, norm: st.norm,
    layers: st.layers.map((l) => ({ heads: l.attention.heads, headSize: l.attention.headSize, vHeadSize: l.attention.vHeadSize, ffn: l.ffn?.width ?? 0 })),
  };
}

/** Package scores for `optin score --out`. */
export function scoresFile(model: ModelRef, s: Scores, macSeqLen: number): ScoresFile {
  return {
    schema: 'optin-scores', version: SCHEMA_VERSION, tool: { ...TOOL }, created: new Date().toISOString(), model,
    mode: s.mode, ...(s.modeReason ? { modeReason: s.modeReason } : {}), outputLoss: s.outputLoss, provider: s.provider, seconds: s.seconds,
    calibration: { ...s.calibration, tokenRows: s.tokenRows }, macSeqLen,
    heads: s.heads, neurons: s.neurons, raw: s.raw,
  };
}

function readJson(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OptinError('io', `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new OptinError('data', `${file} is not valid JSON (${(e as Error).message})`);
  }
}

/** Read and validate a scores file. */
export function readScores(file: string): ScoresFile {
  const j = readJson(file, 'scores file');
  if (j.schema !== 'optin-scores') throw new OptinError('data', `${file} is not an OPTIN scores file (schema "${String(j.schema)}")`);
  if (j.version !== SCHEMA_VERSION) throw new OptinError('data', `${file} has scores schema version ${String(j.version)}; this tool reads version ${SCHEMA_VERSION}`);
  const s = j as unknown as ScoresFile;
  const ok = Array.isArray(s.heads) && Array.isArray(s.neurons) && s.model?.layers?.length === s.heads.length &&
    s.model.layers.every((g, l) => s.heads[l]?.length === g.heads && s.neurons[l]?.length === g.ffn);
  if (!ok) throw new OptinError('data', `${file}: scores do not match the model geometry recorded in it`);
  return s;
}

/** Plan at a budget from scores (no model needed: this is instant). */
export function makePlan(s: ScoresFile, budget: number, seqLen = s.macSeqLen, multipleOf = 1): PlanFile {
  const r = searchMasks(s.model.layers, s.model.hidden, seqLen, s.heads, s.neurons, budget, multipleOf);
  const idx = (m: boolean[][]): number[][] => m.map((row) => row.flatMap((k, i) => (k ? [i] : [])));
  const keep = { heads: idx(r.heads), neurons: idx(r.neurons) };
  return {
    schema: 'optin-plan', version: SCHEMA_VERSION, tool: { ...TOOL }, created: new Date().toISOString(), model: s.model, budget, ...(multipleOf > 1 ? { multipleOf } : {}),
    macs: { seqLen, baseline: r.baseline, kept: r.kept, ratio: r.kept / r.baseline },
    keep,
    layers: keep.heads.map((h, l) => ({ heads: h.length, neurons: keep.neurons[l]!.length, macs: r.perLayerMacs[l]! })),
    importance: r.importance,
    scores: { heads: s.heads, neurons: s.neurons, mode: s.mode, calibration: s.calibration },
  };
}
