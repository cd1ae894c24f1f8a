import type * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import { instrument } from '../optin/instrument';
import { runSession } from '../runtime/session';
import { sessionFor } from '../optin/teacher';
import { benchFeeds } from '../eval/bench';
import type { ModelStructure } from './types';

/**
 * Measure, don't guess: the token count of a vision (or other fixed-size input, e.g. audio
 * features) model is what layer 0's residual input ([batch, tokens, hidden]) measures in one
 * onnxruntime run on a one-example probe batch, whatever the embedding (Conv, Linear over reshaped
 * patches, a strided Conv1d stem, ...) and the extra tokens (class, distillation). Text models keep
 * their data-dependent lengths. Returns the structure with `visionTokens` set from the run
 * (unchanged when the probe cannot be built, e.g. symbolic input sizes).
 */
export async function withMeasuredTokens(model: OnnxModel, st: ModelStructure): Promise<ModelStructure> {
  if (st.modality === 'text' || !st.layers.length) return st;
  const fixed = st.inputs.every((i) => i.shape.slice(1).every((d) => typeof d === 'number' && d > 0));
  if (!fixed) return st;
  const fixedBatch = st.inputs.map((i) => i.shape[0]).find((d) => typeof d === 'number' && d > 0);
  const feeds = benchFeeds(st, typeof fixedBatch === 'number' ? fixedBatch : 1, 1);
  const first = st.layers[0]!.input;
  const proto = instrument(model, st, { maskLayers: [], outputs: [first], onlyOutputs: true });
  const s = await sessionFor(model, proto, `${model.path} (token count probe)`);
  try {
    const out = (await runSession(s.session, feeds, `${model.path} (token count probe)`))[first] as ort.Tensor;
    const tokens = out.dims.length === 3 ? out.dims[1]! : undefined;
    return tokens ? { ...st, visionTokens: tokens } : st;
  } finally {
    await s.session.release();
  }
}
