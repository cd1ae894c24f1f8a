import * as assert from 'node:assert/strict';
import { INITIAL, reduce, type State } from '../../webview/state';
import { contrast, importanceColor, parseColor, scalePosition, viridis } from '../../webview/colors';
import type { DataInfo, HostMessage, ModelSummary, PlanView } from '../../src/shared/protocol';
import { formatBudget, formatEta } from '../../src/shared/format';

const summary = { fileName: 'm.onnx', layers: [{ heads: 2, ffn: 4 }, { heads: 2, ffn: 4 }] } as unknown as ModelSummary;
const data: DataInfo = { source: 'train.tsv', examples: 8, mode: 'exact', provider: 'cpu', seconds: 3 };
const plan = (budget: number): PlanView => ({ budget, keepHeads: [[0], [1]], keepNeurons: [[0, 1], [2]], macs: { seqLen: 8, baseline: 100, kept: 100 * budget }, parameters: { before: 10, after: 6 }, warnings: [] });
const run = (...ms: HostMessage[]): State => ms.reduce(reduce, INITIAL);
const scored: HostMessage[] = [
  { type: 'summary', summary }, { type: 'phase', phase: 'scoring' },
  { type: 'layerScores', layer: 0, heads: [1, 3], neurons: [1, 2, 3, 4] },
  { type: 'scores', scores: { heads: [[1, 3], [0.5, 0.1]], neurons: [[1, 2, 3, 4], [1, 1, 1, 1]] }, data },
  { type: 'plan', plan: plan(0.6) }, { type: 'phase', phase: 'scored' },
];

describe('panel state machine (webview)', () => {
  it('analysing -> idle -> scoring -> scored, with the data the scores came from', () => {
    assert.equal(run().phase, 'analysing');
    assert.equal(run({ type: 'summary', summary }).phase, 'idle');
    const s = run(...scored);
    assert.equal(s.phase, 'scored');
    assert.deepEqual(s.data, data);
    assert.equal(s.plan!.budget, 0.6);
  });

  it('cancel during the first scoring returns to "cancelled" with no half-filled heatmap; a cancel of a re-score keeps the old scores', () => {
    const first = run({ type: 'summary', summary }, { type: 'phase', phase: 'scoring' }, { type: 'layerScores', layer: 0, heads: [1, 2], neurons: [1, 2, 3, 4] }, { type: 'phase', phase: 'cancelled', message: 'Scoring cancelled' });
    assert.equal(first.phase, 'cancelled');
    assert.deepEqual(first.heads, []);
    assert.equal(first.progress, undefined);
    const again = run(...scored, { type: 'phase', phase: 'scoring' }, { type: 'progress', done: 3, total: 20, eta: 40 }, { type: 'phase', phase: 'cancelled' },
      { type: 'scores', scores: { heads: [[1, 3], [0.5, 0.1]], neurons: [[1, 2, 3, 4], [1, 1, 1, 1]] }, data }, { type: 'plan', plan: plan(0.6) });
    assert.equal(again.phase, 'cancelled', 'the host re-sends the old scores; the panel stays cancelled (Score again)');
    assert.deepEqual(again.data, data);
    assert.equal(again.progress, undefined);
  });

  it('a sweep (applying) ends in scored with the frontier; a new scoring run clears it; the plan moves independently', () => {
    const frontier = {
      metric: 'accuracy' as const, examples: 28, source: 'train.tsv', heldOut: true, dense: { value: 0.8, medianMs: 10, p10Ms: 9, p90Ms: 11 },
      points: [{ budget: 0.7, macsRatio: 0.7, value: 0.79, speedup: 1.4, medianMs: 7, p10Ms: 6.5, p90Ms: 7.5, output: 'm.optin-70.onnx' }],
      bench: { shape: 'batch 8 x 64 tokens', runs: 10, threads: 2, provider: 'cpu' }, files: { folder: '/m.optin-sweep', count: 1, bytes: 1000 },
    };
    const swept = run(...scored, { type: 'phase', phase: 'applying', message: 'Sweeping' }, { type: 'frontier', frontier });
    assert.equal(swept.phase, 'scored');
    assert.equal(swept.message, undefined);
    assert.deepEqual(swept.frontier, frontier);
    const moved = reduce(swept, { type: 'plan', plan: plan(0.7) });
    assert.deepEqual(moved.frontier, frontier, 'selecting a point keeps the plot');
    assert.equal(reduce(moved, { type: 'phase', phase: 'scoring' }).frontier, undefined);
  });

  it('failed keeps the message; applying -> applied; moving the plan clears the applied result', () => {
    assert.equal(run(...scored, { type: 'phase', phase: 'failed', message: 'bad data' }).message, 'bad data');
    const applied = { output: '/m.optin-60.onnx', budget: 0.6, maxAbsDiff: 1e-7, tolerance: 1e-4, idealSpeedup: 1.6, fileBytes: { before: 2, after: 1 }, tuned: false };
    const a = run(...scored, { type: 'phase', phase: 'applying' }, { type: 'applied', result: applied });
    assert.equal(a.phase, 'applied');
    assert.equal(reduce(a, { type: 'plan', plan: plan(0.6) }).applied, a.applied, 'the same plan keeps the result');
    const moved = reduce(a, { type: 'plan', plan: plan(0.5) });
    assert.equal(moved.applied, undefined);
    assert.equal(moved.phase, 'scored');
  });

  it('the colour scale is fixed by the first layer to arrive and does not move when later layers or the final scores come', () => {
    const s1 = run({ type: 'summary', summary }, { type: 'phase', phase: 'scoring' }, { type: 'layerScores', layer: 0, heads: [1, 3], neurons: [1, 2, 3, 4] });
    const s2 = reduce(s1, { type: 'layerScores', layer: 1, heads: [100, 200], neurons: [50, 60, 70, 80] });
    const s3 = reduce(s2, { type: 'scores', scores: { heads: [[1, 3], [100, 200]], neurons: [[1, 2, 3, 4], [50, 60, 70, 80]] }, data });
    assert.deepEqual(s1.anchor, { heads: 3, neurons: 3 });
    assert.deepEqual(s2.anchor, s1.anchor);
    assert.deepEqual(s3.anchor, s1.anchor);
    assert.deepEqual(reduce(s3, { type: 'phase', phase: 'scoring' }).anchor, undefined, 'a new run starts a new scale');
  });
});

