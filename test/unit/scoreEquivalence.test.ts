import * as assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration, type CalibrationBatch } from '../../src/engine/data/calibration';
import { scoreModel, tokenRows } from '../../src/engine/optin/scorer';
import { headMaskDims, headMaskName, instrument, neuronMaskName } from '../../src/engine/optin/instrument';
import { serializeModel } from '../../src/engine/onnx/writer';
import type { ModelStructure } from '../../src/engine/structure/types';
import type { OnnxModel } from '../../src/engine/onnx/model';
import { FIXTURES, fixture } from './helpers';
import * as path from 'node:path';

/**
 * The paper's method written plainly: one full-model run per masked element, Gram matrices and KL
 * computed in double precision in JavaScript, then balanced and decayed.
 */
async function naiveScores(model: OnnxModel, st: ModelStructure, batch: CalibrationBatch): Promise<{ heads: number[][]; neurons: number[][] }> {
  const L = st.layers.length;
  const proto = instrument(model, st, { maskLayers: st.layers.map((_, i) => i), outputs: st.layers.map((l) => l.feature) });
  const session = await ort.InferenceSession.create(serializeModel({ ...model, proto }));
  const B = batch.batch;
  const rows = tokenRows(batch, 768, 0);
  const D = st.hidden;
  const run = async (layer: number, kind: 'head' | 'neuron' | 'none', index: number) => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(batch.feeds)) feeds[k] = new ort.Tensor(t.type, t.data, t.dims);
    st.layers.forEach((l, i) => {
      const hd = headMaskDims(l);
      const w = l.attention.heads * hd.repeat;
      const hm = new Float32Array(B * w).fill(1);
      if (kind === 'head' && i === layer) for (let r = 0; r < B; r++) hm.fill(0, r * w + index * hd.repeat, r * w + (index + 1) * hd.repeat);
      feeds[headMaskName(i)] = new ort.Tensor('float32', hm, hd.dims.map((d) => (d === 'n' ? B : d)) as number[]);
      if (l.ffn) {
        const nm = new Float32Array(B * l.ffn.width).fill(1);
        if (kind === 'neuron' && i === layer) for (let r = 0; r < B; r++) nm[r * l.ffn.width + index] = 0;
        feeds[neuronMaskName(i)] = new ort.Tensor('float32', nm, [B, 1, l.ffn.width]);
      }
    });
    const out = await session.run(feeds);
    const z = out[st.outputs[0]!]!;
    return { logits: z.data as Float32Array, classes: z.dims[z.dims.length - 1]!, features: st.layers.map((l) => out[l.feature]!.data as Float32Array) };
  };
  const gram = (f: Float32Array): Float64Array => {
    const K = rows.length;
    const n = rows.map((r) => {
      let s = 0;
      for (let j = 0; j < D; j++) s += f[r * D + j]! ** 2;
      const norm = Math.max(Math.sqrt(s), 1e-12);
      return Array.from({ length: D }, (_, j) => f[r * D + j]! / norm);
    });
    const g = new Float64Array(K * K);
    for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) { let s = 0; for (let j = 0; j < D; j++) s += n[a]![j]! * n[b]![j]!; g[a * K + b] = s; }
    return g;
  };
  const teacher = await run(-1, 'none', 0);
  const gT = teacher.features.map(gram);
  const C = teacher.classes;
  const rowsOut = teacher.logits.length / C;
  const softmax = (z: Float32Array, r: number): number[] => {
    const row = Array.from(z.subarray(r * C, (r + 1) * C));
    const mx = Math.max(...row);
    const e = row.map((x) => Math.exp(x - mx));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };
  const rawFor = async (l: number, kind: 'head' | 'neuron', index: number) => {
    const s = await run(l, kind, index);
    let md = 0;
    const ks = l === L - 1 ? [l] : Array.from({ length: L - l - 1 }, (_, i) => l + 1 + i);
    for (const k of ks) {
      const gS = gram(s.features[k]!);
      for (let i = 0; i < gS.length; i++) md += (gT[k]![i]! - gS[i]!) ** 2;
    }
    let kl = 0;
    for (let r = 0; r < rowsOut; r++) {
      const p = softmax(teacher.logits, r);
      const q = softmax(s.logits, r);
      for (let j = 0; j < C; j++) kl += p[j]! * (Math.log(p[j]!) - Math.log(q[j]!));
    }
    return { md, kl: 16 * kl };
  };
  const heads: Array<Array<{ md: number; kl: number }>> = [];
  const neurons: Array<Array<{ md: number; kl: number }>> = [];
  for (let l = 0; l < L; l++) {
    const layer = st.layers[l]!;
    heads.push([]);
    neurons.push([]);
    for (let h = 0; h < layer.attention.heads; h++) heads[l]!.push(await rawFor(l, 'head', h));
    for (let n = 0; n < (layer.ffn?.width ?? 0); n++) neurons[l]!.push(await rawFor(l, 'neuron', n));
  }
  await session.release();
  if (process.env.OPTIN_DEBUG_SCORES) console.log('naive raw', JSON.stringify({ h: heads[0]!.slice(0, 4), n: neurons[0]!.slice(0, 3) }));
  const combine = (raw: Array<Array<{ md: number; kl: number }>>, decay: number): number[][] => {
    const scales: number[] = [];
    return raw.map((layer, l) => layer.map(({ md, kl }) => {
      let scale = scales.length ? scales.reduce((a, b) => a + b, 0) / scales.length : 1;
      if (md > kl && kl > 0) { scale = 10 ** Math.trunc(Math.log10(md) - Math.log10(kl) - 1); scales.push(scale); }
      return (md + scale * kl) * decay * (l === L - 1 ? 0.5 : 1);
    }));
  };
  return { heads: combine(heads, 0.5), neurons: combine(neurons, 1) };
}

