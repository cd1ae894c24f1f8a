import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { AttributeType, DataType, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, TensorProtoSchema, ValueInfoProtoSchema } from '../../src/engine/onnx/schema';
import { mulberry32 } from '../../src/engine/optin/random';
import { inspectModel } from '../../src/engine/inspect';
import { analyzeChannels } from '../../src/engine/channels/structure';
import { scoreChannels } from '../../src/engine/channels/scorer';
import { runChannelTeacher } from '../../src/engine/channels/teacher';
import { loadCalibration } from '../../src/engine/data/calibration';
import { GraphIndex } from '../../src/engine/onnx/graph';
import { modelInputs } from '../../src/engine/structure/inputs';
import { macTerms, termsMacs } from '../../src/engine/channels/macs';
import { searchChannels } from '../../src/engine/plan/channelSearch';
import { segmentationMetrics } from '../../src/engine/eval/segmentation';
import { materialize } from '../fixtures/materialize';
import { withWeights } from './weightEdits';
import { channelMaskFeeds, instrumentChannels } from '../../src/engine/channels/instrument';
import { sessionFor, toOrt } from '../../src/engine/runtime/session';
import { tensorFloat32 } from '../../src/engine/onnx/tensor';
import { comparisonView, toSummary } from '../../src/extension/views';
import type { Comparison } from '../../src/engine/worker/pipeline';
import { ROOT, expectOptinError, fixture, sha256, tempDir, optin, pruneVerified } from './helpers';


const rep = (n: number, w: number): number[] => new Array<number>(n).fill(w);

/** torchvision's own CNNs (random weights, refilled from skeletons): every prunable group and its width, in graph order. */
/**
 * A copy of a Swin export whose window attention is no longer recognisable as multi-head attention
 * (Max(v, v) = v on every value path: the graph computes the same, but V no longer traces back to its
 * projection), as an attention of an unknown form would be.
 */
function unrecognisableAttention(file: string): string {
  const m = loadModel(file);
  const g = m.proto.graph!;
  for (const pv of g.node.filter((n) => n.opType === 'MatMul' && n.name.endsWith('/attn/MatMul_2'))) {
    const v = pv.input[1]!;
    g.node.splice(g.node.indexOf(pv), 0, create(NodeProtoSchema, { opType: 'Max', name: `${v}_max`, input: [v, v], output: [`${v}_max`] }));
    pv.input[1] = `${v}_max`;
  }
  const out = path.join(tempDir(), 'unrecognisable-attention', 'model.onnx');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  saveModel(m, out);
  fs.copyFileSync(path.join(path.dirname(file), 'preprocessor_config.json'), path.join(path.dirname(out), 'preprocessor_config.json'));
  return out;
}

const CNNS: Array<{ name: string; dir: string; widths: number[]; first: string; exact?: boolean; attention?: number; prepare?: (file: string) => string }> = [
  { name: 'resnet18 (BasicBlock: the first conv of each block)', dir: 'tv-resnet18', widths: [64, 64, 128, 128, 256, 256, 512, 512], first: 'layer1.0.conv1', exact: true },
  { name: 'resnet50 (Bottleneck: conv1 and conv2 of each block; the stem feeds conv1 and downsample together)', dir: 'tv-resnet50', widths: [64, ...rep(6, 64), ...rep(8, 128), ...rep(12, 256), ...rep(6, 512)], first: 'conv1' },
  { name: 'mobilenet_v3_small (expansion through depthwise and squeeze-excitation, SE squeeze widths, classifier hidden)', dir: 'tv-mobilenet-v3-small', widths: [16, 8, 16, 72, 88, 96, 24, 240, 64, 240, 64, 120, 32, 144, 40, 288, 72, 576, 144, 576, 144, 576, 1024], first: 'features.0.0' },
  { name: 'ConvNeXt (small config: the MLP hidden width of each block)', dir: 'tv-convnext-small-config', widths: [128, 128, 256, 256, 512, 512], first: 'features.1.0.block.3' },
  { name: 'LR-ASPP MobileNetV3-Large segmentation (per-pixel output; Shape -> Resize of its own channels)', dir: 'tv-lraspp-mobilenet-v3-large', widths: [64, 72, 72, 24, 120, 32, 120, 32, 240, 200, 184, 184, 480, 120, 672, 168, 672, 168, 960, 240, 960, 240, 960, 128], first: 'model.backbone.2.block.0.0' },
  { name: 'DeepLabV3 MobileNetV3-Large segmentation (the five ASPP branches, concatenated: each cut at its offset of the projection\'s input)', dir: 'tv-deeplabv3-mobilenet-v3-large', widths: [64, 72, 72, 24, 120, 32, 120, 32, 240, 200, 184, 184, 480, 120, 672, 168, 672, 168, 960, 240, 960, 240, 960, 256, 256, 256, 256, 256, 256, 256], first: 'model.backbone.2.block.0.0' },
  { name: 'Swin with an attention of a form not recognised (said so: the MLP widths only)', dir: 'tv-swin-small-config', widths: [128, 128, 256, 256], first: 'features.1.0.mlp.0', exact: true, attention: 4, prepare: unrecognisableAttention },
  { name: 'Swin features + FPN-style head with an attention not recognised (per-pixel logits: Swin MLP widths and the head conv in one search)', dir: 'tv-swin-fpn-segmentation', widths: [128, 128, 256, 256, 48], first: 'stage1.0.mlp.0', exact: true, attention: 4, prepare: unrecognisableAttention },
];

