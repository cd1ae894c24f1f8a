import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { GraphIndex } from '../../src/engine/onnx/graph';
import { loadModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { detectStructure } from '../../src/engine/structure/detect';
import { inspectModel } from '../../src/engine/inspect';
import { DataType, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, TensorProtoSchema, ValueInfoProtoSchema } from '../../src/engine/onnx/schema';
import type { ModelStructure } from '../../src/engine/structure/types';
import { expectOptinError, fixture, sha256, tempDir } from './helpers';

interface Expect {
  arch: string;
  modality: ModelStructure['modality'];
  norm: 'pre' | 'post';
  hidden: number;
  layers: number;
  heads: number;
  headSize: number;
  vHeadSize?: number;
  ffn: number;
  qkv: string;
  activation: string | null;
  visionTokens?: number;
}

const bertSst2: Expect = { arch: 'bert', modality: 'text', norm: 'post', hidden: 256, layers: 4, heads: 8, headSize: 32, ffn: 1024, qkv: 'separate', activation: 'gelu-erf' };
const vit: Expect = { arch: 'vit', modality: 'vision', norm: 'pre', hidden: 64, layers: 4, heads: 4, headSize: 16, ffn: 256, qkv: 'packed', activation: 'gelu-erf', visionTokens: 17 };
const toy: Expect = { arch: 'bert', modality: 'text', norm: 'post', hidden: 32, layers: 5, heads: 4, headSize: 8, ffn: 37, qkv: 'separate', activation: 'gelu-erf' };
const keras: Expect = { arch: 'tf-bert', modality: 'text', norm: 'post', hidden: 8, layers: 12, heads: 2, headSize: 4, ffn: 32, qkv: 'separate', activation: 'gelu-erf' };
const torchRandom: Expect = { arch: 'bert', modality: 'text', norm: 'post', hidden: 32, layers: 2, heads: 4, headSize: 8, ffn: 64, qkv: 'separate', activation: 'gelu-erf' };
const single = (heads: number, headSize: number, qkv: string, vHeadSize?: number): Expect => ({
  arch: 'bert', modality: 'hidden-states', norm: 'post', hidden: 16, layers: 1, heads, headSize, ffn: 0, qkv, activation: null, ...(vHeadSize ? { vHeadSize } : {}),
});

const CASES: Record<string, Expect> = {
  'bert-sst2/model-opset17.onnx': bertSst2,
  'vit-digits/model-opset14.onnx': vit,
  'vit-digits/model-opset17.onnx': vit,
  'optimum-tiny-distilbert-sst2/model.onnx': { arch: 'distilbert', modality: 'text', norm: 'post', hidden: 2, layers: 2, heads: 2, headSize: 1, ffn: 2, qkv: 'separate', activation: 'gelu-erf' },
  'optimum-tiny-distilbert-sst2/model.ort-fused.onnx': { arch: 'distilbert', modality: 'text', norm: 'post', hidden: 2, layers: 2, heads: 2, headSize: 1, ffn: 2, qkv: 'separate', activation: 'gelu' },
  'ort-bert-toy/model.onnx': toy,
  'ort-bert-toy/model.ort-fused.onnx': { ...toy, qkv: 'fused-attention', activation: 'bias-gelu' },
  'keras2onnx-tfbert-mrpc/model.onnx': keras,
  'keras2onnx-tfbert-mrpc/model.ort-fused.onnx': keras,
  'torch-bert-like-random/model-opset14.onnx': torchRandom,
  'torch-bert-like-random/model-opset17.onnx': torchRandom,
  'torch-bert-like-random/model-opset17.ort-fused.onnx': { ...torchRandom, activation: 'bias-gelu' },
  'ort-fused-attention/attention-opt.onnx': single(2, 8, 'fused-attention'),
  'ort-fused-attention/attention-mha.onnx': single(2, 8, 'mha'),
  'ort-fused-attention/attention-varied-qkv-opt.onnx': single(2, 12, 'fused-attention', 8),
  'ort-fused-attention/bert-3d-attention-opt.onnx': single(4, 4, 'fused-attention'),
  'ort-fused-attention/pruned-attention-opt.onnx': single(2, 4, 'fused-attention'),
  'onnx-attention-random/model-opset23.onnx': { arch: 'bert', modality: 'text', norm: 'post', hidden: 64, layers: 2, heads: 4, headSize: 16, ffn: 128, qkv: 'onnx-attention', activation: 'gelu' },
};

describe('transformer structure detection', () => {
  for (const [rel, e] of Object.entries(CASES)) {
    it(`detects ${rel}: ${e.layers} layers of ${e.heads} x ${e.headSize} heads, FFN ${e.ffn}, ${e.norm}-LN`, async () => {
      const s = await detectStructure(loadModel(fixture(rel)));
      assert.equal(s.architecture, e.arch);
      assert.equal(s.modality, e.modality);
      assert.equal(s.norm, e.norm);
      assert.equal(s.hidden, e.hidden);
      assert.equal(s.layers.length, e.layers);
      s.layers.forEach((l, i) => {
        const where = `layer ${i}`;
        assert.equal(l.attention!.heads, e.heads, where);
        assert.equal(l.attention!.headSize, e.headSize, where);
        assert.equal(l.attention!.vHeadSize, e.vHeadSize ?? e.headSize, where);
        assert.equal(l.attention!.layout, e.qkv, where);
        assert.equal(l.ffn?.width ?? 0, e.ffn, where);
        assert.equal(l.ffn?.activation ?? null, e.activation, where);
        assert.ok(l.input && l.output && l.feature, `${where}: residual stream and feature found`);
        if (i > 0) assert.equal(l.input, s.layers[i - 1]!.output, `${where}: input is the previous layer's output`);
        assert.ok(l.attention!.unit?.sites?.some((x) => x.value % l.attention!.heads === 0), `${where}: a constant holding the head count found`);
      });
      if (e.visionTokens) assert.equal(s.visionTokens, e.visionTokens);
    });
  }

  it('finds pre-LN features at the first LayerNorm and post-LN features at the FFN output', async () => {
    const v = await detectStructure(loadModel(fixture('vit-digits/model-opset17.onnx')));
    assert.match(v.layers[1]!.feature, /blocks\.1\/norm1/);
    const b = await detectStructure(loadModel(fixture('bert-sst2/model-opset17.onnx')));
    assert.match(b.layers[2]!.feature, /layers\.2\/output\/Add/);
  });

  it('records the keras2onnx head count, read from a constant all layers share, where each layer reads it', async () => {
    const m = loadModel(fixture('keras2onnx-tfbert-mrpc/model.onnx'));
    const s = await detectStructure(m);
    const heads = s.layers[3]!.attention!.unit!.sites!.filter((x) => x.value === 2);
    assert.equal(heads.length, 1);
    assert.match(heads[0]!.node, /layer_\._3\/attention\/self\/Reshape\/shape_unsqueeze2$/);
    const shared = m.proto.graph!.node.find((n) => n.name === heads[0]!.node)!.input[0]!;
    assert.ok(new GraphIndex(m.proto.graph!, m.ext).uses(shared).length > 1, 'the constant is shared across layers; the Unsqueeze reading it is this layer\'s');
  });

  it('records the feed-forward neurons as a group: keras2onnx\'s run-time Tensordot shape holds the neuron count in a literal of its Concat; torch\'s and Llama\'s FFNs have none; gate and up columns cut together', async () => {
    const keras = (await detectStructure(loadModel(fixture('keras2onnx-tfbert-mrpc/model.onnx')))).layers[0]!.ffn!.unit!;
    assert.deepEqual(keras.sites!.map((x) => [x.node, x.input, x.index, x.value]), [['tf_bert_for_sequence_classification/bert/encoder/layer_._0/intermediate/dense/Tensordot/concat_1_concat', 1, 0, 32]]);
    const bert = (await detectStructure(loadModel(fixture('bert-sst2/model-opset17.onnx')))).layers[0]!.ffn!.unit!;
    assert.deepEqual(bert.sites, []);
    assert.deepEqual(bert.cuts.map((c) => [c.node, c.input, c.axis]), [['/layers.0/intermediate/MatMul', 1, 1], ['/layers.0/intermediate/Add', 0, 0], ['/layers.0/output/MatMul', 1, 0]]);
    const llama = (await detectStructure(loadModel(fixture('llama-sst2/model.onnx')))).layers[0]!.ffn!.unit!;
    assert.deepEqual(llama.cuts.map((c) => [c.node, c.input, c.axis]), [['/layers.0/mlp/gate_proj/MatMul', 1, 1], ['/layers.0/mlp/up_proj/MatMul', 1, 1], ['/layers.0/mlp/down_proj/MatMul', 1, 0]]);
  });

  it('records the ViT\'s head count (a literal of the [B, N, 3, heads, d] split) and the merge\'s width, read at run time from the stream (spliced in)', async () => {
    const s = await detectStructure(loadModel(fixture('vit-digits/model-opset17.onnx')));
    const sites = s.layers[0]!.attention!.unit!.sites!;
    assert.deepEqual(sites.map((x) => [x.node, x.index, x.value, x.length]), [['/blocks.0/attn/Concat', 0, 4, undefined], ['/blocks.0/attn/Reshape_1', 2, 64, 3]]);
  });

  it('refuses the GPT-2 decoder, naming the causal mask', async () => {
    await expectOptinError(async () => await detectStructure(loadModel(fixture('gpt2-decoder/model.onnx'))), 'decoder', /decoder-only/, /gpt2-decoder\/model\.onnx/, /lower-triangular/);
  });

  it('refuses a graph onnxruntime cannot load, with its reason', async () => {
    await expectOptinError(() => inspectModel(fixture('pt14-bert-squad-refused/model.onnx')), 'runtime', /onnxruntime cannot load this graph/, /Concat/);
  });

  it('analyses a non-transformer graph (a two-layer MLP) as one channel group: its hidden units', async () => {
    const w = (name: string, r: number, c: number) => create(TensorProtoSchema, {
      name, dims: [BigInt(r), BigInt(c)], dataType: DataType.FLOAT, rawData: new Uint8Array(new Float32Array(r * c).fill(0.1).buffer),
    });
    const vi = (name: string) => create(ValueInfoProtoSchema, {
      name, type: { value: { case: 'tensorType', value: { elemType: DataType.FLOAT, shape: { dim: [{ value: { case: 'dimValue', value: 1n } }, { value: { case: 'dimValue', value: 4n } }] } } } },
    });
    const graph = create(GraphProtoSchema, {
      name: 'mlp',
      node: [
        create(NodeProtoSchema, { opType: 'MatMul', input: ['x', 'w1'], output: ['h'], name: 'fc1' }),
        create(NodeProtoSchema, { opType: 'Relu', input: ['h'], output: ['a'], name: 'relu' }),
        create(NodeProtoSchema, { opType: 'MatMul', input: ['a', 'w2'], output: ['y'], name: 'fc2' }),
      ],
      initializer: [w('w1', 4, 8), w('w2', 8, 4)],
      input: [vi('x')],
      output: [vi('y')],
    });
    const model = create(ModelProtoSchema, { irVersion: 8n, opsetImport: [{ domain: '', version: 17n }], graph, producerName: 'test' });
    const file = path.join(tempDir(), 'mlp.onnx');
    saveModel({ path: '<memory>', proto: model, ext: { baseDir: '.', modelPath: '<memory>' }, usesExternalData: false, fileBytes: 0 }, file);
    const r = await inspectModel(file);
    assert.deepEqual(r.channels?.blocks.map((b) => [b.name, b.channels, b.producers, b.consumers]), [['fc1', 8, ['fc1'], ['fc2']]]);
    assert.equal(r.channels?.macs.prunable, 2 * 4 * 8);
  });

  it('refuses float16 weights, naming the node and the tensor', async () => {
    const m = loadModel(fixture('torch-bert-like-random/model-opset17.onnx'));
    const node = m.proto.graph!.node.find((n) => n.opType === 'MatMul' && m.proto.graph!.initializer.some((t) => t.name === n.input[1]))!;
    const t = m.proto.graph!.initializer.find((x) => x.name === node.input[1])!;
    t.dataType = DataType.FLOAT16;
    t.rawData = t.rawData.slice(0, t.rawData.byteLength / 2);
    await expectOptinError(async () => await detectStructure(m), 'unsupported', /float16/, new RegExp(`MatMul node "${node.name.replace(/[/.]/g, '\\$&')}"`));
  });

  it('reading, detecting and inspecting leave the model file byte-identical and write nothing beside it', async () => {
    const file = fixture('bert-sst2/model-opset17.onnx');
    const dir = path.dirname(file);
    const before = sha256(file);
    const listing = fs.readdirSync(dir).sort();
    await detectStructure(loadModel(file));
    await inspectModel(file);
    assert.equal(sha256(file), before);
    assert.deepEqual(fs.readdirSync(dir).sort(), listing);
  });
});
