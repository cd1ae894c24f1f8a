import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import type { CalibrationBatch } from '../data/calibration';
import type { EpChoice, Provider } from '../runtime/providers';
import { runSession, sessionFor, toOrt } from '../runtime/session';
import { instrumentChannels } from './instrument';
import type { ChannelStructure } from './structure';
import { channelsLast } from '../optin/pixels';
import { scoredOutput } from '../graph/scoredOutput';

/** Dense outputs every masked variant of a channel network is compared against. */
export interface ChannelTeacher {
  logits: Float32Array;
  logitsDims: number[];
  /** Every feature, channels last: [rows, channels]. */
  features: Array<{ data: Float32Array; rows: number; channels: number }>;
  provider: Provider;
}

/** Run the dense model once on the batch, exposing every feature. */
export async function runChannelTeacher(model: OnnxModel, cs: ChannelStructure, batch: CalibrationBatch, ep: EpChoice = 'cpu'): Promise<ChannelTeacher> {
  const scored = scoredOutput(model.proto, cs.outputs[0]!);
  const proto = instrumentChannels(model, cs, [], [...cs.features.map((f) => f.value), scored]);
  const s = await sessionFor(model, proto, `${model.path} (teacher)`, ep);
  try {
    const r = await runSession(s.session, toOrt(batch.feeds), `${model.path} (dense run)`);
    const logits = r[scored] as ort.Tensor;
    return {
      logits: logits.data as Float32Array,
      logitsDims: [...logits.dims],
      features: cs.features.map((f) => {
        const t = r[f.value] as ort.Tensor;
        const data = channelsLast(t.data as Float32Array, [...t.dims], f.axis);
        const channels = t.dims[f.axis]!;
        return { data, rows: data.length / channels, channels };
      }),
      provider: s.provider,
    };
  } finally {
    await s.session.release();
  }
}
