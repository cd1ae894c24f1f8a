import { loadModel } from './onnx/model';
import { analyzeModel } from './analyze';
import { inputSizeFor } from './data/inputSize';
import { modelInputs } from './structure/inputs';
import { GraphIndex } from './onnx/graph';
import type { InputSize } from './data/types';
import { channelSummary, type ChannelSummary } from './channels/jobs';
import { modelMacs, type MacReport } from './flops';
import { checkLoadable } from './runtime/session';
import { countParameters } from './onnx/tensor';
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
  /** Channel networks (CNNs): the prunable coupled-channel groups; `structure` then has no layers. */
  channels?: ChannelSummary;
  /** Hybrid models: the coupled-channel groups outside the transformer layers, searched with its heads and neurons. */
  hybrid?: ChannelSummary;
}

/** Sequence length used for the MAC model when the caller gives none. */
export function defaultSeqLen(st: ModelStructure): number {
  if (st.modality !== 'text' && st.visionTokens) return st.visionTokens;
  return Math.min(128, st.maxPositions ?? 128);
}

/**
 * Load, check in onnxruntime and analyse a model.
 * @throws OptinError for unreadable, refused or non-transformer models.
 */
export async function inspectModel(path: string, seqLen?: number, size?: InputSize): Promise<InspectReport> {
  const model = loadModel(path);
  await checkLoadable(model.path, model.path);
  const at = size ?? inputSizeFor(path);
  const a = await analyzeModel(model, at);
  const parameters = countParameters(model.proto);
  if (a.kind === 'channels') {
    const channels = channelSummary(model, a.cs);
    const cs = a.cs;
    const inputs = cs.inputSize ? modelInputs(new GraphIndex(model.proto.graph!, model.ext)) : cs.inputs;
    const structure: ModelStructure = { architecture: cs.architecture, modality: cs.modality, hidden: 0, norm: 'post', layers: [], inputs, outputs: cs.outputs, opset: cs.opset, producer: cs.producer };
    return { path: model.path, structure, macs: { seqLen: 1, layers: [], total: channels.macs.prunable }, parameters, fileBytes: model.fileBytes, usesExternalData: model.usesExternalData, channels };
  }
  // The model's own input axes are shown (symbolic ones too), whatever size the tokens were measured at.
  const structure = { ...a.st, inputs: modelInputs(new GraphIndex(model.proto.graph!, model.ext)) };
  const s = seqLen ?? defaultSeqLen(structure);
  return {
    path: model.path, structure, macs: modelMacs(structure, s), parameters, fileBytes: model.fileBytes, usesExternalData: model.usesExternalData,
    ...(a.channels ? { hybrid: channelSummary(model, a.channels) } : {}),
  };
}
