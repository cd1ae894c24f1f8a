import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import type { CalibrationBatch, TensorData } from '../data/calibration';
import { runSession, sessionFor, toOrt } from '../runtime/session';
import type { EpChoice, Provider } from '../runtime/providers';
import { instrument } from './instrument';
import { scoredOutput } from '../graph/scoredOutput';

/** Dense-model outputs OPTIN compares every masked variant against. */
export interface TeacherRun {
  logits: Float32Array;
  logitsDims: number[];
  /**
   * Float outputs after the first of the same rank (QA start and end logits, several classifier
   * heads): each gets its own output term. Outputs of another rank (a pretraining model's
   * next-sentence logits [B, 2] beside its MLM logits [B, S, V]) are not scored.
   */
  others: Array<{ name: string; data: Float32Array; dims: number[] }>;
  /** Feature of every layer, [batch, seq, D]. */
  features: Float32Array[];
  featureDims: number[][];
  /** Residual-stream input of every layer, [batch, seq, D]. */
  layerInputs: Float32Array[];
  /** The provider the dense run used (auto resolved). */
  provider: Provider;
}

/** Run the dense model once, exposing every layer's input and feature. */
export async function runTeacher(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch, ep: EpChoice = 'cpu'): Promise<TeacherRun> {
  const outputs = [...new Set([...st.layers.map((l) => l.input), ...st.layers.map((l) => l.feature)])];
  const scored = scoredOutput(model.proto, st.outputs[0]!);
  const proto = instrument(model, st, { maskLayers: [], outputs: [...outputs, scored] });
  const s = await sessionFor(model, proto, `${model.path} (teacher)`, ep);
  try {
    const r = await runSession(s.session, toOrt(batch.feeds), `${model.path} (dense run)`);
    const get = (name: string): ort.Tensor => {
      const t = r[name];
      if (!t) throw new Error(`teacher run did not return ${name}`);
      return t;
    };
    const logits = get(scored);
    return {
      logits: logits.data as Float32Array,
      logitsDims: [...logits.dims],
      others: st.outputs.slice(1).map((name) => ({ name, t: get(name) })).filter((o) => o.t.type === 'float32' && o.t.dims.length === logits.dims.length).map((o) => ({ name: o.name, data: o.t.data as Float32Array, dims: [...o.t.dims] })),
      features: st.layers.map((l) => get(l.feature).data as Float32Array),
      featureDims: st.layers.map((l) => [...get(l.feature).dims]),
      layerInputs: st.layers.map((l) => get(l.input).data as Float32Array),
      provider: s.provider,
    };
  } finally {
    await s.session.release();
  }
}

/**
 * Dense values of layer l (computed from its input, `layerInput` [batch, ..]) for each part of a
 * batch: one run of the graph from the layer input to `names` per part.
 */
export async function layerValues(model: OnnxModel, st: ModelStructure, l: number, parts: Array<{ batch: CalibrationBatch; layerInput: TensorData }>, names: string[], ep: EpChoice): Promise<Array<Map<string, ort.Tensor>>> {
  const proto = instrument(model, st, { maskLayers: [], outputs: names, cutAt: l, onlyOutputs: true });
  const inputs = new Set(proto.graph!.input.map((i) => i.name));
  const s = await sessionFor(model, proto, `${model.path} (layer ${l} dense values)`, ep);
  try {
    const out: Array<Map<string, ort.Tensor>> = [];
    for (const p of parts) {
      const feeds = toOrt(Object.fromEntries([[st.layers[l]!.input, p.layerInput], ...Object.entries(p.batch.feeds)].filter(([k]) => inputs.has(k as string))));
      const r = await runSession(s.session, feeds, `${model.path} (layer ${l} dense run)`);
      out.push(new Map(names.map((name) => [name, r[name]!])));
    }
    return out;
  } finally {
    await s.session.release();
  }
}
