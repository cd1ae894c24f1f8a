import * as assert from 'node:assert/strict';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { scoreModel } from '../../src/engine/optin/scorer';
import type { ScoreProgress } from '../../src/engine/optin/types';
import { fixture } from './helpers';

describe('scoring progress', () => {
  it('each layer\'s head row is reported as soon as its heads are scored, before its neurons, with the final values; the ETA counts down to 0', async () => {
    const model = loadModel(fixture('torch-bert-like-random/model-opset17.onnx'));
    const st = await detectStructure(model);
    const batch = await loadCalibration(model.path, st, { samples: 2 });
    const events: ScoreProgress[] = [];
    const s = await scoreModel(model, st, batch, { chunkTokens: 64, onProgress: (p) => events.push(p) });
    for (let l = 0; l < st.layers.length; l++) {
      const rows = events.filter((e) => e.partial?.layer === l);
      assert.equal(rows.length, 2, `layer ${l}: a head row, then the whole layer`);
      assert.equal(rows[0]!.partial!.neurons, undefined);
      assert.ok(rows[0]!.done < rows[1]!.done, 'heads first');
      assert.deepEqual(rows[0]!.partial!.heads, s.heads[l]);
      assert.deepEqual(rows[1]!.partial!.neurons, s.neurons[l]);
    }
    const etas = events.filter((e) => e.eta !== undefined).map((e) => e.eta!);
    assert.ok(etas.length > 2);
    assert.equal(etas[etas.length - 1], 0);
  });
});
