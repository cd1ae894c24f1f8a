import * as assert from 'node:assert/strict';
import { clone, create } from '@bufbuild/protobuf';
import { loadModel } from '../../src/engine/onnx/model';
import { AttributeType, AttributeProtoSchema, ModelProtoSchema } from '../../src/engine/onnx/schema';
import { attrInt } from '../../src/engine/onnx/graph';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { applyKeep, type KeepSet } from '../../src/engine/prune/apply';
import { verifyPruned } from '../../src/engine/verify/verify';
import { layerMacs } from '../../src/engine/flops';
import { OptinError } from '../../src/engine/errors';
import { fixture, realTokenLogitDiff } from './helpers';

const DIR = 'llama-sst2';
const FUSED = `${DIR}/model.ort-mha.onnx`;

describe('onnxruntime-fused causal attention without grouped key/value heads (MultiHeadAttention + RotaryEmbedding, fused Attention)', function () {
  this.timeout(300_000);

  it('the fixture is the trained decoder: logits at every real token of a right-padded batch equal model.onnx\'s within 1e-4 of their scale (the verification tolerance)', async () => {
    const { diff, scale } = await realTokenLogitDiff(fixture(`${DIR}/model.onnx`), fixture(FUSED), 512);
    assert.ok(diff <= 1e-4 * scale, `${diff} > 1e-4 x ${scale}`);
  });

  it('found as 4 causal layers of 8 heads x 16 read through the RotaryEmbedding nodes, SwiGLU 256', async () => {
    const st = await detectStructure(loadModel(fixture(FUSED)));
    assert.equal(st.architecture, 'decoder');
    assert.match(st.causal ?? '', /MultiHeadAttention.*unidirectional/);
    assert.deepEqual(st.layers.map((l) => [l.attention!.layout, l.attention!.heads, l.attention!.group ?? 1, l.attention!.headSize, l.attention!.vHeadSize, l.ffn?.width, !!l.ffn?.gate]), Array.from({ length: 4 }, () => ['mha', 8, 1, 16, 16, 256, true]));
  });

  it('cutting heads rewrites num_heads, slices Q/K/V through the rotary nodes and the output rows, and equals masking them (no head left: the attention goes)', async () => {
    const m = loadModel(fixture(FUSED));
    const st = await detectStructure(m);
    const batch = await loadCalibration(m.path, st, { data: fixture(`${DIR}/train.txt`), samples: 6 });
    const keep: KeepSet = { heads: [[1, 6], [0, 1, 2, 3, 4, 5, 6, 7], [], [3]], neurons: [[0, 5, 9, 200], Array.from({ length: 256 }, (_, j) => j), Array.from({ length: 100 }, (_, j) => 2 * j), [255]] };
    const proto = applyKeep(m, st, keep);
    const mha = proto.graph!.node.filter((n) => n.opType === 'MultiHeadAttention');
    assert.deepEqual(mha.map((n) => attrInt(n, 'num_heads', 0)), [2, 8, 1], 'layer 2 keeps no head: its attention is gone');
    const pruned = { ...m, path: `${m.path} (pruned)`, proto };
    const macs = st.layers.reduce((a, l, i) => a + layerMacs(l, batch.meanLength, st.hidden, keep.heads[i]!.length, keep.neurons[i]!.length).total, 0);
    const v = await verifyPruned(m, st, pruned, keep, batch, { macs, seqLen: batch.meanLength });
    assert.ok(v.maxAbsDiff <= v.tolerance, `pruned vs masked original ${v.maxAbsDiff} > ${v.tolerance}`);
  });

  it('a MultiHeadAttention with a key/value cache or a per-head attention bias is refused in one line naming the node', async () => {
    const m = loadModel(fixture(FUSED));
    for (const [index, name, what] of [[6, 'past_key_values.0.key', /key\/value cache/], [5, 'attention_bias', /attention bias/]] as const) {
      const proto = clone(ModelProtoSchema, m.proto);
      const n = proto.graph!.node.find((x) => x.opType === 'MultiHeadAttention')!;
      while (n.input.length <= index) n.input.push('');
      n.input[index] = name;
      await assert.rejects(() => detectStructure({ ...m, proto }), (e: unknown) => e instanceof OptinError && /MultiHeadAttention node "\/layers\.0\/self_attn\/MultiHeadAttention"/.test(e.message) && what.test(e.message) && !e.message.includes('\n'));
    }
  });

  it('a fused Attention with unidirectional=1 is a decoder layer: heads cut and verified; with a past input it is refused in one line naming the node', async () => {
    const m = loadModel(fixture('ort-bert-toy/model.ort-fused.onnx'));
    const proto = clone(ModelProtoSchema, m.proto);
    const attn = proto.graph!.node.filter((x) => x.opType === 'Attention' && x.domain === 'com.microsoft');
    assert.ok(attn.length > 0);
    for (const n of attn) {
      n.attribute = n.attribute.filter((a) => a.name !== 'unidirectional');
      n.attribute.push(create(AttributeProtoSchema, { name: 'unidirectional', type: AttributeType.INT, i: 1n }));
    }
    const causal = { ...m, path: `${m.path} (unidirectional)`, proto };
    const st = await detectStructure(causal);
    assert.match(st.causal ?? '', /Attention node .* is onnxruntime's Attention with unidirectional=1/);
    const batch = await loadCalibration(m.path, st, { samples: 4 });
    const H = st.layers[0]!.attention!.heads;
    const keep: KeepSet = { heads: st.layers.map((_, i) => (i === 0 ? [0] : Array.from({ length: H }, (_, h) => h))), neurons: st.layers.map((l) => Array.from({ length: l.ffn!.width }, (_, j) => j)) };
    const pruned = { ...causal, path: `${m.path} (pruned)`, proto: applyKeep(causal, st, keep) };
    const macs = st.layers.reduce((a, l, i) => a + layerMacs(l, batch.meanLength, st.hidden, keep.heads[i]!.length, keep.neurons[i]!.length).total, 0);
    const v = await verifyPruned(causal, st, pruned, keep, batch, { macs, seqLen: batch.meanLength });
    assert.ok(v.maxAbsDiff <= v.tolerance, `pruned vs masked original ${v.maxAbsDiff} > ${v.tolerance}`);
    const past = clone(ModelProtoSchema, proto);
    const first = past.graph!.node.find((x) => x.opType === 'Attention')!;
    while (first.input.length < 5) first.input.push('');
    first.input[4] = 'past_0';
    await assert.rejects(() => detectStructure({ ...m, proto: past }), (e: unknown) => e instanceof OptinError && /Attention node ".*": fused Attention with a key\/value cache/.test(e.message) && !e.message.includes('\n'));
  });
});