/**
 * |fast - naive| <= 1e-4 * max(|naive|, 1e-3 * largest score of that layer). Elements a thousand
 * times below their layer's top score are compared at that floor: their values sit at the float32
 * noise of two different onnxruntime graphs (measured worst: 1.1e-4 on a score 1e-5 of the top).
 */
function assertClose(actual: number[][], expected: number[][], what: string): void {
  let worst = 0;
  actual.forEach((row, l) => row.forEach((a, i) => {
    const e = expected[l]![i]!;
    const top = Math.max(...expected[l]!.map(Math.abs));
    const rel = Math.abs(a - e) / Math.max(Math.abs(e), 1e-3 * top, 1e-30);
    worst = Math.max(worst, rel);
    assert.ok(rel <= 1e-4, `${what} layer ${l} element ${i}: fast ${a} vs naive ${e} (relative ${rel.toExponential(2)})`);
  }));
  assert.ok(worst <= 1e-4);
}

const CASES: Array<[string, () => { data?: string; samples: number }]> = [
  ['torch-bert-like-random/model-opset17.onnx', () => ({ samples: 6 })],
  ['vit-digits/model-opset17.onnx', () => ({ data: path.join(FIXTURES, 'data', 'digits', 'test'), samples: 10 })],
  ['ort-bert-toy/model.ort-fused.onnx', () => ({ samples: 4 })],
];

describe('exact OPTIN scores: suffix reuse + batched variants equal the naive method', () => {
  for (const [rel, data] of CASES) {
    it(`${rel}: every head and neuron within 1e-4 relative`, async () => {
      const model = loadModel(fixture(rel));
      const st = detectStructure(model);
      const batch = await loadCalibration(model.path, st, data());
      const fast = await scoreModel(model, st, batch, { chunkTokens: Number(process.env.OPTIN_CHUNK ?? 300) });
      const naive = await naiveScores(model, st, batch);
      if (process.env.OPTIN_DEBUG_SCORES) console.log('fast raw', JSON.stringify({ h: fast.raw.heads[0], n: { md: fast.raw.neurons[0]!.md.slice(0, 3), kl: fast.raw.neurons[0]!.kl.slice(0, 3) } }));
      assertClose(fast.heads, naive.heads, 'head');
      assertClose(fast.neurons, naive.neurons, 'neuron');
      assert.equal(fast.heads.length, st.layers.length);
      assert.ok(fast.neurons.flat().some((x) => x > 0), 'scores are not all zero');
    });
  }
});
