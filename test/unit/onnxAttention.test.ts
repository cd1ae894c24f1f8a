import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { loadModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { attrInt } from '../../src/engine/onnx/graph';
import { AttributeProtoSchema, AttributeType } from '../../src/engine/onnx/schema';
import { detectStructure } from '../../src/engine/structure/detect';
import { fixture, optin, pruneVerified, tempDir } from './helpers';

const FILE = 'onnx-attention-random/model-opset23.onnx';

/** A copy of the fixture with one attribute of the first Attention node set. */
function withAttr(name: string, value: number): string {
  const m = loadModel(fixture(FILE));
  const n = m.proto.graph!.node.find((x) => x.opType === 'Attention')!;
  n.attribute = n.attribute.filter((a) => a.name !== name);
  n.attribute.push(create(AttributeProtoSchema, { name, type: AttributeType.INT, i: BigInt(value) }));
  const file = path.join(tempDir(), `${name}.onnx`);
  saveModel(m, file);
  return file;
}

describe('the standard ONNX Attention op (opset 23)', function () {
  this.timeout(300_000);

  it('is a layout of its own: Q/K/V projections, output projection, both head-count attributes', async () => {
    const st = await detectStructure(loadModel(fixture(FILE)));
    assert.deepEqual(st.layers.map((l) => [l.attention!.layout, l.attention!.heads, l.attention!.headSize, l.ffn?.width, l.ffn?.activation]), [['onnx-attention', 4, 16, 128, 'gelu'], ['onnx-attention', 4, 16, 128, 'gelu']]);
    assert.deepEqual(st.layers[0]!.attention!.unit!.sites!.map((a) => [a.attribute, a.value]), [['q_num_heads', 4], ['kv_num_heads', 4]]);
    assert.deepEqual(st.layers[0]!.attention!.projections.map((p) => p.node), ['/layers.0/attention/q/MatMul', '/layers.0/attention/k/MatMul', '/layers.0/attention/v/MatMul']);
  });

  it('prune 0.6 writes fewer heads with q_num_heads and kv_num_heads rewritten, verified against the masked original', () => {
    const j = pruneVerified(fixture(FILE));
    const kept = (j.plan.keep.heads as number[][]).map((h) => h.length);
    assert.ok(kept.some((k) => k < 4), `heads kept per layer ${kept}`);
    const pruned = loadModel(j.out).proto.graph!.node.filter((n) => n.opType === 'Attention');
    assert.deepEqual(pruned.map((n) => [attrInt(n, 'q_num_heads', 0), attrInt(n, 'kv_num_heads', 0)]), kept.filter((k) => k > 0).map((k) => [k, k]));
  });

  it('grouped-query heads and causal attention are refused in one line naming the node; nothing written', () => {
    for (const [file, what] of [[withAttr('kv_num_heads', 2), /Attention node "\/layers\.0\/attention\/Attention": grouped-query attention \(4 query heads sharing 2 key\/value heads\) is not supported yet/], [withAttr('is_causal', 1), /Attention node "\/layers\.0\/attention\/Attention" is causal attention/]] as const) {
      const out = path.join(path.dirname(file), 'p.onnx');
      const r = optin('prune', file, '--budget', '0.6', '--samples', '2', '--no-bench', '--out', out, '--json');
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, what);
      assert.ok(!fs.existsSync(out));
    }
  });
});
