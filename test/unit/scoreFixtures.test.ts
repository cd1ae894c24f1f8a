import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration, type DataOptions } from '../../src/engine/data/calibration';
import { scoreModel } from '../../src/engine/optin/scorer';
import { makePlan, modelRef, scoresFile } from '../../src/engine/plan/files';
import { FIXTURES, fixture } from './helpers';

const sst2 = path.join(FIXTURES, 'data', 'sst2', 'dev.tsv');
const CASES: Array<[string, DataOptions]> = [
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
  ['ort-fused-attention/bert-3d-attention-opt.onnx', { samples: 2 }],
  ['ort-fused-attention/pruned-attention-opt.onnx', { samples: 2 }],
];

describe('scoring and planning work on every supported fixture', () => {
  for (const [rel, data] of CASES) {
    it(rel, async () => {
      const model = loadModel(fixture(rel));
      const st = detectStructure(model);
      const batch = await loadCalibration(model.path, st, data);
      const s = await scoreModel(model, st, batch);
      st.layers.forEach((l, i) => {
        assert.equal(s.heads[i]!.length, l.attention.heads);
        assert.equal(s.neurons[i]!.length, l.ffn?.width ?? 0);
      });
      assert.ok([...s.heads.flat(), ...s.neurons.flat()].every((x) => Number.isFinite(x) && x >= 0), 'finite, non-negative scores');
      assert.ok(s.heads.flat().some((x) => x > 0), 'some head matters');
      const plan = makePlan(scoresFile(modelRef(model.path, 'x', st), s, batch.meanLength), 0.7);
      assert.ok(plan.macs.ratio <= 0.7 + 1e-9);
    });
  }
});
