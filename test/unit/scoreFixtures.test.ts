import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration, type DataOptions } from '../../src/engine/data/calibration';
import { scoreModel } from '../../src/engine/optin/scorer';
import { makePlan, modelRef, scoresFile } from '../../src/engine/plan/files';
import { FIXTURES, fixture } from './helpers';
import { weightOf, withWeights, zeroInputs } from './weightEdits';

const sst2 = path.join(FIXTURES, 'data', 'sst2', 'dev.tsv');
const CASES: Array<[string, DataOptions, { noOrdering?: boolean }?]> = [
  ['bert-sst2/model-opset17.onnx', { data: sst2, samples: 2 }],
  ['optimum-tiny-distilbert-sst2/model.onnx', { data: sst2, samples: 3, tokenizer: path.dirname(fixture('bert-sst2/model-opset17.onnx')) }],
  ['optimum-tiny-distilbert-sst2/model.ort-fused.onnx', { data: sst2, samples: 3, tokenizer: path.dirname(fixture('bert-sst2/model-opset17.onnx')) }],
  ['ort-bert-toy/model.onnx', { samples: 2 }],
  ['ort-bert-toy/model.ort-fused.onnx', { samples: 2 }],
  ['keras2onnx-tfbert-mrpc/model.onnx', { samples: 2 }],
  ['keras2onnx-tfbert-mrpc/model.ort-fused.onnx', { samples: 2 }],
  ['torch-bert-like-random/model-opset14.onnx', { samples: 2 }],
  ['torch-bert-like-random/model-opset17.ort-fused.onnx', { samples: 2 }],
  ['vit-digits/model-opset14.onnx', { data: path.join(FIXTURES, 'data', 'digits', 'test'), samples: 3 }],
  ['ort-fused-attention/attention-opt.onnx', { samples: 2 }],
  ['ort-fused-attention/attention-mha.onnx', { samples: 2 }],
  ['ort-fused-attention/attention-varied-qkv-opt.onnx', { samples: 2 }],
  // Skeleton whose heads all score 4.5e-10 (float noise) unedited: its attention does not reach the output measurably.
  ['ort-fused-attention/bert-3d-attention-opt.onnx', { samples: 2 }, { noOrdering: true }],
  ['ort-fused-attention/pruned-attention-opt.onnx', { samples: 2 }],
  ['onnx-attention-random/model-opset23.onnx', { samples: 2 }],
];

describe('scoring and planning work on every supported fixture; an element removed from the weights scores lowest', () => {
  for (const [rel, data, flags] of CASES) {
    it(rel, async () => {
      const original = loadModel(fixture(rel));
      const st = await detectStructure(original);
      // A head and a neuron of the middle layer whose contribution is exactly zero (their output
      // projection rows are zeroed in a copy): masking them changes nothing, so each must score
      // below every other element of its kind in that layer. Shuffled or random scores fail this.
      const l = Math.floor(st.layers.length / 2);
      const layer = st.layers[l]!;
      const head = 1 % layer.attention!.heads;
      const neuron = 2 % (layer.ffn?.width ?? 1);
      const out = weightOf(original, layer.attention!.output);
      const edits = [{ name: out.name, data: zeroInputs(out, layer.attention!.output, head * layer.attention!.vHeadSize, (head + 1) * layer.attention!.vHeadSize) }];
      if (layer.ffn) {
        const down = weightOf(original, layer.ffn.down);
        edits.push({ name: down.name, data: zeroInputs(down, layer.ffn.down, neuron, neuron + 1) });
      }
      const model = withWeights(original, edits);
      const batch = await loadCalibration(model.path, st, data);
      const s = await scoreModel(model, st, batch);
      st.layers.forEach((ly, i) => {
        assert.equal(s.heads[i]!.length, ly.attention!.heads);
        assert.equal(s.neurons[i]!.length, ly.ffn?.width ?? 0);
      });
      assert.ok([...s.heads.flat(), ...s.neurons.flat()].every((x) => Number.isFinite(x) && x >= 0), 'finite, non-negative scores');
      const lowest = (row: number[], i: number, what: string): void => {
        row.forEach((x, j) => { if (j !== i) assert.ok(row[i]! < x, `${what} ${i} of layer ${l} (removed) scores ${row[i]}, not below ${what} ${j} (${x})`); });
      };
      if (layer.attention!.heads > 1 && !flags?.noOrdering) lowest(s.heads[l]!, head, 'head');
      if (layer.ffn && !flags?.noOrdering) lowest(s.neurons[l]!, neuron, 'neuron');
      const plan = makePlan(scoresFile(modelRef(model.path, 'x', st), s, batch.meanLength), 0.7);
      assert.ok(plan.macs.ratio <= 0.7 + 1e-9);
    });
  }
});
