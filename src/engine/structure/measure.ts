import type * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import { instrument } from '../optin/instrument';
import { runSession, sessionFor } from '../runtime/session';
import { benchFeeds } from '../data/synthetic';
import type { EncoderLayer, LayerShape, ModelStructure } from './types';
import { withInputSize } from '../data/inputSize';
import type { InputSize } from '../data/types';
import { outputProjections } from './layer';

/** The Softmax input (attention scores) of a layer whose heads stay on their own axis, when it has one. */
function scoresOf(model: OnnxModel, l: EncoderLayer): string | undefined {
  const core = l.attention?.perHead ? l.attention.core : undefined;
  if (!core) return undefined;
  const n = model.proto.graph!.node.find((x) => (x.name || x.output[0]) === core);
  return n?.opType === 'Softmax' ? n.input[0] : undefined;
}

/** A layer's geometry from the probe's tensors (batch `B`). */
function shapeOf(l: EncoderLayer, B: number, input: ort.Tensor, scores: ort.Tensor | undefined, ffn: ort.Tensor | undefined): LayerShape {
  const hidden = outputProjections(l)[0]!.outFeatures;
  const inputDims = [...input.dims.slice(1)];
  const tokens = inputDims.reduce((a, b) => a * b, 1) / hidden;
  const s = scores?.dims.length === 4 ? scores.dims : undefined;
  const windows = s ? s[0]! / B : 1;
  return { hidden, tokens, queries: s ? windows * s[2]! : tokens, keys: s ? s[3]! : tokens, windows, inputDims, ffnRank: ffn?.dims.length ?? 3 };
}

function uniform(shapes: LayerShape[], hidden: number): boolean {
  const t = shapes[0]!.tokens;
  return shapes.every((x) => x.inputDims.length === 2 && x.hidden === hidden && x.tokens === t && x.windows === 1 && x.keys === t && x.queries === t && x.ffnRank === 3);
}

/**
 * Measure, don't guess: the token count of a vision (or other fixed-size input, e.g. audio
 * features) model is what layer 0's residual input measures in one onnxruntime run on a
 * one-example probe batch, whatever the embedding (Conv, Linear over reshaped patches, a strided
 * Conv1d stem, ...) and the extra tokens (class, distillation). The same run measures every
 * layer's residual stream and attention scores: when they are not one uniform [batch, tokens,
 * hidden] (Swin: [batch, height, width, channels] per stage, attention over windows) each layer
 * gets its {@link LayerShape}. Text models keep their data-dependent lengths. Dynamic image height
 * and width are probed at `size` (the size calibration images are resized to). Returns the
 * structure unchanged when the probe cannot be built (other symbolic input sizes).
 */
export async function withMeasuredTokens(model: OnnxModel, st: ModelStructure, size?: InputSize): Promise<ModelStructure> {
  if (st.modality === 'text' || !st.layers.length) return st;
  if (size) st = { ...st, inputs: withInputSize(st.inputs, size) };
  const fixed = st.inputs.every((i) => i.shape.slice(1).every((d) => typeof d === 'number' && d > 0));
  if (!fixed) return st;
  const fixedBatch = st.inputs.map((i) => i.shape[0]).find((d) => typeof d === 'number' && d > 0);
  const B = typeof fixedBatch === 'number' ? fixedBatch : 1;
  const feeds = benchFeeds(st, B, 1);
  const scores = st.layers.map((l) => scoresOf(model, l));
  const wanted = [...new Set([...st.layers.map((l) => l.input), ...scores.filter((x): x is string => !!x), ...st.layers.flatMap((l) => (l.ffn ? [l.ffn.hidden] : []))])];
  const proto = instrument(model, st, { maskLayers: [], outputs: wanted, onlyOutputs: true });
  const s = await sessionFor(model, proto, `${model.path} (token count probe)`);
  try {
    const out = await runSession(s.session, feeds, `${model.path} (token count probe)`);
    const shapes = st.layers.map((l, i) => shapeOf(l, B, out[l.input]!, scores[i] ? out[scores[i]!] : undefined, l.ffn ? out[l.ffn.hidden] : undefined));
    const tokens = shapes[0]!.tokens;
    if (uniform(shapes, st.hidden)) return Number.isInteger(tokens) && tokens > 0 ? { ...st, visionTokens: tokens } : st;
    const windowed = shapes.some((x) => x.windows > 1);
    return { ...st, architecture: windowed ? 'swin' : 'staged-vit', visionTokens: tokens, layers: st.layers.map((l, i) => ({ ...l, shape: shapes[i]! })) };
  } finally {
    await s.session.release();
  }
}

/**
 * A structure detected again on a rewritten model (refit weights: same graph, same layers) with the
 * original's measurements: token count, architecture and every layer's measured shape.
 */
export function withMeasurementsOf(measured: ModelStructure, fresh: ModelStructure): ModelStructure {
  return {
    ...fresh,
    architecture: measured.architecture,
    ...(measured.visionTokens ? { visionTokens: measured.visionTokens } : {}),
    layers: fresh.layers.map((l, i) => (measured.layers[i]?.shape ? { ...l, shape: measured.layers[i]!.shape! } : l)),
  };
}
