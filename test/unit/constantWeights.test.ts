import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { loadModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { AttributeProtoSchema, AttributeType, NodeProtoSchema } from '../../src/engine/onnx/schema';
import { inspectModel } from '../../src/engine/inspect';
import { fixture, optin, sha256, tempDir } from './helpers';

const BERT = fixture('torch-bert-like-random/model-opset17.onnx');

/** The model with every initializer moved into a Constant node, as older paddle2onnx writes weights. */
function withConstantWeights(file: string, out: string): void {
  const m = loadModel(file);
  const g = m.proto.graph!;
  const names = new Set(g.initializer.map((t) => t.name));
  const consts = g.initializer.map((t) => create(NodeProtoSchema, {
    opType: 'Constant', name: `${t.name}.const`, output: [t.name],
    attribute: [create(AttributeProtoSchema, { name: 'value', type: AttributeType.TENSOR, t })],
  }));
  g.initializer = [];
  g.input = g.input.filter((i) => !names.has(i.name));
  g.node = [...consts, ...g.node];
  saveModel(m, out);
}

describe('weights held in Constant nodes (paddle2onnx style) on a transformer', function () {
  this.timeout(300_000);

  it('count as parameters, score exactly as the initializer form, and are sliced and verified at 0.6', async () => {
    const dir = tempDir();
    const model = path.join(dir, 'model.onnx');
    withConstantWeights(BERT, model);
    assert.equal(loadModel(model).proto.graph!.initializer.length, 0);
    assert.equal((await inspectModel(model)).parameters, (await inspectModel(BERT)).parameters);

    const scores = (file: string, out: string): { heads: number[][]; neurons: number[][] } => {
      const r = optin('score', file, '--samples', '2', '--out', out, '--quiet');
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(fs.readFileSync(out, 'utf8'));
      return { heads: j.heads, neurons: j.neurons };
    };
    // The same graph computing the same sums: the scores are bitwise equal.
    assert.deepEqual(scores(model, path.join(dir, 'c.json')), scores(BERT, path.join(dir, 'i.json')));

    const before = sha256(model);
    const p = optin('prune', model, '--budget', '0.6', '--samples', '2', '--no-bench', '--out', path.join(dir, 'p.onnx'), '--json');
    assert.equal(p.code, 0, p.stderr);
    const j = JSON.parse(p.stdout);
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    assert.equal(j.apply.macs.after, j.plan.macs.kept);
    assert.ok(j.apply.parameters.after < j.apply.parameters.before);
    assert.equal(sha256(model), before);
  });
});
