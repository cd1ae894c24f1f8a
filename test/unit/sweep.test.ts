import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, fixture, sha256, tempDir, optin } from './helpers';

const VIT = fixture('vit-digits/model-opset17.onnx');
const TRAIN = path.join(FIXTURES, 'data', 'digits', 'train');
const TEST = path.join(FIXTURES, 'data', 'digits', 'test');


describe('optin sweep (the speed/accuracy frontier)', function () {
  this.timeout(300_000);

  it('scores once, then writes, verifies, evaluates and times every budget; JSON, CSV and table agree', () => {
    const dir = tempDir();
    const before = sha256(VIT);
    const csv = path.join(dir, 'f.csv');
    const r = optin('sweep', VIT, '--budgets', '0.5,0.8', '--samples', '8', '--data', TRAIN, '--eval', TEST, '--out-dir', dir, '--csv', csv, '--bench-runs', '5');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => /^scoring heads and neurons/.test(l)).length, 1, 'one scoring run');
    const j = JSON.parse(fs.readFileSync(path.join(dir, 'frontier.json'), 'utf8'));
    assert.deepEqual(j.points.map((p: { target: number }) => p.target), [0.8, 0.5], 'targets from the largest down');
    assert.equal(j.evaluation.labelled, true);
    assert.equal(j.evaluation.examples, 360);
    assert.ok(j.dense.accuracy > 0.9, `dense accuracy ${j.dense.accuracy}`);
    for (const p of j.points) {
      assert.ok(Math.abs(p.macsRatio - p.target) < 0.03, `MACs kept ${p.macsRatio} vs budget ${p.target}`);
      assert.ok(p.maxAbsDiff <= p.tolerance, `verification ${p.maxAbsDiff} > ${p.tolerance}`);
      assert.deepEqual(p.files, [p.output], 'the files written: the model alone (no external data at this size)');
      assert.ok(p.accuracy >= 0 && p.accuracy <= 1 && p.agreement > 0 && p.agreement <= 1);
      assert.ok(p.p10Ms <= p.medianMs && p.medianMs <= p.p90Ms);
      assert.ok(Math.abs(p.speedup - j.dense.medianMs / p.medianMs) < 1e-9);
      assert.ok(fs.existsSync(p.output) && path.dirname(p.output) === dir);
    }
    const lines = fs.readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /^target,macs_ratio,params_ratio,accuracy,miou,agreement,median_ms/);
    assert.match(lines[1]!, /^dense,1,1,0\.9\d*,,1,/);
    assert.match(lines[2]!, /^0\.8,0\.8\d*|^0\.8,0\.7\d*/);
    assert.match(r.stdout, /accuracy on 360 examples of test/);
    assert.match(r.stdout, /timed at batch 32 images of 8x8 on cpu \(\d+ threads\), 5 interleaved runs per model after warm-up; medians \(p10-p90\)/);
    assert.match(r.stdout, /^0\.5\s+\d+\.\d%\s+\d+\.\d\d%\s+[\d.]+ \([\d.]+-[\d.]+\)\s+[\d.]+x$/m);
    // A budget that lost more than 5 points of accuracy is said so in words under the table; the others are not.
    for (const p of j.points) {
      const lost = 100 * (j.dense.accuracy - p.accuracy);
      const said = r.stdout.includes(`warning at ${p.target}: the pruned model lost ${lost.toFixed(1)} points of accuracy`);
      assert.equal(said, lost > 5, `${p.target}: lost ${lost.toFixed(2)} points; said ${said}`);
      assert.equal(!!p.warning, lost > 5);
    }
    assert.equal(sha256(VIT), before, 'the original is untouched');
  });

  it('a segmentation model (the hybrid Swin + FPN) is swept by mean IoU, with pixel accuracy beside it, in the table, the CSV and the panel', async () => {
    const dir = tempDir();
    const scenes = path.join(FIXTURES, 'data', 'mnist-scenes');
    const csv = path.join(dir, 'f.csv');
    const r = optin('sweep', fixture('swin-fpn-scenes/model-opset17.onnx'), '--budgets', '0.6', '--samples', '4', '--data', path.join(scenes, 'train'), '--eval', path.join(scenes, 'test'), '--out-dir', dir, '--csv', csv, '--bench-runs', '3');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(fs.readFileSync(path.join(dir, 'frontier.json'), 'utf8'));
    assert.ok(Math.abs(j.dense.miou - 0.3281) < 0.001, `dense mIoU ${j.dense.miou}`);
    assert.ok(j.points[0].miou > 0.1 && j.points[0].miou < j.dense.miou + 0.02);
    assert.match(r.stdout, /mIoU on 200 examples of test/);
    assert.match(r.stdout, /^dense\s+100%\s+32\.81%\s+91\.21%\s/m);
    assert.match(fs.readFileSync(csv, 'utf8').split('\n')[1]!, /^dense,1,1,0\.912\d*,0\.328\d*,1,/);
    const { frontierView } = await import('../../src/extension/views');
    const f = frontierView(j);
    assert.equal(f.metric, 'mIoU');
    assert.equal(f.dense.value, j.dense.miou);
    assert.equal(f.points[0]!.value, j.points[0].miou);
  });

  it('without --eval measures on the test split beside the calibration data (train/ -> test/)', () => {
    const dir = tempDir();
    const r = optin('sweep', VIT, '--budgets', '0.6', '--samples', '8', '--data', TRAIN, '--out-dir', dir, '--bench-runs', '3', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.evaluation.heldOut, true);
    assert.equal(j.evaluation.data, path.join(path.dirname(TRAIN), 'test'));
    assert.equal(j.evaluation.examples, 360);
  });

  it('without --eval and without a test split, measures on the held-out rest of the calibration data', () => {
    const dir = tempDir();
    const images = path.join(tempDir(), 'my-digits');
    for (const c of fs.readdirSync(TRAIN).sort().slice(0, 3)) {
      fs.mkdirSync(path.join(images, c), { recursive: true });
      for (const f of fs.readdirSync(path.join(TRAIN, c)).sort().slice(0, 4)) fs.copyFileSync(path.join(TRAIN, c, f), path.join(images, c, f));
    }
    const r = optin('sweep', VIT, '--budgets', '0.6', '--samples', '8', '--data', images, '--out-dir', dir, '--bench-runs', '3', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.evaluation.heldOut, true);
    assert.equal(j.evaluation.data, images);
    assert.equal(j.evaluation.examples, 4, '12 images, 8 used for calibration');
  });

  it('a CNN sweep is repaired by default and measures the L1-norm baseline with the same repair at every budget, in the table and the CSV', () => {
    const dir = tempDir();
    const csv = path.join(tempDir(), 'f.csv');
    const mnist = path.join(FIXTURES, 'data', 'mnist');
    const r = optin('sweep', path.join(FIXTURES, 'models', 'resnet-mnist', 'model-opset17.onnx'), '--budgets', '0.6,0.4', '--samples', '16', '--data', path.join(mnist, 'train'), '--eval', path.join(mnist, 'test'), '--out-dir', dir, '--bench-runs', '3', '--csv', csv);
    assert.equal(r.code, 0, r.stderr);
    const header = r.stdout.split('\n').find((l) => l.startsWith('budget'))!;
    assert.match(header, /accuracy +L1 \+ same repair: accuracy +median ms/);
    const rows = r.stdout.split('\n').filter((l) => /^0\.[64] /.test(l));
    assert.equal(rows.length, 2);
    for (const row of rows) assert.match(row, /^0\.[64] +\d+\.\d% +\d+\.\d\d% +\d+\.\d\d% /);
    const lines = fs.readFileSync(csv, 'utf8').trim().split('\n');
    assert.match(lines[0]!, /,l1_accuracy,l1_miou,l1_agreement$/);
    assert.ok(lines.slice(2).every((l) => /,0\.\d+,,0\.\d+$/.test(l)), lines.join('\n'));
    assert.doesNotMatch(r.stdout, /warning at/, 'repaired: no budget lost 5 points');
  });

  it('refuses unclear targets in one line, creating nothing', () => {
    const dir = path.join(tempDir(), 'never');
    for (const [args, re] of [
      [['--budgets', '0.5', '--latency', '0.5'], /give --budgets .* or --latency .*, one of them/],
      [['--budgets', '0.5,1.5'], /--budgets "0\.5,1\.5": every value must be in \(0, 1\]/],
      [[], /give --budgets .* or --latency/],
    ] as Array<[string[], RegExp]>) {
      const r = optin('sweep', VIT, ...args, '--data', TRAIN, '--out-dir', dir);
      assert.equal(r.code, 2);
      assert.match(r.stderr.trim(), re);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    assert.equal(fs.existsSync(dir), false);
  });
});