describe('channel groups of CNNs (torchvision exports)', function () {
  this.timeout(600_000);

  for (const c of CNNS) {
    it(`${c.name}: inspect is exact, exact scoring runs, prune 0.6 verifies, original untouched`, async () => {
      const dense = materialize(fixture(`${c.dir}/model.skeleton.onnx`));
      const file = c.prepare ? c.prepare(dense) : dense;
      const r = await inspectModel(file);
      assert.ok(r.channels, 'analysed as channel groups');
      assert.deepEqual(r.channels.blocks.map((b) => b.channels), c.widths);
      assert.equal(r.channels.blocks[0]!.name, c.first);
      assert.ok(r.channels.refused.some((x) => /residual stream/.test(x.reason)), 'residual streams are left alone');
      assert.ok(Math.abs(r.channels.blocks.reduce((a, b) => a + b.macs, 0) - r.channels.macs.prunable) < 1e-6 * r.channels.macs.prunable);
      if (c.attention) assert.match(r.channels.note ?? '', new RegExp(`^${c.attention} attention Softmax node\\(s\\) \\(e\\.g\\. Softmax node ".*"\\) were not recognised as multi-head attention: their heads are not pruned`));
      else assert.equal(r.channels.note, undefined);
      assert.equal(toSummary(r).note, r.channels.note, 'the panel shows the same note');

      const m = loadModel(file);
      const cs = await analyzeChannels(m);
      const batch = await loadCalibration(m.path, cs, { samples: 2 });
      const subset = cs.groups.map((g) => [0, g.width - 1]);
      const s = await scoreChannels(m, cs, batch, { neuronSubset: subset });
      s.raw.neurons.forEach((r, l) => {
        for (const j of subset[l]!) assert.ok(Number.isFinite(r.md[j]!) && r.md[j]! >= 0 && r.kl[j]! >= 0, `group ${l} channel ${j}: md ${r.md[j]} kl ${r.kl[j]}`);
      });
      assert.ok(s.raw.neurons.some((r) => r.md.some((x) => x > 0)), 'masking a channel changes later features');

      const before = sha256(file);
      const out = path.join(tempDir(), 'p.onnx');
      const p = optin('prune', file, '--budget', '0.6', '--samples', '2', '--no-bench', '--out', out, '--json', ...(c.exact ? [] : ['--ranking', 'l1']));
      assert.equal(p.code, 0, p.stderr);
      const j = JSON.parse(p.stdout);
      assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
      assert.ok(j.apply.macs.after <= 0.6 * j.apply.macs.before * (1 + 1e-9) && j.apply.macs.after > 0.5 * j.apply.macs.before, `MACs ${j.apply.macs.after} of ${j.apply.macs.before}`);
      assert.equal(j.apply.macs.after, j.plan.macs.kept);
      assert.ok(j.apply.fileBytes.after < j.apply.fileBytes.before);
      assert.ok(j.plan.keep.neurons.every((k: number[]) => k.length >= 1), 'every group keeps a channel');
      assert.equal(sha256(file), before, 'the original is byte-identical');
    });
  }

  it('the MNIST-trained ResNet at keep 60% of MACs: OPTIN + the repair stays within 1 point of dense (docs/cnn.md: 98.86%, dense 98.96%)', () => {
    const out = path.join(tempDir(), 'p.onnx');
    const r = optin('prune', fixture('resnet-mnist/model-opset17.onnx'), '--budget', '0.6', '--tune', '--data', path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train'), '--samples', '64',
      '--eval', path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'test'), '--no-bench', '--no-compare', '--out', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.evaluation.examples, 963);
    assert.equal(j.comparisons, undefined, '--no-compare');
    assert.ok(Math.abs(j.evaluation.reference.accuracy - 0.9896) < 0.0006, `dense ${j.evaluation.reference.accuracy}`);
    assert.ok(j.evaluation.accuracy >= j.evaluation.reference.accuracy - 0.01, `pruned ${j.evaluation.accuracy}`);
    assert.ok(j.apply.reconstruction.every((s: { after: number; before: number; rejected?: string }) => s.rejected || s.after < s.before));
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
  });

  it('the default flow on the MNIST-trained ResNet (0.6, no flags): repaired, uniform shares, within 1 point; the report shows the L1 baseline and the unrepaired plan on the same held-out digits', () => {
    const out = path.join(tempDir(), 'p.onnx');
    const r = optin('prune', fixture('resnet-mnist/model-opset17.onnx'), '--budget', '0.6', '--data', path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train'), '--samples', '16', '--no-bench', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const acc = /^accuracy {4}(\d+\.\d\d)% -> (\d+\.\d\d)% on 963 examples \(held-out, test\)/m.exec(r.stdout);
    assert.ok(acc, r.stdout);
    assert.ok(Number(acc[2]) >= Number(acc[1]) - 1, `pruned ${acc[2]}% vs dense ${acc[1]}%`);
    const rep = /^repaired {4}(\d+)\/(\d+) consumers of cut channels: (\d+) refitted by least squares to the dense outputs/m.exec(r.stdout);
    assert.ok(rep && rep[1] === rep[2] && rep[1] === rep[3] && Number(rep[1]) > 0, 'every consumer of this small CNN fits least squares');
    const base = /^baseline {4}accuracy (\d+\.\d\d)% \(L1-norm filters, uniform shares, same repair, same budget\)$/m.exec(r.stdout);
    const raw = /^no repair {3}accuracy (\d+\.\d\d)% \(this plan cut without the repair\)$/m.exec(r.stdout);
    assert.ok(base && raw, r.stdout);
    assert.ok(Number(raw[1]) < Number(acc[2]) - 5, `the repair matters here: ${raw[1]}% unrepaired vs ${acc[2]}%`);
    assert.doesNotMatch(r.stdout, /^warning/m);
  });

  it('--no-tune on the MNIST-trained ResNet (0.6, no --eval): evaluated on the test split beside the data; the report and stderr say in words how much worse it is and what to try', () => {
    const out = path.join(tempDir(), 'p.onnx');
    const r = optin('prune', fixture('resnet-mnist/model-opset17.onnx'), '--budget', '0.6', '--no-tune', '--data', path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train'), '--samples', '16', '--no-bench', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^accuracy {4}98\.96% -> \d+\.\d\d% on 963 examples \(held-out, test\); predictions agree on /m);
    const line = /^warning {5}(the pruned model lost (\d+\.\d) points of accuracy \(99\.0% -> \d+\.\d%\) on 963 examples; channel groups were cut without a repair: turn it on \(--tune\), or keep more MACs)$/m.exec(r.stdout);
    assert.ok(line, r.stdout);
    assert.ok(Number(line[2]) > 5);
    assert.ok(r.stderr.includes(`optin: warning: ${line[1]}`), r.stderr);
    assert.match(r.stdout, /^baseline {4}accuracy /m);
    assert.doesNotMatch(r.stdout, /^no repair/m, 'nothing to compare: this plan is the unrepaired one');
    assert.equal(optin('prune', fixture('resnet-mnist/model-opset17.onnx'), '--budget', '0.6', '--no-tune', '--tune').code, 2);
  });

  for (const c of [
    { name: 'the MNIST-trained ResNet', file: () => fixture('resnet-mnist/model-opset17.onnx'), data: { data: path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train'), samples: 8 } },
    { name: 'the MNIST-trained MobileNetV3 (squeeze-excitation reads the expansion twice)', file: () => fixture('mobilenet-mnist/model-opset17.onnx'), data: { data: path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train'), samples: 8 } },
    { name: 'LR-ASPP MobileNetV3-Large (per-pixel logits; the Resize reads the input\'s shape)', file: () => materialize(fixture('tv-lraspp-mobilenet-v3-large/model.skeleton.onnx')), data: { samples: 2 }, layers: [0, 9, 18, 23] },
  ]) {
    it(`${c.name}: channel scores from the dense values before each group's mask equal the whole masked graph's within their float32 bound`, async () => {
      const m = loadModel(c.file());
      const cs = await analyzeChannels(m);
      const batch = await loadCalibration(m.path, cs, c.data);
      const layers = c.layers ?? cs.groups.map((_, l) => l);
      const whole = await scoreChannels(m, cs, batch, { suffix: false, layers });
      const cut = await scoreChannels(m, cs, batch, { layers });
      // Bounds (docs/testing.md, "Channel suffixes"): K sampled rows, D the widest compared feature's channels, F the logits' fan-in.
      const K = cut.tokenRows;
      const g = (n: number): number => (n * 2 ** -24) / (1 - n * 2 ** -24);
      const D = Math.max(...cs.features.map((f) => f.dims[f.axis]!));
      const ix = new GraphIndex(m.proto.graph!, m.ext);
      // The logits are a dot product over at most the largest fan-in of any product (+ 4 for a bilinear resize).
      const F = 4 + Math.max(...ix.graph.node.filter((n) => ['Conv', 'Gemm', 'MatMul'].includes(n.opType)).map((n) => {
        const w = ix.constant(n.input[1]!);
        return !w ? 0 : n.opType === 'Conv' ? Number(w.dims.slice(1).reduce((a, b) => a * b, 1n)) : Math.max(...w.dims.map(Number));
      }));
      const z = (await runChannelTeacher(m, cs, batch)).logits.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
      let worst = 0;
      for (const l of layers) {
        whole.raw.neurons[l]!.md.forEach((md, j) => {
          const e = 2 * g(D);
          const bm = 4 * e * K * Math.sqrt(md) + 2 * K * K * e * e + 2 * g(K * K) * md;
          const kl = whole.raw.neurons[l]!.kl[j]!;
          const bk = 2 * g(F) * z * Math.sqrt(2 * kl);
          const dm = Math.abs(cut.raw.neurons[l]!.md[j]! - md), dk = Math.abs(cut.raw.neurons[l]!.kl[j]! - kl);
          assert.ok(dm <= bm, `group ${l} channel ${j}: md ${cut.raw.neurons[l]!.md[j]} vs ${md}, difference ${dm.toExponential(2)} above ${bm.toExponential(2)}`);
          assert.ok(dk <= bk, `group ${l} channel ${j}: kl ${cut.raw.neurons[l]!.kl[j]} vs ${kl}, difference ${dk.toExponential(2)} above ${bk.toExponential(2)}`);
          worst = Math.max(worst, bm ? dm / bm : 0, bk ? dk / bk : 0);
        });
      }
      if (process.env.OPTIN_DEBUG_SCORES) console.log(`${c.name}: worst difference / bound ${worst.toFixed(4)}`);
      assert.ok(layers.some((l) => whole.raw.neurons[l]!.md.some((x) => x > 0)));
    });
  }

  it('the panel shows each comparison with the measure of the written model\'s line (mIoU, accuracy or agreement)', () => {
    const e = (x: object): Comparison['evaluation'] => ({ model: 'm', data: 'd', examples: 3, seconds: 0, reference: { model: 'r', agreement: 0.5 }, ...x });
    assert.deepEqual(comparisonView({ kind: 'l1', evaluation: e({ accuracy: 0.9 }) }), { kind: 'l1', measure: 'accuracy', value: 0.9 });
    assert.deepEqual(comparisonView({ kind: 'unrepaired', evaluation: e({ accuracy: 0.9, segmentation: { miou: 0.3, pixelAccuracy: 0.8, pixels: 9 } }) }), { kind: 'unrepaired', measure: 'mIoU', value: 0.3 });
    assert.deepEqual(comparisonView({ kind: 'l1', evaluation: e({}) }), { kind: 'l1', measure: 'agreement', value: 0.5 });
  });

  it('BatchNorm exported as nodes: the same groups, BatchNormalization parameters cut with the channels, verified', async () => {
    const folded = await inspectModel(fixture('resnet-mnist/model-opset17.onnx'));
    const bn = await inspectModel(fixture('resnet-mnist/model-opset17.batchnorm.onnx'));
    assert.deepEqual(bn.channels!.blocks.map((b) => [b.name, b.channels]), folded.channels!.blocks.map((b) => [b.name, b.channels]));
    const cs = await analyzeChannels(loadModel(fixture('resnet-mnist/model-opset17.batchnorm.onnx')));
    assert.ok(cs.groups.every((g) => g.cuts.filter((c) => /BatchNormalization/.test(c.node)).length === 4), 'scale, bias, mean and variance of the BatchNorm after each conv1');
    const out = path.join(tempDir(), 'p.onnx');
    const r = optin('prune', fixture('resnet-mnist/model-opset17.batchnorm.onnx'), '--budget', '0.6', '--ranking', 'l1', '--data', path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train'), '--samples', '16', '--no-bench', '--out', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).apply.verification.maxAbsDiff <= JSON.parse(r.stdout).apply.verification.tolerance);
  });

  it('segmentation: mIoU and pixel accuracy from images/ + labels/ folders (255 ignored), exact on a hand-made case', async () => {
    const C = 3;
    const pred = { data: Uint16Array.from([0, 1, 1, 2, 2, 2, 0, 0]), examples: 2, height: 2, width: 2, classes: C };
    const labels = { data: Uint8Array.from([0, 1, 2, 2, 255, 2, 0, 1]), height: 2, width: 2 };
    const m = segmentationMetrics(pred, labels);
    assert.equal(m.pixels, 7);
    assert.equal(m.pixelAccuracy, 5 / 7);
    assert.deepEqual(m.iou, [2 / 3, 1 / 3, 2 / 3]);
    assert.equal(m.miou, (2 / 3 + 1 / 3 + 2 / 3) / 3);

    const file = materialize(fixture('tv-lraspp-mobilenet-v3-large/model.skeleton.onnx'));
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'images'));
    fs.mkdirSync(path.join(dir, 'labels'));
    const sharp = require('sharp') as typeof import('sharp')['default'];
    for (let i = 0; i < 3; i++) {
      const img = Buffer.alloc(32 * 32 * 3, 40 * i);
      const lab = Buffer.alloc(32 * 32, i);
      lab.fill(255, 0, 32);
      await sharp(img, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(dir, 'images', `s${i}.png`));
      await sharp(lab, { raw: { width: 32, height: 32, channels: 1 } }).png().toFile(path.join(dir, 'labels', `s${i}.png`));
    }
    const r = optin('eval', file, '--data', dir, '--reference', file, '--json');
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    assert.equal(e.examples, 3);
    assert.equal(e.segmentation.pixels, 3 * 64 * 62, 'labels resized to 64x64, the first rows ignored');
    assert.ok(e.segmentation.miou >= 0 && e.segmentation.miou <= 1 && e.segmentation.pixelAccuracy >= 0 && e.segmentation.pixelAccuracy <= 1);
    assert.equal(e.reference.agreement, 1, 'a model agrees with itself on every pixel');
    assert.deepEqual(e.reference.segmentation, { miou: e.segmentation.miou, pixelAccuracy: e.segmentation.pixelAccuracy });
    fs.rmSync(path.join(dir, 'labels', 's1.png'));
    const bad = optin('eval', file, '--data', dir);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /s1\.png has no label map .*labels\/s1\.png/);
  });

  it('MACs are products of kept widths: the search spends exactly what the graph costs, keeps every group alive and multiples of N', async () => {
    const file = materialize(fixture('tv-resnet50/model.skeleton.onnx'));
    const m = loadModel(file);
    const cs = await analyzeChannels(m);
    const terms = macTerms(new GraphIndex(m.proto.graph!, m.ext), cs.shapes, cs.groups);
    const bilinear = terms.filter((t) => t.factors.filter((f) => typeof f !== 'number').length === 2);
    assert.ok(bilinear.length >= 16, 'conv2 of each bottleneck reads conv1\'s group and produces its own');
    const widths = cs.groups.map((g) => g.width);
    const scores = widths.map((w, l) => Array.from({ length: w }, (_, j) => ((l * 7919 + j * 104729) % 1000) / 1000));
    for (const [budget, n] of [[0.6, 1], [0.4, 8]] as const) {
      const r = searchChannels(widths, terms, scores, budget, n);
      const kept = r.neurons.map((k) => k.filter(Boolean).length);
      assert.equal(r.kept, termsMacs(terms, kept));
      assert.ok(r.kept <= budget * r.baseline * (1 + 1e-9) && r.kept > (budget - 0.05) * r.baseline, `${r.kept / r.baseline}`);
      kept.forEach((k, l) => assert.ok(k >= 1 && (k % n === 0 || k === widths[l]), `group ${l} keeps ${k}`));
    }
    assert.throws(() => searchChannels(widths, terms, scores, 0.0001), /cannot keep even one channel block per group/);
  });

  it('a GLU after a projection with its bias (MatMul + Add + Split into halves): channel j is column j of both halves; cut and verified, the Split sizes follow', async () => {
    const rnd = mulberry32(3);
    const w = (name: string, dims: number[]) => create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rnd() - 0.5).buffer) });
    const ints = (name: string, v: number[]) => create(TensorProtoSchema, { name, dims: [BigInt(v.length)], dataType: DataType.INT64, rawData: new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer) });
    const vi = (name: string, width: number) => create(ValueInfoProtoSchema, { name, type: { value: { case: 'tensorType', value: { elemType: DataType.FLOAT, shape: { dim: [{ value: { case: 'dimParam', value: 'b' } }, { value: { case: 'dimValue', value: BigInt(width) } }] } } } } });
    const graph = create(GraphProtoSchema, {
      name: 'glu',
      node: [
        create(NodeProtoSchema, { opType: 'MatMul', input: ['x', 'w1'], output: ['h'], name: 'fc1' }),
        create(NodeProtoSchema, { opType: 'Add', input: ['h', 'b1'], output: ['hb'], name: 'fc1_bias' }),
        create(NodeProtoSchema, { opType: 'Split', input: ['hb', 'sizes'], output: ['value', 'gate'], name: 'glu_split', attribute: [{ name: 'axis', type: AttributeType.INT, i: 1n }] }),
        create(NodeProtoSchema, { opType: 'Sigmoid', input: ['gate'], output: ['sg'], name: 'glu_sigmoid' }),
        create(NodeProtoSchema, { opType: 'Mul', input: ['value', 'sg'], output: ['glu'], name: 'glu_mul' }),
        create(NodeProtoSchema, { opType: 'MatMul', input: ['glu', 'w2'], output: ['y'], name: 'fc2' }),
      ],
      initializer: [w('w1', [8, 12]), w('b1', [12]), ints('sizes', [6, 6]), w('w2', [6, 4])], input: [vi('x', 8)], output: [vi('y', 4)],
    });
    const file = path.join(tempDir(), 'glu.onnx');
    saveModel({ path: '<memory>', proto: create(ModelProtoSchema, { irVersion: 8n, opsetImport: [{ domain: '', version: 17n }], graph, producerName: 'test' }), ext: { baseDir: '.', modelPath: '<memory>' }, usesExternalData: false, fileBytes: 0 }, file);
    const r = await inspectModel(file);
    // Per example and channel: 8 MACs in each half of fc1, 4 in fc2.
    assert.deepEqual(r.channels!.blocks.map((b) => [b.channels, b.macs]), [[6, 6 * (2 * 8 + 4)]]);
    const j = pruneVerified(file, '--multiple-of', '1', '--no-tune');
    const kept = (j.plan.keep.neurons as number[][])[0]!;
    assert.ok(kept.length < 6);
    const before = loadModel(file), after = loadModel(j.out);
    const init = (m: typeof before, name: string): { v: Float32Array; dims: number[] } => {
      const g = m.proto.graph!;
      const n = g.node.find((x) => x.name === name)!;
      const t = g.initializer.find((x) => n.input.includes(x.name) && x.dataType === DataType.FLOAT)!;
      return { v: tensorFloat32(t, m.ext), dims: t.dims.map(Number) };
    };
    const cols = [...kept, ...kept.map((k) => 6 + k)];
    const [w1, w1p] = [init(before, 'fc1'), init(after, 'fc1')];
    assert.deepEqual(w1p.dims, [8, 2 * kept.length]);
    for (let i = 0; i < 8; i++) cols.forEach((c, k) => assert.equal(w1p.v[i * cols.length + k], w1.v[i * 12 + c]));
    assert.deepEqual(Array.from(init(after, 'fc1_bias').v), cols.map((c) => init(before, 'fc1_bias').v[c]));
    assert.deepEqual(Array.from(init(after, 'fc2').v), kept.flatMap((k) => Array.from(init(before, 'fc2').v.subarray(4 * k, 4 * k + 4))));
    const split = after.proto.graph!.node.find((n) => n.opType === 'Split')!;
    assert.deepEqual(new GraphIndex(after.proto.graph!, after.ext).constInts(split.input[1]!), [kept.length, kept.length]);
  });

  it('onnxruntime\'s fused BiasGelu and FastGelu with a bias: the bias is cut with the channels; verified', async () => {
    const rnd = mulberry32(5);
    const w = (name: string, dims: number[]) => create(TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rnd() - 0.5).buffer) });
    const vi = (name: string, width: number) => create(ValueInfoProtoSchema, { name, type: { value: { case: 'tensorType', value: { elemType: DataType.FLOAT, shape: { dim: [{ value: { case: 'dimParam', value: 'b' } }, { value: { case: 'dimValue', value: BigInt(width) } }] } } } } });
    const graph = create(GraphProtoSchema, {
      name: 'fused-gelu',
      node: [
        create(NodeProtoSchema, { opType: 'MatMul', input: ['x', 'w1'], output: ['h1'], name: 'fc1' }),
        create(NodeProtoSchema, { opType: 'BiasGelu', domain: 'com.microsoft', input: ['h1', 'b1'], output: ['a1'], name: 'bias_gelu' }),
        create(NodeProtoSchema, { opType: 'MatMul', input: ['a1', 'w2'], output: ['h2'], name: 'fc2' }),
        create(NodeProtoSchema, { opType: 'FastGelu', domain: 'com.microsoft', input: ['h2', 'b2'], output: ['a2'], name: 'fast_gelu' }),
        create(NodeProtoSchema, { opType: 'MatMul', input: ['a2', 'w3'], output: ['y'], name: 'fc3' }),
      ],
      initializer: [w('w1', [8, 16]), w('b1', [16]), w('w2', [16, 12]), w('b2', [12]), w('w3', [12, 4])], input: [vi('x', 8)], output: [vi('y', 4)],
    });
    const file = path.join(tempDir(), 'fused-gelu.onnx');
    saveModel({ path: '<memory>', proto: create(ModelProtoSchema, { irVersion: 8n, opsetImport: [{ domain: '', version: 17n }, { domain: 'com.microsoft', version: 1n }], graph, producerName: 'test' }), ext: { baseDir: '.', modelPath: '<memory>' }, usesExternalData: false, fileBytes: 0 }, file);
    const r = await inspectModel(file);
    assert.deepEqual(r.channels!.blocks.map((b) => b.channels), [16, 12]);
    const j = pruneVerified(file, '--multiple-of', '1', '--no-tune');
    const [k1, k2] = j.plan.keep.neurons as number[][];
    assert.ok(k1!.length < 16 && k2!.length < 12);
    const before = loadModel(file), after = loadModel(j.out);
    const bias = (m: typeof before, name: string): Float32Array => tensorFloat32(m.proto.graph!.initializer.find((t) => t.name === m.proto.graph!.node.find((n) => n.name === name)!.input[1])!, m.ext);
    assert.deepEqual(Array.from(bias(after, 'bias_gelu')), k1!.map((k) => bias(before, 'bias_gelu')[k]));
    assert.deepEqual(Array.from(bias(after, 'fast_gelu')), k2!.map((k) => bias(before, 'fast_gelu')[k]));
  });

  it('refuses, in one line naming the node and the op, a graph whose channels meet an op the propagation cannot map; nothing written', async () => {
    const w = (name: string, r: number, c: number) => create(TensorProtoSchema, { name, dims: [BigInt(r), BigInt(c)], dataType: DataType.FLOAT, rawData: new Uint8Array(new Float32Array(r * c).fill(0.1).buffer) });
    const vi = (name: string) => create(ValueInfoProtoSchema, { name, type: { value: { case: 'tensorType', value: { elemType: DataType.FLOAT, shape: { dim: [{ value: { case: 'dimParam', value: 'b' } }, { value: { case: 'dimValue', value: 4n } }] } } } } });
    const axis = create(TensorProtoSchema, { name: 'axis', dims: [], dataType: DataType.INT64, rawData: new Uint8Array(new BigInt64Array([1n]).buffer) });
    const graph = create(GraphProtoSchema, {
      name: 'mixing',
      node: [
        create(NodeProtoSchema, { opType: 'MatMul', input: ['x', 'w1'], output: ['h'], name: 'fc1' }),
        create(NodeProtoSchema, { opType: 'CumSum', input: ['h', 'axis'], output: ['c'], name: 'mix_channels' }),
        create(NodeProtoSchema, { opType: 'MatMul', input: ['c', 'w2'], output: ['y'], name: 'fc2' }),
      ],
      initializer: [w('w1', 4, 8), w('w2', 8, 4), axis], input: [vi('x')], output: [vi('y')],
    });
    const dir = tempDir();
    const file = path.join(dir, 'mixing.onnx');
    saveModel({ path: '<memory>', proto: create(ModelProtoSchema, { irVersion: 8n, opsetImport: [{ domain: '', version: 17n }], graph, producerName: 'test' }), ext: { baseDir: '.', modelPath: '<memory>' }, usesExternalData: false, fileBytes: 0 }, file);
    await expectOptinError(() => inspectModel(file), 'not-transformer', /mixing\.onnx/, /CumSum node "mix_channels": CumSum has no channel rule/);
    const r = optin('prune', file, '--budget', '0.6', '--out', path.join(dir, 'p.onnx'), '--quiet');
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /CumSum node "mix_channels"/);
    assert.deepEqual(fs.readdirSync(dir), ['mixing.onnx']);
  });
});