describe('heatmap colours', () => {
  const themes: Array<[string, string]> = [['Light Modern', '#ffffff'], ['Dark Modern', '#1f1f1f'], ['Dark High Contrast', '#000000'], ['Light High Contrast', '#ffffff']];
  for (const [name, bg] of themes) {
    it(`${name}: the most important end contrasts with the background and with the least important end (>= 3:1)`, () => {
      const b = parseColor(bg)!;
      const hi = parseColor(importanceColor(1, b))!, lo = parseColor(importanceColor(0, b))!;
      assert.ok(contrast(hi, b) >= 3, `important vs background ${contrast(hi, b).toFixed(2)}`);
      assert.ok(contrast(hi, lo) >= 3, `important vs unimportant ${contrast(hi, lo).toFixed(2)}`);
      assert.ok(contrast(hi, b) > contrast(lo, b), 'importance runs towards the salient end');
    });
  }

  it('maps scores on a log scale around the anchor, clamped', () => {
    assert.equal(scalePosition(1, 1), 3 / 4.5);
    assert.equal(scalePosition(1e-9, 1), 0);
    assert.equal(scalePosition(1e9, 1), 1);
    assert.equal(scalePosition(0, 1), 0);
    assert.deepEqual(viridis(0), [68, 1, 84]);
    assert.deepEqual(viridis(1), [253, 231, 37]);
  });

  it('one wording for budgets and time left', () => {
    assert.equal(formatBudget(0.6), 'keep 60% of MACs');
    assert.equal(formatEta(984), 'about 16 min left');
    assert.equal(formatEta(40.2), 'about 40 s left');
    assert.equal(formatEta(undefined), '');
  });
});
