import { loadModel } from './onnx/model';
import { detectStructure } from './structure/detect';
import { withMeasuredTokens } from './structure/measure';
import { modelMacs, type MacReport } from './flops';
import { checkLoadable } from './runtime/session';
import { elementCount } from './onnx/tensor';
import type { ModelStructure } from './structure/types';

/** Summary of a model as `optin inspect` prints it. */
export interface InspectReport {
  path: string;
  structure: ModelStructure;
  macs: MacReport;
  /** Parameters in initializers (all of them, not only the prunable ones). */
  parameters: number;
  fileBytes: number;
  usesExternalData: boolean;
}

/** Sequence length used for the MAC model when the caller gives none. */
export function defaultSeqLen(st: ModelStructure): number {
  if (st.modality === 'vision' && st.visionTokens) return st.visionTokens;
  return Math.min(128, st.maxPositions ?? 128);
}

/**
 * Load, check in onnxruntime and analyse a model.
 * @throws OptinError for unreadable, refused or non-transformer models.
 */
export async function inspectModel(path: string, seqLen?: number): Promise<InspectReport> {
  const model = loadModel(path);
  await checkLoadable(model.path, model.path);
  const structure = await withMeasuredTokens(model, detectStructure(model));
  const s = seqLen ?? defaultSeqLen(structure);
  let parameters = 0;
  for (const t of model.proto.graph!.initializer) parameters += elementCount(t.dims);
  return { path: model.path, structure, macs: modelMacs(structure, s), parameters, fileBytes: model.fileBytes, usesExternalData: model.usesExternalData };
}
