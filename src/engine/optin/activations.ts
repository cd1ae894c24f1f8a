import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import type { OnnxModel } from '../onnx/model';
import { ValueInfoProtoSchema } from '../onnx/schema';
import { shallowCopyModel } from '../graph/surgery';
import { runSession, sessionFor, toOrt } from '../runtime/session';
import { chunks } from '../data/batches';
import type { CalibrationBatch } from '../data/types';

const CHUNK = 16;

/** Per-feature sums of squares of a value over a set of rows, and how many rows were summed. */
export interface FeatureEnergy {
  sums: Float64Array;
  rows: number;
}

/**
 * One dense run of the batch with `values` as extra outputs: for each value, the sum over rows of
 * every feature's (last axis) square, over the batch's real tokens (every row when the value is not
 * [batch, seq, features]); with `examples`, also the same sums over those examples' rows alone.
 */
export async function featureEnergies(model: OnnxModel, values: string[], batch: CalibrationBatch, examples?: number[]): Promise<{ all: Map<string, FeatureEnergy>; picked: Map<string, FeatureEnergy> }> {
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const have = new Set(g.output.map((o) => o.name));
  for (const v of values) if (!have.has(v)) g.output.push(create(ValueInfoProtoSchema, { name: v }));
  const s = await sessionFor(model, proto, `${model.path} (activation norms)`);
  const all = new Map<string, FeatureEnergy>(), picked = new Map<string, FeatureEnergy>();
  const chosen = new Set(examples ?? []);
  try {
    for (const c of chunks(batch.feeds, batch.batch, CHUNK)) {
      const out = await runSession(s.session, toOrt(c.feeds), model.path);
      for (const v of values) {
        const t = out[v] as ort.Tensor;
        const x = t.data as Float32Array, F = t.dims[t.dims.length - 1]!, rows = x.length / F;
        const perExample = t.dims.length === 3 && t.dims[1] === batch.seqLen;
        const perRow = rows / (Math.min(batch.batch, c.start + CHUNK) - c.start);
        let a = all.get(v), p = picked.get(v);
        if (!a) all.set(v, (a = { sums: new Float64Array(F), rows: 0 }));
        if (!p) picked.set(v, (p = { sums: new Float64Array(F), rows: 0 }));
        for (let r = 0; r < rows; r++) {
          if (perExample && !batch.tokenMask[c.start * batch.seqLen + r]) continue;
          const into = chosen.has(c.start + Math.floor(r / perRow)) ? [a, p] : [a];
          for (const e of into) {
            e.rows++;
            for (let j = 0; j < F; j++) e.sums[j] = e.sums[j]! + x[r * F + j]! * x[r * F + j]!;
          }
        }
      }
    }
  } finally {
    await s.session.release();
  }
  return { all, picked };
}
