import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, type OnnxModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { detectStructure } from '../../src/engine/structure/detect';
import type { ModelStructure } from '../../src/engine/structure/types';
import { headMacs, modelMacs, neuronMacs } from '../../src/engine/flops';
import { loadCalibration, type CalibrationBatch } from '../../src/engine/data/calibration';
import { applyKeep, type KeepSet } from '../../src/engine/prune/apply';
import { verifyPruned } from '../../src/engine/verify/verify';
import { mulberry32 } from '../../src/engine/optin/random';
import { tensorFloat32 } from '../../src/engine/onnx/tensor';
import { DataType } from '../../src/engine/onnx/schema';
import { FIXTURES, expectOptinError, fixture } from './helpers';
import { evaluate } from '../../src/engine/eval/evaluate';
import { benchModels } from '../../src/engine/eval/bench';

/** Random keep set: layer 1 (of 3+) loses every head, layer 0 (of 3+) every neuron; random scales. */
function randomKeep(st: ModelStructure, seed: number): KeepSet {
  const rnd = mulberry32(seed);
  const L = st.layers.length;
  const keep: KeepSet = {
    heads: st.layers.map((l, i) => Array.from({ length: l.attention!.heads }, (_, h) => h).filter(() => !(i === 1 && L > 2) && rnd() < 0.6)),
    neurons: st.layers.map((l, i) => Array.from({ length: l.ffn?.width ?? 0 }, (_, j) => j).filter(() => !(i === 0 && L > 2) && rnd() < 0.5)),
  };
  if (keep.heads.every((h) => h.length === 0) || L === 1) keep.heads[0] = [st.layers[0]!.attention!.heads - 1];
  keep.scales = { heads: keep.heads.map((h) => h.map(() => 0.5 + rnd())), neurons: keep.neurons.map((n) => n.map(() => 0.5 + rnd())) };
  return keep;
}

function keptMacs(st: ModelStructure, keep: KeepSet, s: number): number {
  return st.layers.reduce((a, l, i) => a + keep.heads[i]!.length * headMacs(s, st.hidden, l.attention!.headSize, l.attention!.vHeadSize) + keep.neurons[i]!.length * neuronMacs(s, st.hidden), 0);
}

const SUPPORTED = [
  'bert-sst2/model-opset17.onnx',
  'torch-bert-like-random/model-opset14.onnx',
  'torch-bert-like-random/model-opset17.ort-fused.onnx',
  'keras2onnx-tfbert-mrpc/model.onnx',
  'keras2onnx-tfbert-mrpc/model.ort-fused.onnx',
  'optimum-tiny-distilbert-sst2/model.onnx',
  'optimum-tiny-distilbert-sst2/model.ort-fused.onnx',
  'ort-bert-toy/model.onnx',
  'ort-bert-toy/model.ort-fused.onnx',
  'ort-fused-attention/attention-opt.onnx',
  'ort-fused-attention/attention-varied-qkv-opt.onnx',
  'ort-fused-attention/attention-mha.onnx',
  'ort-fused-attention/bert-3d-attention-opt.onnx',
  'vit-digits/model-opset14.onnx',
  'vit-digits/model-opset17.onnx',
  'gpt2-style-random/model.onnx',
];

