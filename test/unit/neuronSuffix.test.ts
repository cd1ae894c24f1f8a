import * as assert from 'node:assert/strict';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { ffnFrontier, instrument, neuronMaskName } from '../../src/engine/optin/instrument';
import { rankOneStart, withoutNeuron } from '../../src/engine/optin/rankOne';
import { tensorFloat32 } from '../../src/engine/onnx/tensor';
import { fixture } from './helpers';

/** The value a residual Add makes of `a` and another operand. */
function addOf(g: NonNullable<ReturnType<typeof loadModel>['proto']['graph']>, a: string): string {
  const n = g.node.find((x) => x.opType === 'Add' && x.input.includes(a));
  assert.ok(n, `an Add reads ${a}`);
  return n.output[0]!;
}

describe('neuron suffixes start at the FFN activations', () => {
  it('post-LN BERT: what a neuron suffix needs from before is the attention block\'s LayerNorm output, per layer', async () => {
    const model = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const st = await detectStructure(model);
    for (const l of st.layers) assert.deepEqual(ffnFrontier(model.proto.graph!, l), [l.norm1!.output], `layer ${l.index}`);
  });

  it('pre-LN Llama decoder (SwiGLU): the residual stream after attention, not the gate or up projection', async () => {
    const model = loadModel(fixture('llama-sst2/model.onnx'));
    const st = await detectStructure(model);
    for (const l of st.layers) assert.deepEqual(ffnFrontier(model.proto.graph!, l), [addOf(model.proto.graph!, l.attention!.output.output)], `layer ${l.index}`);
  });

  it('onnxruntime-fused BERT: the SkipLayerNormalization after attention', async () => {
    const model = loadModel(fixture('ort-bert-toy/model.ort-fused.onnx'));
    const st = await detectStructure(model);
    for (const l of st.layers) assert.deepEqual(ffnFrontier(model.proto.graph!, l), [l.norm1!.output], `layer ${l.index}`);
  });

  it('the suffix graph holds none of the layer\'s attention or first FFN matrix; its inputs are the activations, that value and the neuron mask', async () => {
    const model = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const st = await detectStructure(model);
    const l = st.layers[1]!;
    const from = new Map(ffnFrontier(model.proto.graph!, l).map((v) => [v, 3]));
    const sub = instrument(model, st, { maskLayers: [1], outputs: [st.outputs[0]!, st.layers[2]!.feature], cutAt: 1, neuronFrom: { start: l.ffn!.hidden, rank: 3, values: from }, onlyOutputs: true }).graph!;
    const made = new Set(sub.node.flatMap((n) => n.output));
    for (const v of [l.attention!.output.output, l.ffn!.up.output, l.norm1!.output, l.ffn!.hidden]) assert.ok(!made.has(v), `${v} is not recomputed`);
    assert.ok(made.has(l.ffn!.down.output), 'the second FFN matrix runs');
    const inputs = sub.input.map((i) => i.name);
    assert.ok(inputs.includes(l.ffn!.hidden) && inputs.includes(l.norm1!.output) && inputs.includes(neuronMaskName(1)), inputs.join(', '));
    assert.ok(!inputs.includes(l.input), 'the layer input is not needed');
  });

  it('rank-1 start: the suffix begins after the second FFN matrix; its inputs are that product and the residual, no mask, no FFN matrix', async () => {
    const model = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const st = await detectStructure(model);
    const l = st.layers[1]!;
    const r1 = rankOneStart(model, l);
    assert.ok(r1, 'BERT\'s FFN output MatMul reads the activations alone');
    assert.deepEqual([r1.width, r1.out], [1024, 256]);
    assert.deepEqual(ffnFrontier(model.proto.graph!, l, r1.value), [l.norm1!.output]);
    const sub = instrument(model, st, { maskLayers: [1], outputs: [st.layers[2]!.feature], cutAt: 1, neuronFrom: { start: r1.value, rank: 3, values: new Map([[l.norm1!.output, 3]]) }, onlyOutputs: true }).graph!;
    assert.deepEqual(sub.input.map((i) => i.name).sort(), [r1.value, l.norm1!.output, 'attention_mask'].sort(), 'the product, the residual, and the mask the next layer\'s attention reads');
    assert.ok(!sub.node.some((n) => n.opType === 'MatMul' && n.input.includes(l.ffn!.down.weight)), 'the second matrix is not run');
  });

  it('rank-1 start: row j of the weight times activation j is what masking neuron j removes from the product', async () => {
    const model = loadModel(fixture('llama-sst2/model.onnx'));
    const st = await detectStructure(model);
    const l = st.layers[0]!;
    const r1 = rankOneStart(model, l)!;
    const w = tensorFloat32(model.proto.graph!.initializer.find((t) => t.name === l.ffn!.down.weight)!);
    const I = r1.width, D = r1.out, rows = 3;
    const act = Float32Array.from({ length: rows * I }, (_, i) => Math.sin(i));
    const dense = new Float32Array(rows * D);
    for (let r = 0; r < rows; r++) for (let i = 0; i < I; i++) for (let d = 0; d < D; d++) dense[r * D + d]! += act[r * I + i]! * w[i * D + d]!;
    const j = 17;
    const out = new Float32Array(rows * D);
    withoutNeuron(dense, act, r1.row(j), j, I, out, 0);
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < D; d++) {
        let s = 0, bound = 0;
        for (let i = 0; i < I; i++) if (i !== j) { s += act[r * I + i]! * w[i * D + d]!; bound += Math.abs(act[r * I + i]! * w[i * D + d]!); }
        // float32 sums of I products, each rounding at most 2^-24 of the running magnitude, twice (dense and the difference)
        assert.ok(Math.abs(out[r * D + d]! - s) <= 2 * (I + 2) * 2 ** -24 * (bound + Math.abs(act[r * I + j]! * w[j * D + d]!)), `row ${r} column ${d}`);
      }
    }
  });

  it('rank-1 start: none where the activations have a second reader (the product is then not the only thing a neuron changes)', async () => {
    const model = loadModel(fixture('llama-sst2/model.onnx'));
    const st = await detectStructure(model);
    const l = st.layers[0]!;
    const g = model.proto.graph!;
    const extra = { ...g.node.find((n) => n.opType === 'Identity') ?? g.node[0]!, opType: 'Identity', input: [l.ffn!.hidden], output: ['extra_reader'], name: 'extra_reader', attribute: [] };
    g.node.push(extra as (typeof g.node)[number]);
    try {
      assert.equal(rankOneStart(model, l), undefined);
    } finally {
      g.node.pop();
    }
  });
});
