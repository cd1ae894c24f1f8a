/**
 * Exact-scoring benchmark on the SST-2 BERT (run on demand: npm run bench:score [-- --samples 16]).
 * (a) this engine (prefix reuse, variants stacked along the batch, sentences in length buckets,
 *     neuron suffixes from the FFN activations) vs the naive method (one full model run per masked
 *     element) on the same batch, plus the engine on one padded batch with every suffix from the
 *     layer input, and prefix reuse alone; all in one process, reported as ratios, with the agreement
 *     of the scores (Spearman, largest relative difference).
 * (b) useful work rate: FLOPs the exact scores require (sum over elements of their suffix's FLOPs)
 *     per second, counted at the padded length and on real tokens only, against onnxruntime's
 *     plain MatMul throughput measured in the same run.
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
import { layerMacs } from '../src/engine/flops';
import { GraphBuilder } from '../src/engine/graph/builder';
import { create, toBinary } from '@bufbuild/protobuf';
import { spearman } from '../src/shared/ranks';
import { GraphProtoSchema, ModelProtoSchema } from '../src/engine/onnx/schema';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

async function matmulThroughput(M: number, K: number, N: number, seconds = 3): Promise<number> {
  const g = create(GraphProtoSchema, { name: 'mm' });
  const b = new GraphBuilder(g, 17);
  b.input('x', [M, K]);
  const w = b.floats(Float32Array.from({ length: K * N }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5), [K, N], 'w');
  const y = b.node('MatMul', ['x', w]);
  b.output(y);
  const bytes = toBinary(ModelProtoSchema, create(ModelProtoSchema, { irVersion: 8n, opsetImport: [{ domain: '', version: 17n }], graph: g }));
  const s = await ort.InferenceSession.create(bytes);
  const x = new ort.Tensor('float32', Float32Array.from({ length: M * K }, (_, i) => (i % 13) / 13), [M, K]);
  for (let i = 0; i < 3; i++) await s.run({ x });
  let runs = 0;
  const t = performance.now();
  while (performance.now() - t < seconds * 1000) { await s.run({ x }); runs++; }
  const secs = (performance.now() - t) / 1000;
  await s.release();
  return (2 * M * K * N * runs) / secs;
}

async function main(): Promise<void> {
  const samples = Number(arg('samples', '16'));
  const modelPath = path.join(root, 'test/fixtures/models/bert-sst2/model-opset17.onnx');
  const model = loadModel(modelPath);
  const st = await detectStructure(model);
  const batch = await loadCalibration(model.path, st, { data: path.join(root, 'test/fixtures/data/sst2/train.tsv'), samples });
  console.log(`model: bert-sst2 (4 layers, hidden 256, 8 heads, FFN 1024); batch ${batch.batch} x ${batch.seqLen} tokens (mean ${batch.meanLength.toFixed(1)} real)`);
  const elements = st.layers.reduce((a, l) => a + l.attention!.heads + (l.ffn?.width ?? 0), 0);
  const run = async (label: string, opts: Parameters<typeof scoreModel>[3]) => {
    const t = performance.now();
    const s = await scoreModel(model, st, batch, opts);
    const sec = (performance.now() - t) / 1000;
    console.log(`  ${label.padEnd(44)} ${sec.toFixed(1).padStart(7)} s`);
    return { sec, s };
  };
  console.log(`scoring all ${elements} heads and neurons exactly:`);
  const engine = await run('engine (length buckets, neuron suffixes)', {});
  const padded = await run('engine on one padded batch, suffixes from layer inputs', { buckets: false, neuronCut: false });
  const prefixOnly = await run('prefix reuse only (one variant per run)', { chunkTokens: 1, buckets: false, neuronCut: false });
  const naive = await run('naive (full model, one variant per run)', { chunkTokens: 1, reusePrefix: false });
  console.log(`ratios: engine vs naive ${(naive.sec / engine.sec).toFixed(2)}x, one padded batch ${(naive.sec / padded.sec).toFixed(2)}x, prefix reuse alone ${(naive.sec / prefixOnly.sec).toFixed(2)}x; engine vs one padded batch ${(padded.sec / engine.sec).toFixed(2)}x`);
  const b = engine.s.calibration.buckets;
  if (b) console.log(`length buckets: ${b.map((x) => `${x.examples} x ${x.seqLen}`).join(', ')} = ${b.reduce((a, x) => a + x.examples * x.seqLen, 0)} of ${batch.batch * batch.seqLen} padded positions`);
  for (const kind of ['heads', 'neurons'] as const) {
    const x = engine.s[kind].flat(), y = naive.s[kind].flat();
    const rel = Math.max(...x.map((v, i) => Math.abs(v - y[i]!) / Math.max(Math.abs(y[i]!), 1e-12)));
    console.log(`${kind} scores, engine vs naive: Spearman ${spearman(x, y).toFixed(6)}, largest relative difference ${rel.toExponential(1)}`);
  }
  const S = batch.seqLen;
  const L = st.layers.length;
  let flops = 0;
  st.layers.forEach((l, i) => {
    let suffix = 0;
    for (let k = i; k < L; k++) suffix += layerMacs(st.layers[k]!, S, st.hidden).total;
    flops += (l.attention!.heads + (l.ffn?.width ?? 0)) * 2 * suffix * batch.batch;
  });
  // The same count on real tokens only: each example at its own unpadded length.
  const lengths = Array.from({ length: batch.batch }, (_, e) => batch.tokenMask.subarray(e * S, (e + 1) * S).reduce((a, m) => a + m, 0));
  let realFlops = 0;
  st.layers.forEach((l, i) => {
    let suffix = 0;
    for (let k = i; k < L; k++) for (const n of lengths) suffix += layerMacs(st.layers[k]!, n, st.hidden).total;
    realFlops += (l.attention!.heads + (l.ffn?.width ?? 0)) * 2 * suffix;
  });
  const useful = flops / engine.sec;
  const usefulReal = realFlops / engine.sec;
  const mm = await matmulThroughput(batch.batch * S, st.hidden, 4 * st.hidden);
  console.log(`useful work: ${(flops / 1e9).toFixed(1)} GFLOP required by the exact scores at the padded length ${S} in ${engine.sec.toFixed(1)} s = ${(useful / 1e9).toFixed(1)} GFLOP/s`);
  console.log(`             ${(realFlops / 1e9).toFixed(1)} GFLOP on real tokens only (${lengths.reduce((a, b) => a + b, 0)} of ${batch.batch * S} positions) = ${(usefulReal / 1e9).toFixed(1)} GFLOP/s`);
  console.log(`onnxruntime plain MatMul [${batch.batch * S} x ${st.hidden}] x [${st.hidden} x ${4 * st.hidden}] in this run: ${(mm / 1e9).toFixed(1)} GFLOP/s`);
  console.log(`useful work rate / MatMul throughput: ${((100 * useful) / mm).toFixed(0)}% counting padded positions, ${((100 * usefulReal) / mm).toFixed(0)}% on real tokens`);
}

main().catch((e) => { console.error(e); process.exit(1); });