describe('physical pruning', function () {
  this.timeout(120_000);
  const cache = new Map<string, { m: OnnxModel; st: ModelStructure; batch: CalibrationBatch }>();
  const load = async (rel: string) => {
    let hit = cache.get(rel);
    if (!hit) {
      const m = loadModel(fixture(rel));
      const st = await detectStructure(m);
      hit = { m, st, batch: await loadCalibration(m.path, st, { samples: 4 }) };
      cache.set(rel, hit);
    }
    return hit;
  };

  for (const rel of SUPPORTED) {
    it(`${rel}: sliced model equals the masked original and has the planned MACs`, async () => {
      const { m, st, batch } = await load(rel);
      const keep = randomKeep(st, 7);
      const proto = applyKeep(m, st, keep);
      const pruned = { ...m, path: `${m.path} (pruned)`, proto };
      const s = batch.meanLength;
      const v = await verifyPruned(m, st, pruned, keep, batch, { macs: keptMacs(st, keep, s), seqLen: s });
      assert.ok(v.maxAbsDiff <= v.tolerance, `diff ${v.maxAbsDiff}`);
      assert.ok(v.outputScale > 0);
      const before = m.proto.graph!.initializer.filter((t) => t.dataType === DataType.FLOAT).reduce((a, t) => a + t.dims.reduce((x, d) => x * Number(d), 1), 0);
      const after = proto.graph!.initializer.filter((t) => t.dataType === DataType.FLOAT).reduce((a, t) => a + t.dims.reduce((x, d) => x * Number(d), 1), 0);
      assert.ok(after < before, `parameters ${before} -> ${after}`);
    });
  }

  it('re-detects the pruned geometry: kept heads per layer and FFN widths', async () => {
    const { m, st } = await load('bert-sst2/model-opset17.onnx');
    const keep: KeepSet = { heads: [[0, 3], [1, 2, 7], [5], [0, 1, 2, 3, 4, 5, 6, 7]], neurons: [[1, 2, 3], [0], [5, 9, 100, 1023], Array.from({ length: 10 }, (_, i) => i * 7)] };
    const st2 = await detectStructure({ ...m, proto: applyKeep(m, st, keep) });
    assert.deepEqual(st2.layers.map((l) => l.attention!.heads), [2, 3, 1, 8]);
    assert.deepEqual(st2.layers.map((l) => l.ffn?.width), [3, 1, 4, 10]);
    assert.deepEqual(st2.layers.map((l) => l.attention!.headSize), [32, 32, 32, 32]);
  });

  it('a layer that lost every head is re-detected as a feed-forward-only layer, and the pruned model prunes again, verified', async () => {
    const { m, st, batch } = await load('bert-sst2/model-opset17.onnx');
    const keep: KeepSet = { heads: [[0, 3], [1, 2, 7], [], [0, 1, 2, 3, 4, 5, 6, 7]], neurons: [[1, 2, 3], [0, 4], [5, 9, 100, 1023], Array.from({ length: 10 }, (_, i) => i * 7)] };
    const once = { ...m, path: `${m.path} (pruned once)`, proto: applyKeep(m, st, keep) };
    const st2 = await detectStructure(once);
    assert.deepEqual(st2.layers.map((l) => l.attention?.heads ?? null), [2, 3, null, 8]);
    assert.deepEqual(st2.layers.map((l) => l.ffn?.width), [3, 2, 4, 10]);
    const l2 = st2.layers[2]!;
    assert.equal(l2.input, st2.layers[1]!.output, 'the FFN-only layer reads the stream the previous layer leaves');
    assert.equal(l2.output, st2.layers[3]!.input);
    const s = batch.meanLength;
    assert.equal(modelMacs(st2, s).total, keptMacs(st, keep, s));
    const keep2: KeepSet = { heads: [[1], [0, 2], [], [0, 2, 4, 6]], neurons: [[0, 2], [1], [1, 3], [0, 1, 2, 3, 4]] };
    const twice = { ...m, path: `${m.path} (pruned twice)`, proto: applyKeep(once, st2, keep2) };
    const batch2 = await loadCalibration(m.path, st2, { samples: 4 });
    const macs = modelMacs(st2, s).total - 2 * 1 * headMacs(s, st2.hidden, 32, 32) - 4 * headMacs(s, st2.hidden, 32, 32) - (1 + 1 + 2 + 5) * neuronMacs(s, st2.hidden);
    const v = await verifyPruned(once, st2, twice, keep2, batch2, { macs, seqLen: s });
    assert.ok(v.maxAbsDiff <= v.tolerance, `diff ${v.maxAbsDiff} > ${v.tolerance}`);
    assert.deepEqual((await detectStructure(twice)).layers.map((l) => [l.attention?.heads ?? 0, l.ffn?.width]), [[1, 2], [2, 1], [0, 2], [4, 5]]);
  });

  it('cuts exactly the kept rows and columns (Q columns, W_O rows, W1 columns, W2 rows)', async () => {
    const { m, st } = await load('bert-sst2/model-opset17.onnx');
    const keep: KeepSet = { heads: st.layers.map((_, i) => (i === 0 ? [2, 5] : [0, 1, 2, 3, 4, 5, 6, 7])), neurons: st.layers.map((_, i) => (i === 0 ? [7, 9] : Array.from({ length: 1024 }, (_, j) => j))) };
    const proto = applyKeep(m, st, keep);
    const l0 = st.layers[0]!;
    assert.equal(l0.attention!.layout, 'separate');
    const q = l0.attention!.projections[0]!;
    const find = (name: string) => proto.graph!.node.find((n) => (n.name || n.output[0]) === name)!;
    const newW = proto.graph!.initializer.find((t) => t.name === find(q.node).input[1])!;
    assert.deepEqual(newW.dims.map(Number), [256, 64]);
    const oldQ = tensorFloat32(m.proto.graph!.initializer.find((t) => t.name === q.weight)!);
    const cut = tensorFloat32(newW);
    for (const [i, j] of [[0, 0], [17, 31], [255, 32], [100, 63]] as const) {
      const srcCol = j < 32 ? 2 * 32 + j : 5 * 32 + (j - 32);
      assert.equal(cut[i * 64 + j], oldQ[i * 256 + srcCol]);
    }
    const down = l0.ffn!.down;
    const newDown = proto.graph!.initializer.find((t) => t.name === find(down.node).input[1])!;
    assert.deepEqual(newDown.dims.map(Number), [2, 256]);
    const oldDown = tensorFloat32(m.proto.graph!.initializer.find((t) => t.name === down.weight)!);
    assert.equal(tensorFloat32(newDown)[256 + 10], oldDown[9 * 256 + 10]);
  });

  it('fails verification loudly when the pruned weights are wrong', async () => {
    const { m, st, batch } = await load('torch-bert-like-random/model-opset17.onnx');
    const keep = randomKeep(st, 3);
    const proto = applyKeep(m, st, keep);
    const w = proto.graph!.initializer.find((t) => t.name.includes('.optin.') && t.dims.length === 2)!;
    const data = tensorFloat32(w).slice();
    data[0] = data[0]! + 1;
    w.rawData = new Uint8Array(data.buffer);
    const s = batch.meanLength;
    await expectOptinError(() => verifyPruned(m, st, { ...m, proto }, keep, batch, { macs: keptMacs(st, keep, s), seqLen: s }), 'runtime', /verification failed: outputs differ from the masked original by/);
  });

  it('fails verification when the MACs disagree with the plan', async () => {
    const { m, st, batch } = await load('torch-bert-like-random/model-opset17.onnx');
    const keep = randomKeep(st, 3);
    const proto = applyKeep(m, st, keep);
    await expectOptinError(() => verifyPruned(m, st, { ...m, proto }, keep, batch, { macs: 123, seqLen: batch.meanLength }), 'runtime', /has \d+ MACs, the plan says 123/);
  });

  it('refuses keep sets that do not fit the model', async () => {
    const { m, st } = await load('torch-bert-like-random/model-opset17.onnx');
    await expectOptinError(() => applyKeep(m, st, { heads: [[0]], neurons: [[0]] }), 'data', /the plan has 1 layers, the model 2/);
    await expectOptinError(() => applyKeep(m, st, { heads: [[0, 9], [0]], neurons: [[0], [0]] }), 'data', /layer 0 head indices must be sorted, unique and < 4/);
    await expectOptinError(() => applyKeep(m, st, { heads: [[], []], neurons: [[0], [0]] }), 'usage', /keeps no attention head at all/);
  });

  it('a model whose layer lost every head still evaluates and the benchmark reports consistent numbers', async () => {
    const { m, st } = await load('bert-sst2/model-opset17.onnx');
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'optin-drop-'));
    try {
      const out = path.join(dir, 'dropped.onnx');
      const keep: KeepSet = { heads: [[0, 1], [], [3], []], neurons: [[1, 2], [], [4], [5, 6]] };
      saveModel({ ...m, proto: applyKeep(m, st, keep) }, out);
      const data = path.join(FIXTURES, 'data', 'sst2', 'test.tsv');
      const r = await evaluate(out, { data: { data, samples: 40, tokenizer: path.dirname(m.path) }, reference: m.path });
      assert.equal(r.examples, 40);
      assert.ok(r.accuracy! >= 0 && r.accuracy! <= 1 && r.reference!.accuracy! > 0.5);
      const b = await benchModels([m.path, out], { runs: 2, warmup: 0, batch: 2, seqLen: 8 });
      assert.equal(b.models.length, 2);
      assert.equal(b.runs, 2);
      for (const x of b.models) assert.ok(Number.isFinite(x.medianMs) && x.medianMs > 0 && x.p10Ms <= x.medianMs && x.medianMs <= x.p90Ms, `bench numbers are consistent: ${JSON.stringify(x)}`);
      assert.equal(b.speedup[0], 1);
      assert.ok(Math.abs(b.speedup[1]! - b.models[0]!.medianMs / b.models[1]!.medianMs) < 1e-9, 'speedup is the ratio of medians');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps external data when the input had it', async () => {
    const { m } = await load('bert-sst2/model-opset17.onnx');
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'optin-ext-'));
    try {
      const ext = path.join(dir, 'model.onnx');
      saveModel(m, ext, { externalData: true });
      const em = loadModel(ext);
      assert.ok(em.usesExternalData);
      const st = await detectStructure(em);
      const keep = randomKeep(st, 11);
      const out = path.join(dir, 'pruned.onnx');
      saveModel({ ...em, proto: applyKeep(em, st, keep) }, out);
      assert.ok(fs.existsSync(`${out}.data`), 'external data file written');
      const back = loadModel(out);
      assert.ok(back.usesExternalData);
      const batch = await loadCalibration(em.path, st, { samples: 2 });
      const s = batch.meanLength;
      await verifyPruned(em, st, back, keep, batch, { macs: keptMacs(st, keep, s), seqLen: s });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
