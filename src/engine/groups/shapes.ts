import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import { shallowCopyModel } from '../graph/surgery';
import { runSession, sessionFor } from '../runtime/session';
import { GraphIndex } from '../onnx/graph';
import { modelInputs, wordEmbedding } from '../structure/inputs';
import { benchFeeds } from '../data/synthetic';
import { create } from '@bufbuild/protobuf';
import { ValueInfoProtoSchema } from '../onnx/schema';
import { OptinError } from '../errors';
import { hasDynamicSize, noSizeMessage, withInputSize } from '../data/inputSize';
import type { InputSize } from '../data/types';

/** Batch of the shape probe: 2, so a batch axis is never confused with a size-1 axis (unless the graph fixes it). */
export const PROBE_BATCH = 2;

/** Tokens per example of the shape probe's dynamic sequence axes. */
export const PROBE_TOKENS = 16;

/**
 * Every value's measured dims, and the batch they were measured at; `ints` holds the entries of
 * small integer values (shape arithmetic: a Slice's run-time bounds), as measured.
 */
export class MeasuredShapes extends Map<string, number[]> {
  readonly ints = new Map<string, number[]>();

  constructor(readonly batch: number) {
    super();
  }
}

/** Integer values with at most this many entries are kept in {@link MeasuredShapes.ints}. */
const SMALL = 16;

/**
 * Measure, don't guess: the shape of every float value of the graph, from one onnxruntime run on a
 * probe batch of {@link PROBE_BATCH} random inputs (every node output exposed as a graph output).
 * Dynamic image height and width are measured at `size` (see {@link inputSizeFor}).
 * @throws OptinError('unsupported') when an input has no fixed size besides the batch axis
 */
export async function measureShapes(model: OnnxModel, size?: InputSize): Promise<MeasuredShapes> {
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const ix = new GraphIndex(g, model.ext);
  const inputs = withInputSize(modelInputs(ix), size);
  for (const i of inputs) {
    const open = i.shape.slice(1).some((d) => typeof d !== 'number' || d <= 0);
    if (open && !['input_ids', 'attention_mask', 'token_type_ids', 'position_ids', 'past_key_values'].includes(i.role)) {
      throw new OptinError('unsupported', hasDynamicSize(i) ? noSizeMessage(model.path, i) : `${model.path}: input "${i.name}" has dynamic axes (${i.shape.join(' x ')}) and no size to analyse it at; export the model with fixed sizes for every axis but the batch`);
    }
  }
  const have = new Set(g.output.map((o) => o.name));
  for (const n of g.node) {
    if (n.opType === 'Constant') continue;
    for (const o of n.output) if (o && !have.has(o)) { g.output.push(create(ValueInfoProtoSchema, { name: o })); have.add(o); }
  }
  const s = await sessionFor(model, proto, `${model.path} (shape probe)`);
  try {
    const fixed = inputs.map((i) => i.shape[0]).find((d): d is number => typeof d === 'number' && d > 0);
    const batch = fixed ?? PROBE_BATCH;
    const ids = inputs.find((i) => i.role === 'input_ids');
    const table = ids ? wordEmbedding(ix, ids.name) : undefined;
    const feeds = benchFeeds({ inputs, ...(table ? { vocabSize: Number(table.dims[0]) } : {}) }, batch, PROBE_TOKENS);
    const out = await runSession(s.session, feeds, `${model.path} (shape probe)`);
    const shapes = new MeasuredShapes(batch);
    for (const [k, t] of Object.entries(out)) {
      const x = t as ort.Tensor;
      shapes.set(k, [...x.dims]);
      if ((x.type === 'int64' || x.type === 'int32') && x.size <= SMALL) shapes.ints.set(k, Array.from(x.data as BigInt64Array | Int32Array, Number));
    }
    for (const [name, t] of Object.entries(feeds)) shapes.set(name, [...t.dims]);
    return shapes;
  } finally {
    await s.session.release();
  }
}
