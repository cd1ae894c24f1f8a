import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { GraphBuilder, modelBytes } from '../graph/builder';
import { DataType, GraphProtoSchema } from '../onnx/schema';
import { runSession } from '../runtime/session';
import type { FitProblem, NormalEquations } from './leastSquares';

/** Doubles of rows x features one onnxruntime run takes at most (128 MB). */
const CHUNK_VALUES = 16 * 1024 * 1024;

/** x^T x and x^T y of float64 inputs x [n, F], y [n, M], with the names of the two outputs. */
function gramModel(): { bytes: Uint8Array; xtx: string; xty: string } {
  const graph = create(GraphProtoSchema, { name: 'optin-normal-equations' });
  const b = new GraphBuilder(graph, 17);
  b.input('x', ['n', 'f'], DataType.DOUBLE);
  b.input('y', ['n', 'm'], DataType.DOUBLE);
  const xt = b.node('Transpose', ['x'], { perm: [1, 0] });
  const xtx = b.node('MatMul', [xt, 'x'], {}, 'xtx'), xty = b.node('MatMul', [xt, 'y'], {}, 'xty');
  b.output(xtx, DataType.DOUBLE);
  b.output(xty, DataType.DOUBLE);
  return { bytes: modelBytes(graph, 'optin-normal-equations'), xtx, xty };
}

let gram: { session: Promise<ort.InferenceSession>; xtx: string; xty: string } | undefined;

/**
 * The normal equations of a least-squares problem summed by onnxruntime's float64 MatMul (the
 * same sums as {@link normalEquations} in JavaScript, in another order: 7-10x faster here,
 * npm run bench:normal-equations),
 * in chunks of at most `chunkValues` doubles.
 */
export async function normalEquationsOnRuntime(p: FitProblem, chunkValues = CHUNK_VALUES): Promise<NormalEquations> {
  if (!gram) {
    const m = gramModel();
    gram = { session: ort.InferenceSession.create(m.bytes), xtx: m.xtx, xty: m.xty };
  }
  const s = await gram.session;
  const F = p.features + (p.bias ? 1 : 0), M = p.outputs;
  const A = new Float64Array(F * F), B = new Float64Array(F * M);
  let yy = 0;
  const chunk = Math.max(1, Math.floor(chunkValues / Math.max(F, M)));
  const v = new Float64Array(p.features);
  for (let r0 = 0; r0 < p.rows; r0 += chunk) {
    const n = Math.min(chunk, p.rows - r0);
    const x = new Float64Array(n * F), y = new Float64Array(n * M);
    for (let r = 0; r < n; r++) {
      p.row(r0 + r, v);
      x.set(v, r * F);
      if (p.bias) x[r * F + F - 1] = 1;
      for (let o = 0; o < M; o++) { const t = p.y(r0 + r, o); y[r * M + o] = t; yy += t * t; }
    }
    const out = await runSession(s, { x: new ort.Tensor('float64', x, [n, F]), y: new ort.Tensor('float64', y, [n, M]) }, 'least-squares sums');
    const a = out[gram.xtx]!.data as Float64Array, bb = out[gram.xty]!.data as Float64Array;
    for (let i = 0; i < A.length; i++) A[i] = A[i]! + a[i]!;
    for (let i = 0; i < B.length; i++) B[i] = B[i]! + bb[i]!;
  }
  return { A, B, yy };
}
