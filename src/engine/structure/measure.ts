import type { GraphIndex } from '../onnx/graph';
import type { MeasuredShapes } from '../groups/shapes';
import type { EncoderLayer, LayerShape, ModelStructure } from './types';
import { withInputSize } from '../data/inputSize';
import type { InputSize } from '../data/types';
import { outputProjections } from './layer';

/** The Softmax input (attention scores) of a layer whose heads stay on their own axis, when it has one. */
function scoresOf(ix: GraphIndex, l: EncoderLayer): string | undefined {
  const core = l.attention?.perHead ? l.attention.core : undefined;
  if (!core) return undefined;
  const n = ix.graph.node.find((x) => (x.name || x.output[0]) === core);
  return n?.opType === 'Softmax' ? n.input[0] : undefined;
}

/** A layer's geometry from the measured dims (batch `B`). */
function shapeOf(l: EncoderLayer, B: number, input: readonly number[], scores: readonly number[] | undefined, ffn: readonly number[] | undefined): LayerShape {
  const hidden = outputProjections(l)[0]!.outFeatures;
  const inputDims = [...input.slice(1)];
  const tokens = inputDims.reduce((a, b) => a * b, 1) / hidden;
  const s = scores?.length === 4 ? scores : undefined;
  const windows = s ? s[0]! / B : 1;
  return { hidden, tokens, queries: s ? windows * s[2]! : tokens, keys: s ? s[3]! : tokens, windows, inputDims, ffnRank: ffn?.length ?? 3 };
}

function uniform(shapes: LayerShape[], hidden: number): boolean {
  const t = shapes[0]!.tokens;
  return shapes.every((x) => x.inputDims.length === 2 && x.hidden === hidden && x.tokens === t && x.windows === 1 && x.keys === t && x.queries === t && x.ffnRank === 3);
}

/**
 * Measure, don't guess: the token count of a vision (or other fixed-size input, e.g. audio
 * features) model is what layer 0's residual input measured in the detection's probe run, whatever
 * the embedding (Conv, Linear over reshaped patches, a strided Conv1d stem, ...) and the extra
 * tokens (class, distillation). The same run measured every layer's residual stream and attention
 * scores: when they are not one uniform [batch, tokens, hidden] (Swin: [batch, height, width,
 * channels] per stage, attention over windows) each layer gets its {@link LayerShape}. Text models
 * keep their data-dependent lengths. Dynamic image height and width were probed at `size` (the size
 * calibration images are resized to), which the returned inputs carry.
 */
export function withMeasuredLayers(ix: GraphIndex, st: ModelStructure, shapes: MeasuredShapes, size?: InputSize): ModelStructure {
  if (st.modality === 'text' || !st.layers.length) return st;
  if (size) st = { ...st, inputs: withInputSize(st.inputs, size) };
  const B = shapes.batch;
  const dims = st.layers.map((l) => {
    const scores = scoresOf(ix, l);
    return { input: shapes.get(l.input), scores: scores ? shapes.get(scores) : undefined, ffn: l.ffn ? shapes.get(l.ffn.hidden) : undefined };
  });
  if (dims.some((d) => !d.input)) return st;
  const measured = st.layers.map((l, i) => shapeOf(l, B, dims[i]!.input!, dims[i]!.scores, dims[i]!.ffn));
  const tokens = measured[0]!.tokens;
  if (uniform(measured, st.hidden)) return Number.isInteger(tokens) && tokens > 0 ? { ...st, visionTokens: tokens } : st;
  const windowed = measured.some((x) => x.windows > 1);
  return { ...st, architecture: windowed ? 'swin' : 'staged-vit', visionTokens: tokens, layers: st.layers.map((l, i) => ({ ...l, shape: measured[i]! })) };
}
