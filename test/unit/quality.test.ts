import * as assert from 'node:assert/strict';
import { qualityWarning, QUALITY_DROP_POINTS } from '../../src/engine/eval/quality';
import type { EvalReport } from '../../src/engine/eval/evaluate';

const report = (e: Partial<EvalReport>): EvalReport => ({ model: 'p.onnx', data: 'test', examples: 100, ...e } as EvalReport);
const channels = { channels: true, repaired: false };
const heads = { channels: false, repaired: false };

describe('a much worse pruned model is said so in words', () => {
  it(`accuracy: more than ${QUALITY_DROP_POINTS} points lost -> one sentence with the numbers; exactly ${QUALITY_DROP_POINTS} or fewer -> nothing`, () => {
    assert.equal(qualityWarning(report({ accuracy: 0.2056, reference: { model: 'm', accuracy: 0.9896, agreement: 0.2066 } }), channels),
      'the pruned model lost 78.4 points of accuracy (99.0% -> 20.6%) on 100 examples; channel groups were cut without a repair: turn it on (--tune), or keep more MACs');
    assert.equal(qualityWarning(report({ accuracy: 0.90, reference: { model: 'm', accuracy: 0.95, agreement: 0.9 } }), heads), undefined);
    assert.match(qualityWarning(report({ accuracy: 0.80, reference: { model: 'm', accuracy: 0.95, agreement: 0.9 } }), heads)!, /lost 15\.0 points of accuracy .*; keep more MACs \(a larger budget\), or turn on the repair \(--tune\)$/);
    assert.match(qualityWarning(report({ accuracy: 0.80, reference: { model: 'm', accuracy: 0.95, agreement: 0.9 } }), { channels: true, repaired: true, repair: 'the optin.maskTuning setting' })!, /; keep more MACs \(a larger budget\)$/);
    assert.match(qualityWarning(report({ accuracy: 0.80, reference: { model: 'm', accuracy: 0.95, agreement: 0.9 } }), { ...channels, repair: 'the optin.maskTuning setting' })!, /without a repair: turn it on \(the optin\.maskTuning setting\), or keep more MACs$/);
  });

  it('segmentation: mIoU; unlabelled: agreement with the original; no evaluation: nothing', () => {
    assert.match(qualityWarning(report({ segmentation: { miou: 0.3, pixelAccuracy: 0.8, pixels: 10 }, reference: { model: 'm', agreement: 0.9, segmentation: { miou: 0.5, pixelAccuracy: 0.9 } } }), channels)!,
      /^the pruned model lost 20\.0 points of mIoU \(50\.0% -> 30\.0%\) on 100 examples/);
    assert.match(qualityWarning(report({ reference: { model: 'm', agreement: 0.9 } }), heads)!, /^the pruned model predicts what the original predicts on only 90\.0% of 100 examples; keep more MACs/);
    assert.equal(qualityWarning(report({ reference: { model: 'm', agreement: 0.97 } }), heads), undefined);
    assert.equal(qualityWarning(undefined, heads), undefined);
  });
});
