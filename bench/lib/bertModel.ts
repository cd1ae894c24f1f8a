import * as fs from 'node:fs';
import { create, toBinary } from '@bufbuild/protobuf';
import { DataLocation, GraphProtoSchema, ModelProtoSchema, DataType, StringStringEntryProtoSchema, TensorProtoSchema } from '../../src/engine/onnx/schema';
import { GraphBuilder } from '../../src/engine/graph/builder';
import { mulberry32 } from '../../src/engine/optin/random';
import { gaussian } from '../../src/engine/data/calibration';

/** Geometry of a generated BERT-like encoder. */
export interface BertGeometry { layers: number; hidden: number; heads: number; ffn: number; vocab: number; positions: number; classes: number }

/**
 * A post-LN BERT-architecture classifier (separate Q/K/V, erf GELU, opset 17 LayerNormalization,
 * CLS-token head) with random N(0, 0.02) weights, as the PyTorch exporter lays it out. For benchmarks.
 * With `external`, every weight matrix is streamed to that external-data file as it is generated
 * (the model can exceed 2 GB; the returned bytes hold only the graph).
 */
export function bertModel(g: BertGeometry, seed = 1, external?: { file: string; location: string }): Uint8Array {
  const rnd = mulberry32(seed);
  const graph = create(GraphProtoSchema, { name: 'bert-random' });
  const b = new GraphBuilder(graph, 17);
  const fd = external ? fs.openSync(external.file, 'w') : undefined;
  let offset = 0;
  const W = (dims: number[], std = 0.02): string => {
    const data = Float32Array.from({ length: dims.reduce((x, y) => x * y, 1) }, () => std * gaussian(rnd));
    if (fd === undefined || !external) return b.floats(data, dims, 'w');
    const name = `weight_ext_${graph.initializer.length}`;
    const bytes = new Uint8Array(data.buffer);
    for (let done = 0; done < bytes.byteLength; ) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, offset + done);
    graph.initializer.push(create(TensorProtoSchema, {
      name, dims: dims.map(BigInt), dataType: DataType.FLOAT, dataLocation: DataLocation.EXTERNAL,
      externalData: [['location', external.location], ['offset', String(offset)], ['length', String(bytes.byteLength)]].map(([key, value]) => create(StringStringEntryProtoSchema, { key: key!, value: value! })),
    }));
    offset += bytes.byteLength;
    return name;
  };
  const C = (v: number, n: number): string => b.floats(new Float32Array(n).fill(v), [n], 'c');
  const scalar = (v: number): string => b.floats(Float32Array.of(v), [], 's');
  const D = g.hidden, H = g.heads, d = D / H;
  b.input('input_ids', ['batch', 'sequence'], DataType.INT64);
  b.input('attention_mask', ['batch', 'sequence'], DataType.INT64);
  const word = b.node('Gather', [W([g.vocab, D]), 'input_ids'], {}, 'word');
  const seqShape = b.node('Shape', ['input_ids']);
  const seqLen = b.node('Gather', [seqShape, b.ints([1])], { axis: 0 });
  const positions = b.node('Range', [b.ints([0], []), b.node('Squeeze', [seqLen, b.ints([0])]), b.ints([1], [])]);
  const pos = b.node('Gather', [W([g.positions, D]), positions], {}, 'pos');
  const ln = (x: string): string => b.node('LayerNormalization', [x, C(1, D), C(0, D)], { axis: -1, epsilon: { float: 1e-12 } }, 'ln');
  let h = ln(b.node('Add', [word, pos]));
  const maskF = b.node('Cast', [b.node('Unsqueeze', ['attention_mask', b.ints([1, 2])])], { to: DataType.FLOAT });
  const maskBias = b.node('Mul', [b.node('Sub', [scalar(1), maskF]), scalar(-10000)]);
  const linear = (x: string, i: number, o: number): string => b.node('Add', [b.node('MatMul', [x, W([i, o])]), C(0, o)]);
  const split = (x: string): string => b.node('Transpose', [b.node('Reshape', [x, b.ints([0, 0, H, d])])], { perm: [0, 2, 1, 3] });
  for (let l = 0; l < g.layers; l++) {
    const q = split(linear(h, D, D)), k = split(linear(h, D, D)), v = split(linear(h, D, D));
    const kt = b.node('Transpose', [k], { perm: [0, 1, 3, 2] });
    const scores = b.node('Add', [b.node('Div', [b.node('MatMul', [q, kt]), scalar(Math.sqrt(d))]), maskBias]);
    const probs = b.node('Softmax', [scores], { axis: -1 });
    const ctx = b.node('Reshape', [b.node('Transpose', [b.node('MatMul', [probs, v])], { perm: [0, 2, 1, 3] }), b.ints([0, 0, D])]);
    h = ln(b.node('Add', [linear(ctx, D, D), h]));
    const up = linear(h, D, g.ffn);
    const gelu = b.node('Mul', [b.node('Mul', [up, scalar(0.5)]), b.node('Add', [b.node('Erf', [b.node('Div', [up, scalar(Math.SQRT2)])]), scalar(1)])]);
    h = ln(b.node('Add', [linear(gelu, g.ffn, D), h]));
  }
  const cls = b.node('Gather', [h, b.ints([0], [])], { axis: 1 });
  const pooled = b.node('Tanh', [linear(cls, D, D)]);
  const logits = linear(pooled, D, g.classes);
  graph.node[graph.node.length - 1]!.output[0] = 'logits';
  b.output('logits');
  void logits;
  if (fd !== undefined) fs.closeSync(fd);
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, { irVersion: 8n, producerName: 'optin-bench', opsetImport: [{ domain: '', version: 17n }], graph }));
}