describe('CNNs exported with dynamic height and width (torchvision resnet18, mobilenet_v3_large)', function () {
  this.timeout(600_000);
  const static18 = (): string => materialize(fixture('tv-resnet18/model.skeleton.onnx'));

  it('resnet18: analysed at the preprocessor config\'s size, exactly as the fixed-size export; MACs follow --input-size', async () => {
    const file = materialize(fixture('tv-resnet18-dynamic-hw/model.skeleton.onnx'));
    const dyn = await inspectModel(file);
    const fixed = await inspectModel(static18());
    assert.deepEqual(dyn.channels!.inputSize, { height: 64, width: 64 });
    assert.deepEqual(dyn.structure.inputs[0]!.shape, ['batch', 3, 'height', 'width'], 'inspect shows the model\'s own axes');
    assert.deepEqual(dyn.channels!.blocks.map((b) => [b.name, b.channels, b.macs]), fixed.channels!.blocks.map((b) => [b.name, b.channels, b.macs]));
    assert.equal(dyn.channels!.macs.prunable, fixed.channels!.macs.prunable);
    // Every resnet18 feature map at 96 is 1.5x as wide and high as at 64 (64 and 96 are both multiples of 32): MACs x 2.25.
    const at96 = await inspectModel(file, undefined, { height: 96, width: 96 });
    assert.equal(at96.channels!.macs.prunable, 2.25 * dyn.channels!.macs.prunable);
    const cli = optin('inspect', file, '--input-size', '96x96');
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^size {4}measured at 96 x 96 \(the model's height and width are dynamic and stay so when pruned; --input-size HxW to choose\)$/m);
  });

  for (const c of [
    { name: 'resnet18 (exact OPTIN scores)', dir: 'tv-resnet18-dynamic-hw', ranking: [] as string[] },
    { name: 'mobilenet_v3_large (L1 ranking; 24 groups through depthwise and squeeze-excitation)', dir: 'tv-mobilenet-v3-large-dynamic-hw', ranking: ['--ranking', 'l1'] },
  ]) {
    it(`${c.name}: exact scores at the calibration size, prune 0.6 verifies, the pruned model keeps dynamic axes and runs at another size, original byte-identical`, async () => {
      const file = materialize(fixture(`${c.dir}/model.skeleton.onnx`));
      const m = loadModel(file);
      const cs = await analyzeChannels(m, { height: 64, width: 64 });
      const batch = await loadCalibration(m.path, cs, { samples: 2 });
      assert.deepEqual(batch.feeds.pixel_values!.dims, [2, 3, 64, 64]);
      const subset = cs.groups.map((g) => [0, g.width - 1]);
      const sc = await scoreChannels(m, cs, batch, { neuronSubset: subset });
      sc.raw.neurons.forEach((r, l) => {
        for (const j of subset[l]!) assert.ok(Number.isFinite(r.md[j]!) && r.md[j]! >= 0 && r.kl[j]! >= 0, `group ${l} channel ${j}`);
      });
      assert.ok(sc.raw.neurons.some((r) => r.md.some((x) => x > 0)));
      const j = pruneVerified(file, ...c.ranking);
      assert.ok(j.apply.macs.after > 0.5 * j.apply.macs.before);
      const pruned = loadModel(j.out);
      assert.deepEqual(modelInputs(new GraphIndex(pruned.proto.graph!, pruned.ext)).map((i) => i.shape), [['batch', 3, 'height', 'width']]);
      const session = await ort.InferenceSession.create(j.out);
      try {
        const r = await session.run({ pixel_values: new ort.Tensor('float32', new Float32Array(3 * 96 * 80), [1, 3, 96, 80]) });
        assert.deepEqual(r[session.outputNames[0]!]!.dims, [1, 10]);
      } finally {
        await session.release();
      }
    });
  }

  it('without a size: refused in one line that says how to give one; --input-size analyses and prunes it', () => {
    const dir = tempDir();
    const bare = path.join(dir, 'r.onnx');
    fs.copyFileSync(materialize(fixture('tv-resnet18-dynamic-hw/model.skeleton.onnx')), bare);
    const r = optin('prune', bare, '--budget', '0.6', '--samples', '2', '--no-bench', '--out', path.join(dir, 'p.onnx'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /optin: .*r\.onnx: input "pixel_values" has dynamic axes \(batch x 3 x height x width\) and no size to analyse it at; put the preprocessor_config\.json the model was trained with \(its "size"\) next to the model, or pass --input-size HxW\n$/);
    assert.ok(!fs.existsSync(path.join(dir, 'p.onnx')));
    const b = optin('bench', bare, '--runs', '1');
    assert.equal(b.code, 2);
    assert.match(b.stderr, /has dynamic height and width .*--input-size HxW/);
    const ok = optin('prune', bare, '--input-size', '64x64', '--budget', '0.6', '--ranking', 'l1', '--samples', '2', '--bench-runs', '2', '--out', path.join(dir, 'p.onnx'), '--json');
    assert.equal(ok.code, 0, ok.stderr);
    const j = JSON.parse(ok.stdout);
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    assert.match(j.bench.shape, /images of 64x64$/);
  });
});

describe('exporters other than torch: a paddle2onnx-style CNN (opset 11, weights in Constant nodes, Reshape [0, -1])', function () {
  this.timeout(300_000);
  const file = fixture('paddle-style-cnn/model.onnx');
  /** Float weights of the generator's network at kept widths k (3 -> k0 -> k1 -> k2 -> k3 -> GAP -> 10; BatchNorm: 4 per channel). */
  const params = (k: number[]): number => {
    const ins = [3, ...k.slice(0, 3)];
    return k.reduce((a, w, i) => a + ins[i]! * w * 9 + 4 * w, 0) + k[3]! * 10 + 10;
  };

  it('inspect counts the Constant weights as parameters and finds the four conv groups, the last one through GlobalAveragePool and Reshape [0, -1]', async () => {
    const r = await inspectModel(file);
    assert.equal(r.parameters, params([16, 32, 32, 64]));
    assert.deepEqual(r.channels!.blocks.map((b) => [b.name, b.channels]), [['conv2d_0.tmp_0', 16], ['conv2d_1.tmp_0', 32], ['conv2d_2.tmp_0', 32], ['conv2d_3.tmp_0', 64]]);
    // MACs at 32x32: conv k x k x 9 per output position (32x32, then 16x16 after each stride 2), the classifier 64 x 10.
    assert.equal(r.channels!.macs.all, 3 * 16 * 9 * 1024 + 16 * 32 * 9 * 256 + 32 * 32 * 9 * 256 + 32 * 64 * 9 * 64 + 64 * 10);
  });

  it('exact OPTIN scores, prune 0.6: the Constant weights are sliced, verified, counted; the original is byte-identical', () => {
    const before = sha256(file);
    const out = path.join(tempDir(), 'p.onnx');
    const p = optin('prune', file, '--budget', '0.6', '--samples', '4', '--no-bench', '--out', out, '--json');
    assert.equal(p.code, 0, p.stderr);
    const j = JSON.parse(p.stdout);
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    assert.equal(j.apply.macs.after, j.plan.macs.kept);
    const kept = (j.plan.keep.neurons as number[][]).map((k) => k.length);
    // The repair (on by default) refits conv2d_1..3, which read the cut groups; paddle's convolutions have no bias (a
    // BatchNormalization follows), so each gains one of its kept output width.
    assert.deepEqual(j.apply.reconstruction.map((s: { consumer: string }) => s.consumer), ['conv2d_1.tmp_0', 'conv2d_2.tmp_0', 'conv2d_3.tmp_0']);
    assert.deepEqual(j.apply.parameters, { before: params([16, 32, 32, 64]), after: params(kept) + kept[1]! + kept[2]! + kept[3]! });
    assert.equal(sha256(file), before);
  });

  const NHWC = fixture('tf2onnx-style-nhwc-cnn/model.onnx');
  const MNIST = path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train');

  it('tf2onnx-style NHWC: images are fed channels-last (the same pixels as the NCHW loader, transposed)', async () => {
    const nhwc = await analyzeChannels(loadModel(NHWC));
    const nchw = await analyzeChannels(loadModel(file));
    const a = await loadCalibration(NHWC, nhwc, { data: MNIST, samples: 3 });
    const b = await loadCalibration(file, nchw, { data: MNIST, samples: 3 });
    const x = a.feeds.input_1!, y = b.feeds.x!;
    assert.deepEqual(x.dims, [3, 32, 32, 3]);
    assert.deepEqual(y.dims, [3, 3, 32, 32]);
    // tf2onnx-style preprocessor: p = raw / 255; paddle-style: q = (raw / 255 - 0.5) / 0.5, so p = q / 2 + 1/2.
    // Each is computed in float64 and rounded once to float32 (|p|, |q| <= 1: at most 2^-24 absolute each).
    let worst = 0;
    for (let n = 0; n < 3; n++) for (let h = 0; h < 32; h++) for (let w = 0; w < 32; w++) for (let c = 0; c < 3; c++) {
      const p = x.data[((n * 32 + h) * 32 + w) * 3 + c] as number, q = y.data[((n * 3 + c) * 32 + h) * 32 + w] as number;
      worst = Math.max(worst, Math.abs(p - (q * 0.5 + 0.5)));
    }
    assert.ok(worst <= 1.5 * 2 ** -24, `largest difference ${worst}`);
  });

  it('tf2onnx-style NHWC: the groups are found through the Transposes and ReduceMean over [1, 2]; exact scores on real images, prune 0.6 verified', async () => {
    const r = await inspectModel(NHWC);
    assert.deepEqual(r.channels!.blocks.map((b) => [b.name, b.channels]), [['model.conv2d', 16], ['model.conv2d_1', 32], ['model.conv2d_2', 48]]);
    assert.equal(r.parameters, 3 * 16 * 9 + 16 + 16 * 32 * 9 + 32 + 32 * 48 * 9 + 48 + 48 * 10 + 10);
    const before = sha256(NHWC);
    const out = path.join(tempDir(), 'p.onnx');
    const p = optin('prune', NHWC, '--budget', '0.6', '--data', MNIST, '--samples', '8', '--no-bench', '--out', out, '--json');
    assert.equal(p.code, 0, p.stderr);
    const j = JSON.parse(p.stdout);
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    assert.equal(j.apply.macs.after, j.plan.macs.kept);
    assert.equal(sha256(NHWC), before);
  });
});

describe('Concat couples slices: DeepLabV3\'s ASPP branches', function () {
  this.timeout(300_000);

  it('a masked ASPP channel equals zeroing its column at the branch\'s offset of the projection weight (an independent edit); MACs of the projection are a sum of the branches', async () => {
    const file = materialize(fixture('tv-deeplabv3-mobilenet-v3-large/model.skeleton.onnx'));
    const m = loadModel(file);
    const cs = await analyzeChannels(m);
    const branches = cs.groups.map((g, l) => ({ g, l })).filter(({ g }) => /^model\.classifier\.0\.convs\./.test(g.name));
    assert.equal(branches.length, 5);
    const project = m.proto.graph!.node.find((n) => n.name.includes('classifier.0/project/project.0/Conv'))!;
    const sites = branches.map(({ g }) => g.masks.find((s) => s.node === project.name)!);
    assert.deepEqual(sites.map((s) => [s.offset, s.extent]), [[0, 1280], [256, 1280], [512, 1280], [768, 1280], [1024, 1280]]);
    const terms = macTerms(new GraphIndex(m.proto.graph!, m.ext), cs.shapes, cs.groups);
    const t = terms.find((x) => x.node === project.name)!;
    assert.deepEqual(t.factors[0], { groups: branches.map((b) => b.l), fixed: 0 });

    // Channel 7 of branch 2 (atrous conv): masked in the instrumented model vs. its column of the projection weight zeroed in a copy.
    const { g, l } = branches[2]!;
    const j = 7;
    const wName = project.input[1]!;
    const w = tensorFloat32(m.proto.graph!.initializer.find((x) => x.name === wName)!, m.ext);
    const [O, I] = [256, 1280];
    const edited = Float32Array.from(w);
    for (let o = 0; o < O; o++) edited[o * I + 512 + j] = 0;
    const copy = withWeights(m, [{ name: wName, data: edited }]);
    const keep = cs.groups.map((x, k) => Array.from({ length: x.width }, (_, i) => i).filter((i) => !(k === l && i === j)));
    const batch = await loadCalibration(m.path, cs, { samples: 2 });
    const feeds = toOrt(batch.feeds);
    const masked = await sessionFor(m, instrumentChannels(m, cs, [l], []), 'masked');
    const zeroed = await sessionFor(copy, copy.proto, 'zeroed');
    try {
      const a = (await masked.session.run({ ...feeds, ...channelMaskFeeds(cs, keep, 2, [l]) }))[cs.outputs[0]!]!.data as Float32Array;
      const b = (await zeroed.session.run(feeds))[cs.outputs[0]!]!.data as Float32Array;
      // The two graphs compute the same sums in the same order (a masked input times the weight vs. the input times a zeroed weight): bitwise equal.
      assert.deepEqual(Array.from(a), Array.from(b));
    } finally {
      await masked.session.release();
      await zeroed.session.release();
    }
    assert.equal(g.width, 256);
  });
});
