import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import type { ModelStructure } from '../../src/engine/structure/types';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { bucketBatch, bucketRows, lengthBuckets, planBuckets } from '../../src/engine/optin/buckets';
import { runTeacher } from '../../src/engine/optin/teacher';
import { FIXTURES, fixture } from './helpers';

/** Smallest padded-token cost over every split of the sorted lengths into at most k runs, by enumeration. */
function bruteForce(lengths: number[], k: number, perBucket: number): number {
  const s = [...lengths].sort((a, b) => a - b);
  let best = Infinity;
  const go = (i: number, left: number, cost: number): void => {
    if (i === s.length) { best = Math.min(best, cost); return; }
    if (left === 0) return;
    for (let j = i + 1; j <= s.length; j++) go(j, left - 1, cost + (j - i) * s[j - 1]! + perBucket);
  };
  go(0, k, 0);
  return best;
}

describe('length buckets', () => {
  it('the split is the cheapest of all splits into at most k buckets (checked by enumeration), and covers every example once', () => {
    let seed = 7;
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    for (let trial = 0; trial < 40; trial++) {
      const lengths = Array.from({ length: 1 + Math.floor(rnd() * 9) }, () => 1 + Math.floor(rnd() * 30));
      const k = 1 + (trial % 4);
      const per = trial % 3 === 0 ? 0 : 10;
      const b = lengthBuckets(lengths, k, per);
      const cost = b.reduce((a, x) => a + x.examples.length * x.seqLen + per, 0);
      assert.equal(cost, bruteForce(lengths, k, per), `lengths ${lengths.join(' ')}, k ${k}`);
      assert.ok(b.length <= k);
      assert.deepEqual(b.flatMap((x) => x.examples).sort((p, q) => p - q), lengths.map((_, i) => i));
      for (const x of b) for (const e of x.examples) assert.ok(lengths[e]! <= x.seqLen);
    }
  });

  it('sampled rows map to the same example and position inside their bucket, bucket by bucket', async () => {
    const S = 10;
    const buckets = [{ examples: [1, 3], seqLen: 4 }, { examples: [0, 2], seqLen: 10 }];
    const rows = [2 * S + 7, 1 * S + 0, 3 * S + 3, 0 * S + 9, 1 * S + 2];
    const { local, order } = bucketRows(rows, S, buckets);
    assert.deepEqual(local, [[0 * 4 + 0, 1 * 4 + 3, 0 * 4 + 2], [1 * 10 + 7, 0 * 10 + 9]]);
    assert.deepEqual(order, [1 * S + 0, 3 * S + 3, 1 * S + 2, 2 * S + 7, 0 * S + 9]);
  });

  describe('on the SST-2 BERT with sentences of different lengths', () => {
    const model = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    let st: ModelStructure;
    before(async () => { st = await detectStructure(model); });
    const data = { data: path.join(FIXTURES, 'data', 'sst2', 'train.tsv'), samples: 8 };

    it('a bucket\'s batch holds its examples\' tokens cut to the bucket length; each bucket\'s dense run is checked equal at real tokens', async () => {
      const batch = await loadCalibration(model.path, st, data);
      const plan = await planBuckets(model, st, batch, await runTeacher(model, st, batch), 'cpu');
      assert.ok(plan.runs, `bucketed: ${plan.runs ? '' : plan.reason}`);
      assert.ok(plan.runs.length > 1 && plan.bucketed < plan.padded);
      const ids = batch.feeds.input_ids!;
      for (const r of plan.runs) {
        const b = bucketBatch(batch, r.bucket);
        assert.deepEqual(b.feeds.input_ids!.dims, [r.bucket.examples.length, r.bucket.seqLen]);
        r.bucket.examples.forEach((e, j) => {
          for (let p = 0; p < r.bucket.seqLen; p++) assert.equal(b.feeds.input_ids!.data[j * r.bucket.seqLen + p], ids.data[e * batch.seqLen + p]);
          for (let p = r.bucket.seqLen; p < batch.seqLen; p++) assert.equal(batch.tokenMask[e * batch.seqLen + p], 0, 'only padding is cut');
        });
      }
    });

    it('a batch whose real tokens see the padding (attention mask all ones) stays one padded block', async () => {
      const batch = await loadCalibration(model.path, st, data);
      const m = batch.feeds.attention_mask!;
      const open = { ...batch, feeds: { ...batch.feeds, attention_mask: { ...m, data: (m.data as BigInt64Array).map(() => 1n) } } };
      const plan = await planBuckets(model, st, open, await runTeacher(model, st, open), 'cpu');
      assert.equal(plan.runs, undefined);
      assert.equal(plan.runs ? '' : plan.reason, 'real tokens change with the padding');
    });
  });
});
