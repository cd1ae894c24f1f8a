import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { fitRows, normalEquations } from '../../src/engine/repair/leastSquares';
import { normalEquationsOnRuntime } from '../../src/engine/repair/normalEquations';
import { FIXTURES, fixture, tempDir, optin } from './helpers';
import { RECONSTRUCTION_ROWS, affordableRows, matchMoments } from '../../src/engine/repair/channelRefit';
import { runScoreJob } from '../../src/engine/worker/jobs';
import { makePlan } from '../../src/engine/plan/files';
import { applyPlan } from '../../src/engine/prune/applyPlan';
import { evaluate } from '../../src/engine/eval/evaluate';


describe('least-squares refit (--refit)', function () {
  this.timeout(300_000);

  it('fitRows recovers an exact linear map with its bias, and rejects a fit that is not better', async () => {
    const W = [[2, -1], [0.5, 3], [1, 1]], b = [0.25, -2];
    const xs = Array.from({ length: 40 }, (_, r) => [Math.sin(r), Math.cos(3 * r), (r % 7) / 7]);
    const y = (r: number, o: number): number => xs[r]!.reduce((s, x, f) => s + x * W[f]![o]!, b[o]!);
    const fit = await fitRows({ rows: 40, features: 3, outputs: 2, bias: true, row: (r, out) => { xs[r]!.forEach((x, f) => { out[f] = x; }); }, y, w0: () => 0, b0: () => 0 });
    assert.equal(fit.rejected, undefined);
    for (let f = 0; f < 3; f++) for (let o = 0; o < 2; o++) assert.ok(Math.abs(fit.weights[f * 2 + o]! - W[f]![o]!) < 0.05, `W[${f}][${o}] = ${fit.weights[f * 2 + o]}`);
    assert.ok(Math.abs(fit.bias![1]! - b[1]!) < 0.05);
    assert.ok(fit.after < 1e-2 * fit.before);
    const exact = await fitRows({ rows: 40, features: 3, outputs: 2, bias: true, row: (r, out) => { xs[r]!.forEach((x, f) => { out[f] = x; }); }, y, w0: (f, o) => W[f]![o]!, b0: (o) => b[o]! });
    assert.equal(exact.rejected, 'no lower error', 'starting from the exact map nothing improves');
  });

  it('fewer rows than features: the dual solve gives the primal ridge solution (Gauss-Jordan on the normal equations here) and its error', async () => {
    const n = 5, F = 7, M = 2;
    const x = (r: number, f: number): number => Math.sin(1.7 * r + 0.9 * f) + 0.1 * f;
    const y = (r: number, o: number): number => Math.cos(r + 2 * o) * 3;
    const w0 = (f: number, o: number): number => 0.1 * (f - o), b0 = (o: number): number => 0.5 * o;
    const fit = await fitRows({ rows: n, features: F, outputs: M, bias: true, row: (r, out) => { for (let f = 0; f < F; f++) out[f] = x(r, f); }, y, w0, b0 });
    const K = F + 1;
    const xt = (r: number, f: number): number => (f === F ? 1 : x(r, f));
    const A = Array.from({ length: K }, (_, i) => Array.from({ length: K }, (_, j) => Array.from({ length: n }, (_, r) => xt(r, i) * xt(r, j)).reduce((a, b) => a + b, 0)));
    const lambda = 1e-3 * A.reduce((a, row, i) => a + row[i]!, 0) / K;
    const start = (f: number, o: number): number => (f === F ? b0(o) : w0(f, o));
    const aug = A.map((row, i) => [...row.map((v, j) => v + (i === j ? lambda : 0)), ...Array.from({ length: M }, (_, o) => Array.from({ length: n }, (_, r) => xt(r, i) * y(r, o)).reduce((a, b) => a + b, 0) + lambda * start(i, o))]);
    for (let c = 0; c < K; c++) {
      const piv = aug[c]![c]!;
      for (let j = 0; j < K + M; j++) aug[c]![j]! /= piv;
      for (let r = 0; r < K; r++) if (r !== c) { const m = aug[r]![c]!; for (let j = 0; j < K + M; j++) aug[r]![j]! -= m * aug[c]![j]!; }
    }
    // Two float64 solves of a system with condition number at most (trace + lambda) / lambda, each off by about 2K cond u relative.
    const cond = (A.reduce((a, row, i) => a + row[i]!, 0) + lambda) / lambda;
    const tol = 4 * K * cond * 2 ** -53;
    const scale = Math.max(...aug.map((row) => Math.max(...row.slice(K).map(Math.abs))));
    for (let f = 0; f < K; f++) for (let o = 0; o < M; o++) {
      const want = aug[f]![K + o]!, got = f === F ? fit.bias![o]! : fit.weights[f * M + o]!;
      assert.ok(Math.abs(got - want) <= tol * scale, `[${f}][${o}] ${got} vs ${want} (tolerance ${(tol * scale).toExponential(2)})`);
    }
    let after = 0;
    for (let r = 0; r < n; r++) for (let o = 0; o < M; o++) after += (y(r, o) - Array.from({ length: K }, (_, f) => xt(r, f) * aug[f]![K + o]!).reduce((a, b) => a + b, 0)) ** 2;
    assert.ok(Math.abs(fit.after - after) <= 4 * tol * Math.max(after, fit.before), `error ${fit.after} vs ${after}`);
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

describe('channel repair by output statistics', function () {
  this.timeout(900_000);

  it('matches every channel\'s mean and variance to the dense rows (exact in float64); a constant channel keeps its scale', () => {
    const cur = [[1, 10], [2, 10], [3, 10], [6, 10]];
    const dense = [[0, 4], [4, 5], [8, 6], [20, 7]];
    const m = matchMoments(4, 2, (r, o) => cur[r]![o]!, (r, o) => dense[r]![o]!);
    const moments = (xs: number[]): [number, number] => { const mu = xs.reduce((a, b) => a + b, 0) / xs.length; return [mu, xs.reduce((a, b) => a + (b - mu) ** 2, 0) / xs.length]; };
    const [mu, v] = moments(cur.map((r) => m.scale[0]! * r[0]! + m.shift[0]!));
    const [muD, vD] = moments(dense.map((r) => r[0]!));
    assert.ok(Math.abs(mu - muD) <= 1e-12 * Math.abs(muD) && Math.abs(v - vD) <= 1e-12 * vD, `${mu} ${v} vs ${muD} ${vD}`);
    assert.equal(m.scale[1], 1, 'no variance to match: scale 1');
    assert.equal(m.shift[1], 5.5 - 10, 'the mean still moves');
    assert.ok(m.after < m.before);
  });

  it('the normal equations summed by onnxruntime (float64 MatMul, in 70 chunks of 10 rows) equal the JavaScript sums within the float64 rounding of both', async () => {
    const n = 700, F = 9, M = 4;
    const x = (r: number, f: number): number => Math.sin(r * 0.37 + f * 1.3) * (1 + f) + (f === 2 ? 1e3 : 0);
    const p = { rows: n, features: F, outputs: M, bias: true, row: (r: number, out: Float64Array) => { for (let f = 0; f < F; f++) out[f] = x(r, f); }, y: (r: number, o: number) => Math.cos(r * 0.11 * (o + 1)) * 50, w0: () => 0, b0: () => 0 };
    const js = normalEquations(p), rt = await normalEquationsOnRuntime(p, 100);
    // Each entry is a sum of n products, summed in two orders: |difference| <= 2 gamma_n(float64) sum |products|.
    const g = (k: number): number => (k * 2 ** -53) / (1 - k * 2 ** -53);
    const abs = normalEquations({ ...p, row: (r, out) => { for (let f = 0; f < F; f++) out[f] = Math.abs(x(r, f)); }, y: (r, o) => Math.abs(p.y(r, o)) });
    js.A.forEach((a, i) => assert.ok(Math.abs(a - rt.A[i]!) <= 2 * g(n) * abs.A[i]!, `A[${i}]: ${a} vs ${rt.A[i]}`));
    js.B.forEach((b, i) => assert.ok(Math.abs(b - rt.B[i]!) <= 2 * g(n) * abs.B[i]!, `B[${i}]: ${b} vs ${rt.B[i]}`));
    assert.equal(rt.yy, js.yy, 'y^T y is summed in the same order');
    assert.equal(rt.A.length, (F + 1) ** 2);
  });

  it('which repair a consumer gets: least squares (the dual form below F rows), statistics when the primal solve does not fit', () => {
    assert.equal(affordableRows(32, 5328, 256), 32, 'DeepLabV3\'s ASPP 3x3 on 2 images of 64x64: 32 rows, the dual solve');
    assert.equal(affordableRows(3136, 1152, 128), 3136, 'the MNIST ResNet\'s last stage on 64 digits: all rows, primal');
    assert.equal(affordableRows(16384, 2304, 256), 16384, 'a 2,304-feature consumer (256 x 3x3) on 16,384 rows: primal, every row');
    assert.equal(affordableRows(16384, 8640, 256), 0, 'an 8,640-feature consumer with more rows than features: statistics');
    assert.ok(RECONSTRUCTION_ROWS === 16384);
  });

  it('the statistics repair through apply (the MNIST ResNet at 0.5): every consumer re-estimated, the model verifies and keeps most of its agreement', async () => {
    const model = fixture('resnet-mnist/model-opset17.onnx');
    const data = { data: path.join(FIXTURES, 'data', 'mnist', 'train'), samples: 32 };
    const scores = await runScoreJob({ model, data, ep: 'cpu', mode: 'exact', ranking: 'l1' }, () => undefined, new AbortController().signal);
    const out = path.join(tempDir(), 'p.onnx');
    const r = await applyPlan({ model, plan: makePlan(scores, 0.5), data, out, channelRepair: 'statistics' });
    assert.ok(r.reconstruction!.length === 6 && r.reconstruction!.every((s) => s.method === 'statistics' && !s.rejected && s.after < s.before), JSON.stringify(r.reconstruction));
    assert.ok(r.verification.maxAbsDiff <= r.verification.tolerance);
    const raw = path.join(tempDir(), 'raw.onnx');
    await applyPlan({ model, plan: makePlan(scores, 0.5), data, out: raw, tune: false });
    const test = { data: path.join(FIXTURES, 'data', 'mnist', 'test') };
    const [stats, none] = [await evaluate(out, { data: test, reference: model }), await evaluate(raw, { data: test, reference: model })];
    assert.ok(stats.accuracy! > none.accuracy! + 0.2, `statistics ${stats.accuracy} vs no repair ${none.accuracy}`);
  });
});
