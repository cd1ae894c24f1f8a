import * as assert from 'node:assert/strict';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { ffnFrontier, instrument, neuronMaskName } from '../../src/engine/optin/instrument';
import { fixture } from './helpers';

/** The value a residual Add makes of `a` and another operand. */
function addOf(g: NonNullable<ReturnType<typeof loadModel>['proto']['graph']>, a: string): string {
  const n = g.node.find((x) => x.opType === 'Add' && x.input.includes(a));
  assert.ok(n, `an Add reads ${a}`);
  return n.output[0]!;
}

describe('neuron suffixes start at the FFN activations', () => {
  it('post-LN BERT: what a neuron suffix needs from before is the attention block\'s LayerNorm output, per layer', () => {
    const model = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const st = detectStructure(model);
    for (const l of st.layers) assert.deepEqual(ffnFrontier(model.proto.graph!, l), [l.norm1!.output], `layer ${l.index}`);
  });

  it('pre-LN Llama decoder (SwiGLU): the residual stream after attention, not the gate or up projection', () => {
    const model = loadModel(fixture('llama-sst2/model.onnx'));
    const st = detectStructure(model);
    for (const l of st.layers) assert.deepEqual(ffnFrontier(model.proto.graph!, l), [addOf(model.proto.graph!, l.attention.output.output)], `layer ${l.index}`);
  });

  it('onnxruntime-fused BERT: the SkipLayerNormalization after attention', () => {
    const model = loadModel(fixture('ort-bert-toy/model.ort-fused.onnx'));
    const st = detectStructure(model);
    for (const l of st.layers) assert.deepEqual(ffnFrontier(model.proto.graph!, l), [l.norm1!.output], `layer ${l.index}`);
  });

  it('the suffix graph holds none of the layer\'s attention or first FFN matrix; its inputs are the activations, that value and the neuron mask', () => {
    const model = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const st = detectStructure(model);
    const l = st.layers[1]!;
    const from = new Map(ffnFrontier(model.proto.graph!, l).map((v) => [v, 3]));
    const sub = instrument(model, st, { maskLayers: [1], outputs: [st.outputs[0]!, st.layers[2]!.feature], cutAt: 1, fromActivations: from, onlyOutputs: true }).graph!;
    const made = new Set(sub.node.flatMap((n) => n.output));
    for (const v of [l.attention.output.output, l.ffn!.up.output, l.norm1!.output, l.ffn!.hidden]) assert.ok(!made.has(v), `${v} is not recomputed`);
    assert.ok(made.has(l.ffn!.down.output), 'the second FFN matrix runs');
    const inputs = sub.input.map((i) => i.name);
    assert.ok(inputs.includes(l.ffn!.hidden) && inputs.includes(l.norm1!.output) && inputs.includes(neuronMaskName(1)), inputs.join(', '));
    assert.ok(!inputs.includes(l.input), 'the layer input is not needed');
  });
});
