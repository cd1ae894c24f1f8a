import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { loadModel, type OnnxModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { NodeProtoSchema, AttributeProtoSchema, AttributeType } from '../../src/engine/onnx/schema';
import { scoredOutput } from '../../src/engine/graph/scoredOutput';
import { analyzeChannels } from '../../src/engine/channels/structure';
import { scoreChannels } from '../../src/engine/channels/scorer';
import { detectStructure } from '../../src/engine/structure/detect';
import { scoreModel } from '../../src/engine/optin/scorer';
import { loadCalibration } from '../../src/engine/data/calibration';
import { FIXTURES, ROOT, fixture, tempDir } from './helpers';

/** A copy of `file` whose first output is the softmax (over `axis`) of the original one, as Keras and tf2onnx classifiers end. */
function withSoftmax(file: string, axis?: number, identity = false): string {
  const m = loadModel(file);
  const g = m.proto.graph!;
  const out = g.output[0]!;
  const logits = `${out.name}_logits`;
  for (const n of g.node) n.output.forEach((o, i) => { if (o === out.name) n.output[i] = logits; });
  const attribute = axis === undefined ? [] : [create(AttributeProtoSchema, { name: 'axis', type: AttributeType.INT, i: BigInt(axis) })];
  const probs = identity ? `${out.name}_probabilities` : out.name;
  g.node.push(create(NodeProtoSchema, { opType: 'Softmax', name: 'probabilities', input: [logits], output: [probs], attribute }));
  if (identity) g.node.push(create(NodeProtoSchema, { opType: 'Identity', name: 'output', input: [probs], output: [out.name] }));
  const dir = tempDir();
  const dest = path.join(dir, `softmax-${path.basename(file)}`);
  saveModel(m, dest);
  const pre = path.join(path.dirname(file), 'preprocessor_config.json');
  if (fs.existsSync(pre)) fs.copyFileSync(pre, path.join(dir, 'preprocessor_config.json'));
  return dest;
}

function sameScores(a: number[][], b: number[][], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((row, l) => row.forEach((x, i) => assert.equal(b[l]![i], x, `${what} ${l}.${i}`)));
}

describe('classifiers that end in Softmax: scores compare the logits, not the probabilities', function () {
  this.timeout(300_000);
  const NHWC = fixture('tf2onnx-style-nhwc-cnn/model.onnx');
  const MNIST = path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train');

  it('the scored value is the input of a final Softmax over the last axis (through Identity), else the output itself', () => {
    const last = loadModel(withSoftmax(NHWC, undefined, true));
    assert.equal(scoredOutput(last.proto, last.proto.graph!.output[0]!.name), `${last.proto.graph!.output[0]!.name}_logits`);
    const first = loadModel(withSoftmax(NHWC, 0));
    assert.equal(scoredOutput(first.proto, first.proto.graph!.output[0]!.name), first.proto.graph!.output[0]!.name);
    const plain = loadModel(NHWC);
    assert.equal(scoredOutput(plain.proto, plain.proto.graph!.output[0]!.name), plain.proto.graph!.output[0]!.name);
  });

  const scoresOf = async (model: OnnxModel): Promise<{ md: number[][]; kl: number[][]; scores: number[][] }> => {
    const cs = await analyzeChannels(model);
    const batch = await loadCalibration(model.path, cs, { data: MNIST, samples: 6 });
    const s = await scoreChannels(model, cs, batch);
    return { md: s.raw.neurons.map((r) => r.md), kl: s.raw.neurons.map((r) => r.kl), scores: s.neurons };
  };

  it('channel groups: a CNN with a Softmax appended gets the very scores of the CNN without it', async () => {
    const plain = await scoresOf(loadModel(NHWC));
    const soft = await scoresOf(loadModel(withSoftmax(NHWC)));
    assert.ok(plain.kl.flat().some((x) => x > 0), 'the output term is measured');
    sameScores(plain.kl, soft.kl, 'KL of channel');
    sameScores(plain.md, soft.md, 'manifold term of channel');
    sameScores(plain.scores, soft.scores, 'score of channel');
  });

  it('heads and neurons: a ViT with a Softmax appended gets the very scores of the ViT without it', async () => {
    const data = { data: path.join(FIXTURES, 'data', 'digits', 'test'), samples: 6 };
    const run = async (file: string) => {
      const model = loadModel(file);
      const st = await detectStructure(model);
      return scoreModel(model, st, await loadCalibration(model.path, st, data));
    };
    const file = fixture('vit-digits/model-opset17.onnx');
    const [plain, soft] = [await run(file), await run(withSoftmax(file))];
    sameScores(plain.raw.heads.map((r) => r.kl), soft.raw.heads.map((r) => r.kl), 'KL of head');
    sameScores(plain.heads, soft.heads, 'score of head');
    sameScores(plain.neurons, soft.neurons, 'score of neuron');
  });
});
