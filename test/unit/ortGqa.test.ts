import * as assert from 'node:assert/strict';
import { clone } from '@bufbuild/protobuf';
import { loadModel } from '../../src/engine/onnx/model';
import { ModelProtoSchema } from '../../src/engine/onnx/schema';
import { attrInt } from '../../src/engine/onnx/graph';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { applyKeep, type KeepSet } from '../../src/engine/prune/apply';
import { verifyPruned } from '../../src/engine/verify/verify';
import { layerMacs } from '../../src/engine/flops';
import { OptinError } from '../../src/engine/errors';
import { fixture, realTokenLogitDiff } from './helpers';

const DIR = 'llama-sst2';
const FUSED = `${DIR}/model.ort-gqa.onnx`;

describe('onnxruntime-fused Llama graphs (GroupQueryAttention, SkipSimplifiedLayerNormalization)', function () {
  this.timeout(300_000);

  it('the fixture is the trained decoder: logits at every real token of a right-padded batch equal model.onnx\'s within 1e-4 of their scale (the verification tolerance)', async () => {
    const { diff, scale } = await realTokenLogitDiff(fixture(`${DIR}/model.onnx`), fixture(FUSED), 512);
    assert.ok(diff <= 1e-4 * scale, `${diff} > 1e-4 x ${scale}`);
  });

  it('found as the unfused export: 4 layers of 2 key/value groups of 4 query heads x 16, SwiGLU 256 read through the fused norms, causal, the same MACs', async () => {
    const st = await detectStructure(loadModel(fixture(FUSED)));
    const plain = await detectStructure(loadModel(fixture(`${DIR}/model.onnx`)));
    assert.equal(st.architecture, 'decoder');
    assert.match(st.causal ?? '', /GroupQueryAttention/);
    assert.deepEqual(st.layers.map((l) => [l.attention!.layout, l.attention!.heads, l.attention!.group, l.attention!.headSize, l.attention!.vHeadSize, l.ffn?.width, !!l.ffn?.gate]), Array.from({ length: 4 }, () => ['ort-group-query', 2, 4, 16, 64, 256, true]));
    st.layers.forEach((l, i) => assert.deepEqual(layerMacs(l, 20, 128), layerMacs(plain.layers[i]!, 20, 128)));
  });

  it('cutting whole key/value groups rewrites num_heads and kv_num_heads, slices Q/K/V and the output rows, and equals masking them (no group left: the attention goes; one group left: multi-query)', async () => {
    const m = loadModel(fixture(FUSED));
    const st = await detectStructure(m);
    const batch = await loadCalibration(m.path, st, { data: fixture(`${DIR}/train.txt`), samples: 6 });
    const keep: KeepSet = { heads: [[1], [0, 1], [], [0, 1]], neurons: [[0, 5, 9, 200], Array.from({ length: 256 }, (_, j) => j), Array.from({ length: 100 }, (_, j) => 2 * j), [255]] };
    const proto = applyKeep(m, st, keep);
    const gqa = proto.graph!.node.filter((n) => n.opType === 'GroupQueryAttention');
    assert.deepEqual(gqa.map((n) => [attrInt(n, 'num_heads', 0), attrInt(n, 'kv_num_heads', 0)]), [[4, 1], [8, 2], [8, 2]], 'layer 2 keeps no group: its attention is gone');
    const pruned = { ...m, path: `${m.path} (pruned)`, proto };
    const macs = st.layers.reduce((a, l, i) => a + layerMacs(l, batch.meanLength, st.hidden, keep.heads[i]!.length, keep.neurons[i]!.length).total, 0);
    const v = await verifyPruned(m, st, pruned, keep, batch, { macs, seqLen: batch.meanLength });
    assert.ok(v.maxAbsDiff <= v.tolerance, `pruned vs masked original ${v.maxAbsDiff} > ${v.tolerance}`);
    const re = await detectStructure({ ...m, proto: applyKeep(m, st, { ...keep, heads: [[1], [0, 1], [0], [0, 1]] }) });
    assert.deepEqual(re.layers.map((l) => [l.attention!.heads, l.attention!.group ?? 1, !!l.attention!.sharedKv]), [[4, 1, true], [2, 4, false], [4, 1, true], [2, 4, false]], 're-detected: one kept group is 4 query heads sharing one key/value head');
  });

  it('a GroupQueryAttention with a key/value cache is refused in one line naming the node', async () => {
    const m = loadModel(fixture(FUSED));
    const proto = clone(ModelProtoSchema, m.proto);
    const n = proto.graph!.node.find((x) => x.opType === 'GroupQueryAttention')!;
    n.input[3] = 'past_key_values.0.key';
    n.input[4] = 'past_key_values.0.value';
    await assert.rejects(() => detectStructure({ ...m, proto }), (e: unknown) => e instanceof OptinError && /GroupQueryAttention node "\/layers\.0\/self_attn\/GroupQueryAttention".*key\/value cache/.test(e.message) && !e.message.includes('\n'));
  });
});
