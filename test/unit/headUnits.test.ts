import * as assert from 'node:assert/strict';
import { loadModel } from '../../src/engine/onnx/model';
import { GraphIndex } from '../../src/engine/onnx/graph';
import { analyzeStructure, detectStructure } from '../../src/engine/structure/detect';
import { Propagation } from '../../src/engine/groups/propagate';
import { clone, create } from '@bufbuild/protobuf';
import { AttributeType, DataType, ModelProtoSchema, NodeProtoSchema, TensorProtoSchema } from '../../src/engine/onnx/schema';
import { measureShapes } from '../../src/engine/groups/shapes';
import { materialize } from '../fixtures/materialize';
import { layerMacs } from '../../src/engine/flops';
import { findHeadUnits } from '../../src/engine/structure/headUnits';
import { findLinears } from '../../src/engine/structure/linear';
import { expectOptinError, fixture } from './helpers';

/**
 * Heads by the channel propagation (docs/units.md, "Heads are groups of d channels"): started at a
 * layer's query projection with the detector's unit count (heads, or key/value heads with their
 * query heads) and d columns per unit, the propagation's units mode follows the head split, the
 * transposes, rotary, the scores and context products (the head axis is a batch axis of both) and
 * the repeat of a shared key/value head, packed Q/K/V (three parts of every unit in one projection,
 * reshaped to [3, heads, d] or split), and closes over exactly the projections the per-layout
 * detector names: Q, K and V the producers, the output projection the only consumer, at the MACs per
 * unit the detector's formula gives (docs/method.md); and found without the detector
 * ({@link findHeadUnits}), the same units. With one
 * shared key/value head (multi-query) K and V are broadcast to every unit, so they are not in it.
 */
