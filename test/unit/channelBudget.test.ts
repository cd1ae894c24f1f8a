import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { runScoreJob } from '../../src/engine/worker/jobs';
import { affordableExamples, estimateChannelCost, MIN_CHANNEL_EXAMPLES } from '../../src/engine/channels/cost';
import { analyzeChannels } from '../../src/engine/channels/structure';
import { loadCalibration } from '../../src/engine/data/calibration';
import { loadModel } from '../../src/engine/onnx/model';
import { ROOT, fixture, optin, tempDir } from './helpers';

describe('channel scoring in auto mode fits a time budget by scoring fewer calibration examples', function () {
  this.timeout(300_000);
  const model = fixture('resnet-mnist/model-opset17.onnx');
  const MNIST = path.join(ROOT, 'test', 'fixtures', 'data', 'mnist', 'train');
  const job = (mode: 'auto' | 'exact', samples: number, timeBudget?: number) =>
    runScoreJob({ model, data: { data: MNIST, samples }, ep: 'cpu', mode, ...(timeBudget ? { timeBudget } : {}) }, () => undefined, new AbortController().signal);

  it('examples afforded: all when the estimate fits, else the most the budget allows, never below the minimum', () => {
    assert.equal(affordableExamples(32, (n) => (500 * n) / 32, 600), 32);
    assert.equal(affordableExamples(32, (n) => (900 * n) / 32, 600), 21, '900 n / 32 <= 600 up to n = 21.3');
    assert.equal(affordableExamples(32, (n) => 400 + 10 * n, 600), 20, 'a part that does not shrink with fewer examples (the Gram terms) is not scaled away: 32 x 600 / 720 would be 26');
    assert.equal(affordableExamples(32, () => 1e6, 600), MIN_CHANNEL_EXAMPLES);
    assert.equal(affordableExamples(3, () => 1e6, 600), 3, 'never more than given');
  });

  it('the estimate: per-example suffix runs plus Gram terms that stop growing once the examples hold 768 positions of every compared block output', async () => {
    const m = loadModel(model);
    const cs = await analyzeChannels(m);
    const batch = await loadCalibration(m.path, cs, { data: MNIST, samples: 8 });
    const est = await estimateChannelCost(m, cs, batch);
    assert.equal(est.seconds, est.secondsFor(8));
    // The ResNet's block outputs hold 784, 196 and 49 positions per digit: from 16 digits on every Gram term samples 768 rows.
    const step = (n: number): number => est.secondsFor(n + 1) - est.secondsFor(n);
    assert.ok(step(4) > step(20), `a step below 16 digits adds Gram rows too: ${step(4)} vs ${step(20)}`);
    for (const n of [16, 20, 40]) assert.ok(Math.abs(step(n) - step(20)) <= 1e-12 * est.secondsFor(41), `step at ${n}: ${step(n)} vs ${step(20)}`);
    assert.ok(est.secondsFor(16) - 16 * step(20) > 0, 'the Gram part stays when examples are taken away');
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
