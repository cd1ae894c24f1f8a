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
import { applyKeep } from '../../src/engine/prune/apply';
import { expectOptinError, fixture } from './helpers';

/**
 * Heads by the channel propagation (docs/units.md, "Heads are groups of d channels"): detection finds
 * each attention layer's site (core, projections) and takes its heads from the propagation: the
 * head geometry must be what the per-layout detectors read from the Reshapes before (listed per
 * case). Started again at the query projection with that unit count and d columns per unit, the
 * units mode follows the head split, the transposes, rotary, the scores and context products (the
 * head axis is a batch axis of both) and the repeat of a shared key/value head, packed Q/K/V (three
 * parts of every unit in one projection, reshaped to [3, heads, d] or split), and closes over exactly
 * the site's projections: Q, K and V the producers, the output projection the only consumer, at the
 * MACs per unit the formula of docs/method.md gives; and found without any site
 * ({@link findHeadUnits}), the same units. With one shared key/value head (multi-query) K and V are
 * broadcast to every unit, so they are not in it.
 */
describe('attention heads found by the channel propagation', function () {
  this.timeout(300_000);
  // Heads x head size / context columns per unit (g: query heads per key/value head; shared: one key/value head), as the per-layout detectors read them from the Reshapes before the propagation replaced them.
  const cases: Array<[string, string, string[]]> = [
    ['BERT trained on SST-2 (torch)', 'bert-sst2/model-opset17.onnx', ["8x32/32"]],
    ['BERT-like, opset 14', 'torch-bert-like-random/model-opset14.onnx', ["4x8/8"]],
    ['keras2onnx BERT (Tensordot reshapes, run-time head shapes)', 'keras2onnx-tfbert-mrpc/model.onnx', ["2x4/4"]],
    ['DistilBERT exported by optimum', 'optimum-tiny-distilbert-sst2/model.onnx', ["2x1/1"]],
    ['modern encoder (rotary q/k: q cos + rotate_half(q) sin)', 'modern-encoder-random/model-opset17.onnx', ["4x16/16"]],
    ['Llama-style decoder, grouped-query (a unit: a key/value head and its 4 query heads)', 'llama-sst2/model.onnx', ["2x16/64 g4"]],
    ['Llama-style decoder, multi-query (units: query heads; K/V shared)', 'llama-mqa-random/model.skeleton.onnx', ["8x16/16 shared"]],
    ['torchaudio wav2vec2 (transformer after a conv feature extractor)', 'torchaudio-wav2vec2-small/model.skeleton.onnx', ["4x16/16"]],
    ['timm-style ViT: packed Q/K/V reshaped to [3, heads, d] and gathered', 'vit-digits/model-opset17.onnx', ["4x16/16"]],
    ['GPT-2-style: packed c_attn split into Q, K and V', 'gpt2-style-random/model.onnx', ["4x16/16"]],
    ['torchvision Swin: window attention, packed Q/K/V, per-head position bias, shifted-window mask on a 5-D view', 'swin-fpn-scenes/model-opset17.onnx', ["3x16/16", "6x16/16"]],
    ['DeiT-style: packed Q/K/V cut by torch chunk (Slices whose bounds are read as measured)', 'deit-random/model-opset17.onnx', ["4x16/16"]],
    ['torchvision ViT: nn.MultiheadAttention, packed in_proj, heads folded into the batch axis', 'torchvision-vit-random/model-opset17.onnx', ["4x16/16"]],
    ['torchaudio Conformer: a key-padding mask from the lengths, repeated over the heads, added to the scores', 'torchaudio-conformer/model.skeleton.onnx', ["4x16/16"]],
  ];
  for (const [name, rel, geometry] of cases) {
    it(name, async () => {
      const file = rel.endsWith('.skeleton.onnx') ? materialize(fixture(rel)) : fixture(rel);
      const m = loadModel(file);
      const { st, shapes } = await analyzeStructure(m);
      const ix = new GraphIndex(m.proto.graph!, m.ext);
      const outputs = new Set(ix.graph.output.map((o) => o.name));
      const found = st.layers.flatMap((l) => { const a = l.attention; return a ? [`${a.heads}x${a.headSize}/${a.vHeadSize}${a.group ? ` g${a.group}` : ''}${a.sharedKv ? ' shared' : ''}`] : []; });
      assert.deepEqual([...new Set(found)], geometry, 'head geometry');
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
        // MACs per unit from the products the closure passes, at the probe's shapes: the formula of docs/method.md at the same positions.
        const s = st.modality === 'text' ? shapes.get(st.inputs.find((i) => i.role === 'input_ids')!.name)![1]! : st.visionTokens!;
        assert.equal(g.macsPerChannel, layerMacs(l, s, st.hidden).perHead, `layer ${l.index} MACs per unit`);
        n++;
      }
      assert.ok(n > 0, 'the fixture has attention layers');
      // Found without any site: from every projection outside the feed-forward blocks, the unit counts the nearby Reshapes suggest.
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
      // lie as the head geometry says (d columns per head; a key/value head's query heads
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
  it(`found without any site on onnxruntime-fused, cached, int4 and fused-op graphs too (${variants.length} files): detection's units`, async () => {
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

  it(`analysed again after pruning to one head, or none, in a layer: every layout and variant (${cases.length + variants.length} files), the kept counts`, async () => {
    for (const rel of [...cases.map((c) => c[1]), ...variants]) {
      const m = loadModel(rel.endsWith('.skeleton.onnx') ? materialize(fixture(rel)) : fixture(rel));
      const { st } = await analyzeStructure(m);
      for (const shift of [0, 1, 2]) {
        // Per layer: one head (the last), none, or every other head; the first layer keeps one at least.
        const heads = st.layers.map((l, i) => {
          const H = l.attention?.heads ?? 0, r = (i + shift) % 3;
          return r === 0 || (r === 1 && i === 0) ? (H ? [H - 1] : []) : r === 1 ? [] : Array.from({ length: H }, (_, j) => j).filter((j) => j % 2 === 0);
        });
        const neurons = st.layers.map((l) => Array.from({ length: l.ffn?.width ?? 0 }, (_, j) => j).filter((j) => l.ffn?.down.blockSize || j % 3 !== 1));
        const again = (await analyzeStructure({ ...m, proto: applyKeep(m, st, { heads, neurons }) })).st;
        // A key/value group left alone is multi-query attention: its query heads are the units.
        const units = (l: (typeof st.layers)[number], k: number): number => k * (l.attention?.group ?? 1);
        assert.deepEqual(again.layers.filter((l) => l.attention).map((l) => units(l, l.attention!.heads)), st.layers.map((l, i) => units(l, heads[i]!.length)).filter((k) => k > 0), `${rel}, keep ${JSON.stringify(heads.map((h) => h.length))}`);
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

  it('heads mixed by a weight across the head axis (talking heads) are read by that weight: the closure is not a head unit, and detection says which Softmax it leaves alone', async () => {
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
    // Detection says so, naming the Softmax and the op: that layer keeps its heads, the other three are pruned as before.
    const st = await detectStructure(mixed);
    assert.deepEqual(st.layers.map((l) => l.attention?.heads ?? 0), [0, 8, 8, 8]);
    assert.deepEqual(st.notes, ['the Softmax at Softmax node "/layers.0/attention/Softmax": its probabilities reach the product with the values through Transpose node "to_last", which has no rule (they may be mixed across heads); its heads are not pruned (the projections around it are left whole)']);
  });
});
