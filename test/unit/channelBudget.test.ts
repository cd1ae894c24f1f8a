import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { runScoreJob } from '../../src/engine/worker/jobs';
import { affordableExamples, MIN_CHANNEL_EXAMPLES } from '../../src/engine/channels/cost';
import { ROOT, fixture, optin, tempDir } from './helpers';

describe('channel scoring in auto mode fits a time budget by scoring fewer calibration examples', function () {
  this.timeout(300_000);
  const model = fixture('resnet-mnist/model-opset17.onnx');
  const MNIST = path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train');
  const job = (mode: 'auto' | 'exact', samples: number, timeBudget?: number) =>
    runScoreJob({ model, data: { data: MNIST, samples }, ep: 'cpu', mode, ...(timeBudget ? { timeBudget } : {}) }, () => undefined, new AbortController().signal);

  it('examples afforded: all when the estimate fits, else the share the budget allows, never below the minimum', () => {
    assert.equal(affordableExamples(32, 500, 600), 32);
    assert.equal(affordableExamples(32, 900, 600), 21, '32 x 600 / 900 = 21.3');
    assert.equal(affordableExamples(32, 1e6, 600), MIN_CHANNEL_EXAMPLES);
    assert.equal(affordableExamples(3, 1e6, 600), 3, 'never more than given');
  });

  it('a budget nothing fits: exact scores on the first 4 of 8 examples, the very scores of --samples 4, and the report says so', async () => {
    const cut = await job('auto', 8, 1e-6);
    const four = await job('exact', 4);
    assert.equal(cut.calibration.examples, 4);
    assert.equal(cut.calibration.of, 8);
    assert.match(cut.modeReason!, /^--mode auto: exact on 4 of the 8 calibration examples to fit the 0 s budget \(all 8: estimated [\d.]+ (s|min); --mode exact scores on all\)$/);
    assert.deepEqual(cut.neurons, four.neurons);
    const roomy = await job('auto', 8, 3600);
    assert.equal(roomy.calibration.examples, 8);
    assert.equal(roomy.calibration.of, undefined);
    assert.match(roomy.modeReason!, /^--mode auto: exact on all 8 examples \(estimated [\d.]+ (s|min), within the 60\.0 min budget\)$/);

    const r = optin('prune', model, '--budget', '0.6', '--data', MNIST, '--samples', '8', '--mode', 'auto', '--time-budget', '0.00001', '--no-bench', '--no-compare', '--out', path.join(tempDir(), 'p.onnx'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /OPTIN exact scores from 4 calibration examples/);
    assert.match(r.stdout, /^note {8}scores --mode auto: exact on 4 of the 8 calibration examples to fit the 0 s budget/m);
  });
});