describe('attention heads found by the channel propagation are the detector\'s units', function () {
  this.timeout(300_000);
  const cases: Array<[string, string]> = [
    ['BERT trained on SST-2 (torch)', 'bert-sst2/model-opset17.onnx'],
    ['BERT-like, opset 14', 'torch-bert-like-random/model-opset14.onnx'],
    ['keras2onnx BERT (Tensordot reshapes, run-time head shapes)', 'keras2onnx-tfbert-mrpc/model.onnx'],
    ['DistilBERT exported by optimum', 'optimum-tiny-distilbert-sst2/model.onnx'],
    ['modern encoder (rotary q/k: q cos + rotate_half(q) sin)', 'modern-encoder-random/model-opset17.onnx'],
    ['Llama-style decoder, grouped-query (a unit: a key/value head and its 4 query heads)', 'llama-sst2/model.onnx'],
    ['Llama-style decoder, multi-query (units: query heads; K/V shared)', 'llama-mqa-random/model.skeleton.onnx'],
    ['torchaudio wav2vec2 (transformer after a conv feature extractor)', 'torchaudio-wav2vec2-small/model.skeleton.onnx'],
    ['timm-style ViT: packed Q/K/V reshaped to [3, heads, d] and gathered', 'vit-digits/model-opset17.onnx'],
    ['GPT-2-style: packed c_attn split into Q, K and V', 'gpt2-style-random/model.onnx'],
    ['torchvision Swin: window attention, packed Q/K/V, per-head position bias, shifted-window mask on a 5-D view', 'swin-fpn-scenes/model-opset17.onnx'],
    ['DeiT-style: packed Q/K/V cut by torch chunk (Slices whose bounds are read as measured)', 'deit-random/model-opset17.onnx'],
    ['torchvision ViT: nn.MultiheadAttention, packed in_proj, heads folded into the batch axis', 'torchvision-vit-random/model-opset17.onnx'],
    ['torchaudio Conformer: a key-padding mask from the lengths, repeated over the heads, added to the scores', 'torchaudio-conformer/model.skeleton.onnx'],
  ];
  for (const [name, rel] of cases) {
    it(name, async () => {
      const file = rel.endsWith('.skeleton.onnx') ? materialize(fixture(rel)) : fixture(rel);
      const m = loadModel(file);
      const { st, shapes } = await analyzeStructure(m);
      const ix = new GraphIndex(m.proto.graph!, m.ext);
      const outputs = new Set(ix.graph.output.map((o) => o.name));
      let n = 0;
      for (const l of st.layers) {
        const a = l.attention;
        if (!a) continue;
        const q = a.projections[0]!;
        const start = ix.graph.node.find((x) => (x.name || x.output[0]) === q.node)!;
        // Packed Q/K/V: one projection holds three parts (Q, K, V) of every unit's d columns.
        const parts = a.projections.length === 1 ? 3 : 1;
        const g = new Propagation(ix, shapes, a.heads, outputs, true).run(start, q.node, q.outFeatures / a.heads / parts, parts);
        const want = (a.sharedKv ? [q] : a.projections).map((p) => p.node).sort();
        assert.deepEqual([...g.producers].sort(), want, `layer ${l.index} producers`);
        assert.deepEqual(g.consumers, [a.output.node], `layer ${l.index} consumers`);
        assert.equal(g.width, a.heads, `layer ${l.index} units`);
        // MACs per unit from the products the closure passes, at the probe's shapes: the detector's formula at the same positions.
        const s = st.modality === 'text' ? shapes.get(st.inputs.find((i) => i.role === 'input_ids')!.name)![1]! : st.visionTokens!;
        assert.equal(g.macsPerChannel, layerMacs(l, s, st.hidden).perHead, `layer ${l.index} MACs per unit`);
        n++;
      }
      assert.ok(n > 0, 'the fixture has attention layers');
      // Found without the detector: from every projection outside the feed-forward blocks, the unit counts the nearby Reshapes suggest.
      const ffn = new Set(st.layers.flatMap((l) => (l.ffn ? [l.ffn.up, l.ffn.down, ...(l.ffn.gate ? [l.ffn.gate] : [])].map((x) => x.node) : [])));
      const units = findHeadUnits(ix, shapes, [...findLinears(ix).values()], ffn);
      assert.equal(units.length, n, 'one unit per attention layer, no other');
      for (const l of st.layers) {
        const a = l.attention;
        if (!a) continue;
        const u = units.find((x) => x.group.consumers[0] === a.output.node);
        assert.ok(u, `layer ${l.index}: a unit ends in ${a.output.node}`);
        assert.deepEqual([...u.group.producers].sort(), (a.sharedKv ? [a.projections[0]!] : a.projections).map((p) => p.node).sort(), `layer ${l.index} producers (found alone)`);
        assert.equal(u.width, a.heads, `layer ${l.index} units (found alone)`);
        assert.equal(u.parts, a.projections.length === 1 ? 3 : 1, `layer ${l.index} parts`);
      }
      // Detection keeps the closure as the block's unit, and the cutter reads it: its projections' cuts
      // lie as the detector's head geometry says (d columns per head; a key/value head's query heads
      // together; packed: three parts), and its constants hold multiples of the unit count.
      for (const l of st.layers) {
        const a = l.attention;
        if (!a) continue;
        assert.ok(a.unit?.sites?.length, `layer ${l.index}: detection attaches the propagation's unit, with the constants that hold its extent`);
        for (const x of a.unit.sites) assert.equal(x.value % a.heads, 0, `layer ${l.index}: ${x.node} entry ${x.index}`);
        const g = a.group ?? 1;
        const want = a.projections.length === 1
          ? [[a.projections[0]!.node, a.headSize, 3]]
          : (a.sharedKv ? [a.projections[0]!] : a.projections).map((p, i) => [p.node, i === 0 ? g * a.headSize : i === 1 ? a.headSize : a.vHeadSize / g, 1]);
        const got = a.unit.cuts.filter((c) => c.input === 1 && a.projections.some((p) => p.node === c.node)).map((c) => [c.node, c.block ?? 1, c.parts ?? 1]);
        assert.deepEqual(got.sort(), want.sort(), `layer ${l.index}: projection cuts`);
      }
    });
  }

  const variants = [
    'deit-random/model-opset17.ort-fused.onnx', 'torchvision-vit-random/model-opset17.ort-fused.onnx', 'keras2onnx-tfbert-mrpc/model.ort-fused.onnx',
    'llama-sst2/model-with-past.skeleton.onnx', 'llama-sst2/model.int4.onnx', 'llama-sst2/model.ort-gqa.onnx', 'llama-sst2/model.ort-mha.onnx',
    'llama-base-random/model.skeleton.onnx', 'onnx-attention-random/model-opset23.onnx', 'ort-bert-toy/model.ort-fused.onnx',
    'ort-fused-attention/attention-varied-qkv-opt.onnx', 'ort-fused-attention/bert-3d-attention-opt.onnx', 'vitpt-relbias-random/model-opset17.onnx',
  ];
  it(`found without the detector on onnxruntime-fused, cached, int4 and fused-op graphs too (${variants.length} files): the detector's units`, async () => {
    for (const rel of variants) {
      const file = rel.endsWith('.skeleton.onnx') ? materialize(fixture(rel)) : fixture(rel);
      const m = loadModel(file);
      const { st, shapes } = await analyzeStructure(m);
      const ix = new GraphIndex(m.proto.graph!, m.ext);
      const ffn = new Set(st.layers.flatMap((l) => (l.ffn ? [l.ffn.up, l.ffn.down, ...(l.ffn.gate ? [l.ffn.gate] : [])].map((x) => x.node) : [])));
      const units = findHeadUnits(ix, shapes, [...findLinears(ix).values()], ffn);
      const attn = st.layers.flatMap((l) => (l.attention ? [l.attention] : []));
      assert.equal(units.length, attn.length, `${rel}: one unit per attention layer`);
      for (const a of attn) {
        const u = units.find((x) => x.group.consumers[0] === a.output.node);
        assert.ok(u, `${rel}: a unit ends in ${a.output.node}`);
        assert.deepEqual([u.width, [...u.group.producers].sort()], [a.heads, [...a.unit!.producers].sort()], `${rel}: ${a.core}`);
      }
    }
  });

  it('a relative-position bias shared by two layers couples their heads: detection refuses, naming where', async () => {
    const m = loadModel(fixture('vitpt-relbias-random/model-opset17.onnx'));
    const proto = clone(ModelProtoSchema, m.proto);
    const add = proto.graph!.node.find((n) => n.name === '/layers.1.0/Add_1')!;
    add.input[1] = '/layers.0.0/Unsqueeze_6_output_0';
    await expectOptinError(() => detectStructure({ ...m, proto }), 'unsupported', /the heads of the attention at Softmax node "\/layers\.0\.0\/Softmax" cannot be cut: its heads are (also read|produced) by .*layers\.1\.0/);
  });

  it('a CNN has no attention units (no closure passes a Softmax)', async () => {
    const m = loadModel(fixture('resnet-mnist/model-opset17.onnx'));
    const shapes = await measureShapes(m);
    const ix = new GraphIndex(m.proto.graph!, m.ext);
    assert.deepEqual(findHeadUnits(ix, shapes, [...findLinears(ix).values()]), []);
  });

  it('heads mixed by a weight across the head axis (talking heads) are read by that weight: the closure is not a head unit', async () => {
    const m = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const proto = clone(ModelProtoSchema, m.proto);
    const g = proto.graph!;
    const soft = g.node.find((n) => n.name === '/layers.0/attention/Softmax')!;
    const pv = g.node.find((n) => n.name === '/layers.0/attention/MatMul_1')!;
    const H = 8;
    const w = Float32Array.from({ length: H * H }, (_, i) => (i % (H + 1) === 0 ? 1 : 0.01));
    g.initializer.push(create(TensorProtoSchema, { name: 'mix_w', dims: [BigInt(H), BigInt(H)], dataType: DataType.FLOAT, rawData: new Uint8Array(w.buffer) }));
    const at = g.node.indexOf(pv);
    g.node.splice(at, 0,
      create(NodeProtoSchema, { name: 'to_last', opType: 'Transpose', input: [soft.output[0]!], output: ['heads_last'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [0n, 2n, 3n, 1n] }] }),
      create(NodeProtoSchema, { name: 'mix', opType: 'MatMul', input: ['heads_last', 'mix_w'], output: ['mixed'] }),
      create(NodeProtoSchema, { name: 'back', opType: 'Transpose', input: ['mixed'], output: ['heads_back'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [0n, 3n, 1n, 2n] }] }));
    pv.input[0] = 'heads_back';
    const mixed = { ...m, proto };
    const shapes = await measureShapes(mixed);
    const ix = new GraphIndex(g, m.ext);
    const q = g.node.find((n) => n.name === '/layers.0/attention/query/MatMul')!;
    const grp = new Propagation(ix, shapes, H, new Set(), true).run(q, q.name, 256 / H);
    // The scores end at the mixing weight: V and the output projection are not reached, so no head unit comes out.
    assert.deepEqual(grp.consumers, ['mix']);
    assert.deepEqual([...grp.producers].sort(), ['/layers.0/attention/key/MatMul', '/layers.0/attention/query/MatMul']);
  });
});
