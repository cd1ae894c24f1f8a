import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { inspectModel } from '../../src/engine/inspect';
import { describeInterface, detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { scoreModel } from '../../src/engine/optin/scorer';
import { materialize } from '../fixtures/materialize';
import * as ort from 'onnxruntime-node';
import { fixture, optin, pruneVerified, runModel, tempDir } from './helpers';
import { applyKeep, type KeepSet } from '../../src/engine/prune/apply';
import { verifyPruned } from '../../src/engine/verify/verify';
import { layerMacs } from '../../src/engine/flops';
import { mulberry32 } from '../../src/engine/optin/random';
import { tensorFloat32 } from '../../src/engine/onnx/tensor';

/** Per-head and per-neuron MACs of the paper's model (docs/method.md §3) at s tokens, hidden D, head size d. */
const perHead = (s: number, D: number, d: number): number => 3 * s * D * d + 2 * s * s * d + s * d * D;
const perNeuron = (s: number, D: number): number => 2 * s * D;

const CASES = [
  {
    name: 'DETR-style: torchvision resnet18 layers + torch nn.TransformerEncoder on the flattened feature map',
    dir: 'detr-style', layers: 2, heads: 4, hidden: 64, ffn: 128, tokens: 64,
    groups: ['backbone.4.0.conv1', 'backbone.4.1.conv1', 'backbone.5.0.conv1', 'backbone.5.1.conv1'], ranking: [] as string[],
  },
  {
    name: 'torchaudio wav2vec2 (its components at a small size: conv feature extractor, positional conv, transformer)',
    dir: 'torchaudio-wav2vec2-small', layers: 2, heads: 4, hidden: 64, ffn: 128, tokens: 39,
    groups: ['m.feature_extractor.conv_layers.1.conv', 'm.feature_extractor.conv_layers.2.conv'], ranking: [] as string[],
  },
  {
    name: 'torchaudio wav2vec2_base (12 layers, hidden 768, 95 M parameters; ranked by weight magnitude here)',
    dir: 'torchaudio-wav2vec2-base', layers: 12, heads: 12, hidden: 768, ffn: 3072, tokens: 12,
    groups: [1, 2, 3, 4, 5].map((i) => `m.feature_extractor.conv_layers.${i}.conv`), ranking: ['--ranking', 'magnitude'],
  },
];

describe('a CNN feeding a transformer: exported architectures this project did not write', function () {
  this.timeout(600_000);

  for (const c of CASES) {
    it(`${c.name}: tokens measured from the feature map, MACs exact, prune 0.6 verified, original byte-identical`, async () => {
      const file = materialize(fixture(`${c.dir}/model.skeleton.onnx`));
      const r = await inspectModel(file);
      assert.equal(r.structure.layers.length, c.layers);
      assert.equal(r.macs.seqLen, c.tokens, 'tokens per example, measured');
      for (const l of r.macs.layers) {
        assert.equal(l.perHead, perHead(c.tokens, c.hidden, c.hidden / c.heads));
        assert.equal(l.perNeuron, perNeuron(c.tokens, c.hidden));
        assert.equal(l.total, c.heads * perHead(c.tokens, c.hidden, c.hidden / c.heads) + c.ffn * perNeuron(c.tokens, c.hidden));
      }
      assert.deepEqual(r.hybrid!.blocks.map((b) => b.name), c.groups, 'the CNN front end\'s channel groups are searched with the heads and neurons');

      // Exact OPTIN terms of the last layer's heads and two of its neurons (the whole model is scored exactly by the prune below where it is small).
      const m = loadModel(file);
      const st = await detectStructure(m);
      const batch = await loadCalibration(m.path, st, { samples: 2 });
      const last = c.layers - 1;
      const s = await scoreModel(m, st, batch, { layers: [last], neuronSubset: st.layers.map(() => [0, c.ffn - 1]) });
      for (const t of [s.raw.heads[last]!, { md: [0, c.ffn - 1].map((j) => s.raw.neurons[last]!.md[j]!), kl: [0, c.ffn - 1].map((j) => s.raw.neurons[last]!.kl[j]!) }]) {
        assert.ok(t.md.every((x) => Number.isFinite(x) && x >= 0) && t.kl.every((x) => Number.isFinite(x) && x >= 0), `finite terms: ${JSON.stringify(t)}`);
      }
      assert.ok(s.raw.heads[last]!.md.some((x) => x > 0), 'masking a head changes the last layer\'s features');

      pruneVerified(file, ...c.ranking);
    });
  }
});

describe('a vision transformer whose image height and width are dynamic in the graph', function () {
  this.timeout(300_000);
  const ROOT_DIGITS = path.join(path.dirname(fixture('vit-digits/model-opset17.onnx')), '..', '..', 'data', 'digits', 'train');

  /** The digits ViT with pixel_values [batch, 1, height, width] (it still only runs at 8x8, its trained size). */
  function dynamicViT(dir: string, withPreprocessor: boolean): string {
    const m = loadModel(fixture('vit-digits/model-opset17.onnx'));
    const px = m.proto.graph!.input.find((i) => i.name === 'pixel_values')!;
    const t = px.type!.value;
    assert.equal(t.case, 'tensorType');
    const dims = t.value.shape!.dim;
    dims[2]!.value = { case: 'dimParam', value: 'height' };
    dims[3]!.value = { case: 'dimParam', value: 'width' };
    const out = path.join(dir, 'vit.onnx');
    saveModel(m, out);
    if (withPreprocessor) fs.copyFileSync(path.join(path.dirname(fixture('vit-digits/model-opset17.onnx')), 'preprocessor_config.json'), path.join(dir, 'preprocessor_config.json'));
    return out;
  }

  it('tokens are measured at the preprocessor config\'s size; prune 0.6 on its images verifies; without a size: one line saying how to give one', async () => {
    const file = dynamicViT(tempDir(), true);
    const r = await inspectModel(file);
    assert.equal(r.macs.seqLen, 17, '16 patches of the 8x8 digits + the class token');
    assert.deepEqual(r.structure.inputs[0]!.shape, ['batch', 1, 'height', 'width'], 'inspect shows the model\'s own axes');
    const prunedFile = path.join(tempDir(), 'p.onnx');
    fs.copyFileSync(path.join(path.dirname(file), 'preprocessor_config.json'), path.join(path.dirname(prunedFile), 'preprocessor_config.json'));
    const p = optin('prune', file, '--budget', '0.6', '--data', ROOT_DIGITS, '--samples', '8', '--no-bench', '--out', prunedFile, '--json');
    assert.equal(p.code, 0, p.stderr);
    const j = JSON.parse(p.stdout);
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    // Analysed again (as verification's MAC recount does): every kept head found, one head left included (packed Q/K/V of one head: [.., 3, 1, d]).
    const again = await inspectModel(prunedFile);
    assert.deepEqual(again.structure.layers.map((l) => l.attention?.heads ?? 0), j.plan.keep.heads.map((h: number[]) => h.length));

    const bare = dynamicViT(tempDir(), false);
    const q = optin('prune', bare, '--budget', '0.6', '--samples', '2', '--no-bench', '--out', path.join(tempDir(), 'q.onnx'));
    assert.equal(q.code, 2);
    assert.match(q.stderr, /optin: .*vit\.onnx: input "pixel_values" has dynamic axes \(batch x 1 x height x width\) and no size to analyse it at; .* --input-size HxW\n$/);
    const s = optin('prune', bare, '--input-size', '8x8', '--budget', '0.6', '--samples', '2', '--no-bench', '--out', path.join(tempDir(), 's.onnx'));
    assert.equal(s.code, 0, s.stderr);
  });
});

describe('sequence-first stacks (torchaudio Conformer, nn.TransformerEncoder without batch_first): analysed with the stream batch-first', function () {
  this.timeout(600_000);

  /** Largest output difference between the file and the graph detect made batch-first, and the output scale. */
  async function rewriteDiff(file: string, dims: number[]): Promise<{ diff: number; scale: number }> {
    const m = loadModel(file);
    assert.ok(describeInterface(m).sequenceFirst, 'the stack is recognised as sequence-first');
    const rewritten = path.join(tempDir(), 'batch-first.onnx');
    saveModel(m, rewritten);
    const rnd = mulberry32(5);
    const x = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rnd() * 2 - 1);
    const name = m.proto.graph!.input[0]!.name;
    const [a, b] = [await runModel(file, { [name]: new ort.Tensor('float32', x, dims) }), await runModel(rewritten, { [name]: new ort.Tensor('float32', x, dims) })];
    const o = Object.keys(a)[0]!;
    return { diff: Math.max(...a[o]!.map((v, i) => Math.abs(v - b[o]![i]!))), scale: Math.max(...a[o]!.map(Math.abs)) };
  }

  it('torchaudio Conformer: each half-step FFN is a layer, attention + FFN another; MACs exact; same function batch-first; heads cut through the key-padding mask; prune 0.6 verified, batch axis kept', async () => {
    const file = materialize(fixture('torchaudio-conformer/model.skeleton.onnx'));
    const r = await inspectModel(file);
    assert.deepEqual(r.structure.layers.map((l) => [l.attention?.heads ?? 0, l.ffn?.width]), [[0, 128], [4, 128], [0, 128], [4, 128]]);
    assert.equal(r.macs.seqLen, 50, 'frames per example, measured');
    r.macs.layers.forEach((l, i) => assert.equal(l.total, (i % 2 ? 4 * perHead(50, 64, 16) : 0) + 128 * perNeuron(50, 64)));
    assert.match(r.structure.notes!.join(' '), /runs sequence-first .* batch-first/);

    // The rewrite only reorders axes: the same products and sums, the verification tolerance of docs/testing.md.
    const same = await rewriteDiff(file, [3, 50, 64]);
    assert.ok(same.diff <= 1e-4 * same.scale, `${same.diff} at scale ${same.scale}`);

    const m = loadModel(file);
    const st = await detectStructure(m);
    const batch = await loadCalibration(m.path, st, { samples: 3 });
    const all = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
    const keep: KeepSet = { heads: [[], [0, 2], [], [1, 2, 3]], neurons: [all(100), all(128), all(64).map((i) => 2 * i), all(128)] };
    const macs = st.layers.reduce((a, l, i) => a + layerMacs(l, 50, st.hidden, keep.heads[i]!.length, keep.neurons[i]!.length).total, 0);
    const v = await verifyPruned(m, st, { ...m, path: `${file} (cut)`, proto: applyKeep(m, st, keep) }, keep, batch, { macs, seqLen: 50 });
    assert.ok(v.maxAbsDiff <= v.tolerance, `${v.maxAbsDiff} > ${v.tolerance}`);

    const s = await scoreModel(m, st, batch, { layers: [1], neuronSubset: st.layers.map(() => [0, 127]) });
    const h = s.raw.heads[1]!;
    assert.ok([...h.md, ...h.kl].every((x) => Number.isFinite(x) && x >= 0) && h.md.some((x) => x > 0), `masking a head of layer 1 changes the later layers' features: ${JSON.stringify(h)}`);

    const j = pruneVerified(file);
    const out = loadModel(j.out).proto.graph!.input[0]!.type!.value;
    assert.equal(out.case === 'tensorType' && out.value.shape!.dim[0]!.value.value, 'batch', 'the batch axis stays dynamic');
  });

  it('torchaudio Conformer\'s convolution module: the GLU\'s value and gate halves are one channel group (rows j and 64 + j of the first pointwise conv); MACs exact; cut and verified', async () => {
    const file = materialize(fixture('torchaudio-conformer/model.skeleton.onnx'));
    const r = await inspectModel(file);
    const T = 50, C = 64, K = 7;
    // Per channel and frame: 2 x C MACs of the first pointwise conv (one row in each half), K of the depthwise conv, C of the second pointwise conv.
    assert.deepEqual(r.hybrid!.blocks.map((b) => [b.name, b.channels, b.macs]), [0, 1].map((i) => [`m.conformer_layers.${i}.conv_module.sequential.0`, C, C * T * (2 * C + K + C)]));
    const j = pruneVerified(file);
    const groups = (j.plan.keep.neurons as number[][]).slice(4);
    assert.ok(groups.some((k) => k.length < C), `some convolution channels are cut: ${groups.map((k) => k.length)}`);
    const weights = (f: string, layer: number): { w: Float32Array; dims: number[] } => {
      const m = loadModel(f);
      const g = m.proto.graph!;
      const conv = g.node.find((n) => n.name.includes(`conformer_layers.${layer}/conv_module/sequential/sequential.0/Conv`))!;
      const t = g.initializer.find((x) => x.name === conv.input[1])!;
      return { w: tensorFloat32(t, m.ext), dims: t.dims.map(Number) };
    };
    groups.forEach((kept, layer) => {
      const a = weights(file, layer), b = weights(j.out, layer);
      assert.deepEqual(b.dims, [2 * kept.length, C, 1]);
      const rows = [...kept, ...kept.map((k) => C + k)];
      rows.forEach((row, i) => assert.deepEqual(b.w.subarray(i * C, (i + 1) * C), a.w.subarray(row * C, (row + 1) * C), `layer ${layer}: row ${i} of the cut conv is row ${row} of the original`));
    });
  });

  it('DETR-style with nn.TransformerEncoder left sequence-first: same function batch-first; prune 0.6 verified with the backbone channels; height and width stay dynamic', async () => {
    const file = materialize(fixture('detr-seqfirst/model.skeleton.onnx'));
    const r = await inspectModel(file);
    assert.deepEqual(r.structure.layers.map((l) => [l.attention?.heads, l.ffn?.width]), [[4, 128], [4, 128]]);
    assert.equal(r.macs.seqLen, 64);
    const text = optin('inspect', file);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /channel groups outside the transformer layers[\s\S]*\nnote {4}the transformer stack runs sequence-first/, 'the note follows the hybrid table too');
    const same = await rewriteDiff(file, [2, 3, 64, 64]);
    assert.ok(same.diff <= 1e-4 * same.scale, `${same.diff} at scale ${same.scale}`);
    const j = pruneVerified(file);
    const px = loadModel(j.out).proto.graph!.input[0]!.type!.value;
    assert.deepEqual(px.case === 'tensorType' && px.value.shape!.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.value)), ['batch', 3, 'height', 'width']);
  });
});
