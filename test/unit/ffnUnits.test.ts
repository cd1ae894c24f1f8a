import * as assert from 'node:assert/strict';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { analyzeChannels } from '../../src/engine/channels/structure';
import { materialize } from '../fixtures/materialize';
import { fixture } from './helpers';

/**
 * One mechanism for neurons (docs/units.md): detection finds feed-forward blocks with the channel
 * propagation in its units mode (the transformer cutter cuts them); the same propagation as the
 * channel analysis runs it (cut mode, as for CNNs and hybrids) finds each of them as one group: its
 * first matrix (and the gate of a SwiGLU) the producers, its second matrix the only consumer, the
 * same width.
 */
describe('feed-forward neurons: detection and the channel analysis find the same groups', function () {
  this.timeout(300_000);
  const cases: Array<[string, string]> = [
    ['BERT (torch, Add + Erf GELU)', 'bert-sst2/model-opset17.onnx'],
    ['DeiT, onnxruntime-fused (BiasGelu)', 'deit-random/model-opset17.ort-fused.onnx'],
    ['BERT-like, onnxruntime-fused (BiasGelu)', 'torch-bert-like-random/model-opset17.ort-fused.onnx'],
    ['modern encoder, onnxruntime-fused (QuickGelu)', 'modern-encoder-random/model-opset17.ort-fused.onnx'],
    ['DistilBERT by optimum, onnxruntime-fused (Gelu)', 'optimum-tiny-distilbert-sst2/model.ort-fused.onnx'],
    ['Llama-style decoder (SwiGLU: gate and up)', 'llama-sst2/model.onnx'],
    ['the same with onnxruntime GroupQueryAttention', 'llama-sst2/model.ort-gqa.onnx'],
    ['Swin + FPN segmentation (torchvision Swin stages)', 'swin-fpn-scenes/model-opset17.onnx'],
    ['GPT-2-style (tanh GELU: x + 0.044715 x^3 sums the channels with themselves)', 'gpt2-style-random/model.onnx'],
  ];
  const check = async (file: string): Promise<number> => {
    const m = loadModel(file);
    const st = await detectStructure(m);
    const cs = await analyzeChannels(m);
    let n = 0;
    for (const [i, l] of st.layers.entries()) {
      const f = l.ffn;
      if (!f) continue;
      const want = [f.up.node, ...(f.gate ? [f.gate.node] : [])].sort();
      const found = cs.groups.filter((g) => g.producers.some((p) => want.includes(p)));
      assert.equal(found.length, 1, `layer ${i}: ${found.length} groups start at ${want.join(', ')}`);
      const g = found[0]!;
      assert.deepEqual([...g.producers].sort(), want, `layer ${i} producers`);
      assert.deepEqual(g.consumers, [f.down.node], `layer ${i} consumers`);
      assert.equal(g.width, f.width, `layer ${i} width`);
      n++;
    }
    return n;
  };
  for (const [name, rel] of cases) {
    it(name, async () => {
      assert.ok((await check(fixture(rel))) > 0, 'the fixture has feed-forward blocks');
    });
  }
  it('keras2onnx\'s BERT: detection finds its FFNs through the Reshapes with run-time shapes; the channel analysis (which would have to rewrite them) refuses them, said so', async () => {
    const m = loadModel(fixture('keras2onnx-tfbert-mrpc/model.onnx'));
    const st = await detectStructure(m);
    const cs = await analyzeChannels(m);
    const up = st.layers[0]!.ffn!.up.node;
    assert.ok(!cs.groups.some((g) => g.producers.includes(up)));
    assert.equal(cs.refused.find((r) => r.start === up)?.reason, 'Reshape with a run-time shape carries the channel count');
  });

  it('torchaudio Conformer (half-step FFNs, analysed batch-first)', async () => {
    assert.equal(await check(materialize(fixture('torchaudio-conformer/model.skeleton.onnx'))), 4);
  });
});
