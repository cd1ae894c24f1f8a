import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { fitRows } from '../../src/engine/repair/leastSquares';
import { FIXTURES, fixture, tempDir, optin } from './helpers';


describe('least-squares refit (--refit)', function () {
  this.timeout(300_000);

  it('fitRows recovers an exact linear map with its bias, and rejects a fit that is not better', () => {
    const W = [[2, -1], [0.5, 3], [1, 1]], b = [0.25, -2];
    const xs = Array.from({ length: 40 }, (_, r) => [Math.sin(r), Math.cos(3 * r), (r % 7) / 7]);
    const y = (r: number, o: number): number => xs[r]!.reduce((s, x, f) => s + x * W[f]![o]!, b[o]!);
    const fit = fitRows({ rows: 40, features: 3, outputs: 2, bias: true, row: (r, out) => { xs[r]!.forEach((x, f) => { out[f] = x; }); }, y, w0: () => 0, b0: () => 0 });
    assert.equal(fit.rejected, undefined);
    for (let f = 0; f < 3; f++) for (let o = 0; o < 2; o++) assert.ok(Math.abs(fit.weights[f * 2 + o]! - W[f]![o]!) < 0.05, `W[${f}][${o}] = ${fit.weights[f * 2 + o]}`);
    assert.ok(Math.abs(fit.bias![1]! - b[1]!) < 0.05);
    assert.ok(fit.after < 1e-2 * fit.before);
    const exact = fitRows({ rows: 40, features: 3, outputs: 2, bias: true, row: (r, out) => { xs[r]!.forEach((x, f) => { out[f] = x; }); }, y, w0: (f, o) => W[f]![o]!, b0: (o) => b[o]! });
    assert.equal(exact.rejected, 'no lower error', 'starting from the exact map nothing improves');
  });

  it('the digits ViT at 0.4: every pruned sublayer is refitted with a lower reconstruction error; the model verifies; --tune and --refit exclude each other', () => {
    const dir = tempDir();
    const data = path.join(FIXTURES, 'data', 'digits', 'train');
    const r = optin('prune', fixture('vit-digits/model-opset17.onnx'), '--budget', '0.4', '--ranking', 'magnitude', '--refit', '--data', data, '--samples', '32', '--no-bench', '--out', path.join(dir, 'p.onnx'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout).apply;
    assert.ok(a.refit.length >= 4, `${a.refit.length} sublayers`);
    for (const s of a.refit) assert.ok(s.rejected || s.after < s.before, JSON.stringify(s));
    assert.ok(a.refit.some((s: { rejected?: string }) => !s.rejected));
    assert.ok(a.verification.maxAbsDiff <= a.verification.tolerance);
    const both = optin('prune', fixture('vit-digits/model-opset17.onnx'), '--budget', '0.4', '--ranking', 'magnitude', '--refit', '--tune', '--data', data, '--samples', '8', '--no-bench', '--out', path.join(dir, 'q.onnx'));
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--tune \(mask scales\) and --refit \(least-squares weights\) are alternatives/);
  });
});
