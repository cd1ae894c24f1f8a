import * as assert from 'node:assert/strict';
import { headMacs, neuronMacs, modelMacs } from '../../src/engine/flops';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadModel } from '../../src/engine/onnx/model';
import { fixture } from './helpers';

describe('MAC model (docs/method.md §3)', () => {
  it('BERT-base head and neuron at s=128', () => {
    // 3*s*D*d + 2*s^2*d + s*d*D with s=128, D=768, d=64
    assert.equal(headMacs(128, 768, 64), 3 * 128 * 768 * 64 + 2 * 128 * 128 * 64 + 128 * 64 * 768);
    assert.equal(headMacs(128, 768, 64), 27_262_976);
    assert.equal(neuronMacs(128, 768), 196_608);
  });

  it('uneven Q/K and V head sizes count each projection at its width', () => {
    assert.equal(headMacs(10, 16, 12, 8), 10 * 16 * (24 + 8) + 100 * (12 + 8) + 10 * 8 * 16);
  });

  it('totals the SST-2 BERT exactly: 4 layers x (8 heads + 1024 neurons)', async () => {
    const s = await detectStructure(loadModel(fixture('bert-sst2/model-opset17.onnx')));
    const m = modelMacs(s, 12);
    const perLayer = 8 * (3 * 12 * 256 * 32 + 2 * 144 * 32 + 12 * 32 * 256) + 1024 * 2 * 12 * 256;
    assert.equal(m.seqLen, 12);
    assert.equal(m.layers.length, 4);
    for (const l of m.layers) assert.equal(l.total, perLayer);
    assert.equal(m.total, 4 * perLayer);
  });

  it('ViT tokens come from the graph: 16 patches + 1 class token', async () => {
    const s = await detectStructure(loadModel(fixture('vit-digits/model-opset17.onnx')));
    assert.equal(s.visionTokens, 17);
  });
});
