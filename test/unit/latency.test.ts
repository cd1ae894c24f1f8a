import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { measureLatencyTable, widthGrid } from '../../src/engine/latency/measure';
import { calibration, interpolate, predictMs, type LatencyTable } from '../../src/engine/latency/table';
import { searchUnderCost } from '../../src/engine/plan/search';
import { latencyCosts } from '../../src/engine/latency/table';
import { makeLatencyPlan, readScores } from '../../src/engine/plan/files';
import { defaultOutput } from '../../src/engine/prune/output';
import { ROOT, expectOptinError, fixture, sha256, tempDir } from './helpers';
import { materialize } from '../fixtures/materialize';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const TINY = fixture('torch-bert-like-random/model-opset17.onnx');

function optin(env: NodeJS.ProcessEnv, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A hand-made table: 2 layers of 4 heads / 8 neurons, convex-ish curves, known anchors. */
function table(): LatencyTable {
  const heads = { kept: [0, 1, 2, 3, 4], ms: [1, 1.5, 1.8, 2.4, 2.6] };
  const neurons = { kept: [0, 1, 2, 4, 6, 8], ms: [0.5, 0.9, 1.0, 1.6, 2.0, 2.6] };
  return {
    schema: 'optin-latency', version: 1, model: { path: 'm.onnx', sha256: 'abc' }, provider: 'cpu', batch: 1, seqLen: 8, threads: 0, runs: 15,
    denseMs: 10, floor: { heads: [1, 0], neurons: [0, 0], ms: 4 },
    layers: [{ heads, neurons, measuredOn: 0 }, { heads, neurons, measuredOn: 0 }], created: '',
  };
}

describe('latency targets', function () {
  this.timeout(300_000);

  it('interpolates a curve piecewise-linearly and never lets keeping more cost less', () => {
    const c = { kept: [0, 2, 4], ms: [1, 3, 2.5] };
    assert.equal(interpolate(c, 0), 1);
    assert.equal(interpolate(c, 1), 2);
    assert.equal(interpolate(c, 3), 3, 'a noisy dip after 2 is flattened to the running maximum');
    assert.equal(interpolate(c, 9), 3);
    assert.deepEqual(widthGrid(8), [0, 1, 2, 4, 6, 8]);
    assert.deepEqual(widthGrid(3), [0, 1, 2, 3]);
    assert.deepEqual(widthGrid(1024), [0, 128, 256, 512, 768, 1024]);
  });

  it('anchors the prediction at the measured dense model and the measured smallest plan', () => {
    const t = table();
    assert.ok(Math.abs(predictMs(t, [4, 4], [8, 8]) - 10) < 1e-9);
    assert.ok(Math.abs(predictMs(t, [1, 0], [0, 0]) - 4) < 1e-9);
    const { scale, fixedMs } = calibration(t);
    // raw prunable = 2 * (1.6 + 2.1) = 7.4; raw floor = 0.5; scale = (10 - 4) / (7.4 - 0.5)
    assert.ok(Math.abs(scale - 6 / 6.9) < 1e-12);
    assert.ok(Math.abs(fixedMs - (4 - scale * 0.5)) < 1e-12);
  });

  it('searches under the latency capacity with non-linear per-layer costs', () => {
    const t = table();
    const geo = [{ heads: 4, headSize: 8, vHeadSize: 8, ffn: 8 }, { heads: 4, headSize: 8, vHeadSize: 8, ffn: 8 }];
    const heads = [[4, 3, 2, 1], [8, 7, 6, 5]];
    const neurons = [[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]].map((r) => r.map((x) => x / 10));
    const costs = latencyCosts(t);
    const { fixedMs } = calibration(t);
    for (const target of [0.9, 0.7, 0.5]) {
      const r = searchUnderCost(geo, heads, neurons, costs, () => target * t.denseMs - fixedMs)!;
      const count = (m: boolean[][]): number[] => m.map((row) => row.filter(Boolean).length);
      const p = predictMs(t, count(r.heads), count(r.neurons));
      assert.ok(p <= target * t.denseMs + 1e-9, `target ${target}: predicted ${p} ms > ${target * t.denseMs}`);
      assert.ok(Math.abs(p - (fixedMs + r.kept)) < 1e-9, 'kept cost is the prediction without the fixed part');
    }
    assert.equal(searchUnderCost(geo, heads, neurons, costs, () => 0.01), undefined, 'not even one head fits');
  });

  it('measures a table on the model itself: floor, dense and per-width times, layers of one geometry share a measurement', async () => {
    const model = loadModel(TINY);
    const st = await detectStructure(model);
    const steps: string[] = [];
    const t = await measureLatencyTable(model, st, { batch: 2, seqLen: 8, runs: 3, onStep: (s) => steps.push(s) });
    assert.equal(t.layers.length, st.layers.length);
    assert.equal(t.seqLen, 8);
    assert.equal(t.batch, 2);
    assert.equal(t.model.sha256, sha256(TINY));
    assert.ok(t.denseMs > 0 && t.floor.ms > 0);
    st.layers.forEach((l, i) => {
      assert.deepEqual(t.layers[i]!.heads.kept, widthGrid(l.attention!.heads));
      assert.deepEqual(t.layers[i]!.neurons.kept, widthGrid(l.ffn!.width));
      assert.ok([...t.layers[i]!.heads.ms, ...t.layers[i]!.neurons.ms].every((x) => x > 0 && Number.isFinite(x)));
      assert.equal(t.layers[i]!.measuredOn, 0);
    });
    assert.ok(steps.some((s) => /timing \d+ graphs interleaved, 3 runs each/.test(s)), steps.join('; '));
  });

  it('refuses a table of another model and a target the fixed part alone exceeds', async () => {
    const dir = tempDir();
    const env = { OPTIN_CACHE_DIR: dir };
    const scores = path.join(dir, 's.json');
    assert.equal(optin(env, 'score', TINY, '--samples', '2', '--out', scores, '--quiet').code, 0);
    const s = readScores(scores);
    const other = { ...table(), layers: s.model.layers.map(() => table().layers[0]!) };
    await expectOptinError(() => makeLatencyPlan(s, other, 0.5), 'data', /latency table was measured on m\.onnx \(sha256 abc\), not on the scored model/);
    const mine = { ...other, model: { path: TINY, sha256: s.model.sha256 }, floor: { heads: [1, 0], neurons: [0, 0], ms: 9.5 } };
    await expectOptinError(() => makeLatencyPlan(s, mine, 0.5), 'usage', /latency target 0\.5 \(5\.00 ms\) is out of reach: what pruning cannot remove .* takes [\d.]+ ms of the dense 10\.00 ms on cpu \(batch 1 x 8\), leaving no room for even one attention head/);
  });

  it('optin latency caches the table; plan --latency and prune --latency predict and measure', () => {
    const dir = tempDir();
    const env = { OPTIN_CACHE_DIR: path.join(dir, 'cache') };
    const tableFile = path.join(dir, 't.json');
    const first = optin(env, 'latency', TINY, '--batch', '2', '--seq-len', '8', '--out', tableFile, '--json');
    assert.equal(first.code, 0, first.stderr);
    const j1 = JSON.parse(first.stdout);
    assert.equal(j1.cached, false);
    assert.ok(fs.existsSync(j1.file) && j1.file.startsWith(env.OPTIN_CACHE_DIR));
    const again = JSON.parse(optin(env, 'latency', TINY, '--batch', '2', '--seq-len', '8', '--json').stdout);
    assert.equal(again.cached, true);
    assert.equal(again.table.denseMs, j1.table.denseMs);
    const text = optin(env, 'latency', TINY, '--batch', '2', '--seq-len', '8');
    assert.match(text.stdout, /^cpu, batch 2 x 8 tokens, \d+ interleaved runs per graph; dense model [\d.]+ ms median/);
    assert.match(text.stdout, /read from the cache/);
    // Timings of a model this small are mostly fixed cost; make the cached table's numbers
    // deterministic (same model, same shape) so the plan below depends on the scores, not on noise.
    const controlled: LatencyTable = {
      ...j1.table, denseMs: 10, floor: { ...j1.table.floor, ms: 1 },
      layers: j1.table.layers.map((l: LatencyTable['layers'][number]) => ({
        ...l, heads: { kept: l.heads.kept, ms: l.heads.kept.map((k) => 1 + k) }, neurons: { kept: l.neurons.kept, ms: l.neurons.kept.map((k) => 1 + k / 8) },
      })),
    };
    fs.writeFileSync(j1.file, JSON.stringify(controlled));
    fs.writeFileSync(tableFile, JSON.stringify(controlled));

    const scores = path.join(dir, 's.json');
    assert.equal(optin(env, 'score', TINY, '--samples', '2', '--out', scores, '--quiet').code, 0);
    const plan = optin(env, 'plan', scores, '--latency', '0.6', '--table', tableFile, '--out', path.join(dir, 'p.json'), '--json');
    assert.equal(plan.code, 0, plan.stderr);
    const pj = JSON.parse(plan.stdout);
    assert.equal(pj.latency.target, 0.6);
    assert.ok(pj.latency.predictedMs <= 0.6 * pj.latency.denseMs + 1e-9, JSON.stringify(pj.latency));
    assert.ok(pj.budget > 0 && pj.budget < 1 && Math.abs(pj.budget - pj.macs.ratio) < 1e-12, 'budget is the MAC share the latency plan keeps');
    assert.match(optin(env, 'plan', scores, '--latency', '0.6', '--out', path.join(dir, 'q.json')).stderr, /--latency needs --table table\.json/);
    assert.match(optin(env, 'plan', scores, '--latency', '0.6', '--budget', '0.5', '--table', tableFile, '--out', path.join(dir, 'q.json')).stderr, /give --budget .* or --latency .*, not both/);
    assert.match(optin(env, 'plan', scores, '--latency', '1.5', '--table', tableFile, '--out', path.join(dir, 'q.json')).stderr, /--latency 1\.5 is outside \(0, 1\]/);

    const out = path.join(dir, 'pruned.onnx');
    const prune = optin(env, 'prune', TINY, '--latency', '0.6', '--samples', '2', '--bench-batch', '2', '--bench-seq-len', '8', '--bench-runs', '3', '--out', out, '--json');
    assert.equal(prune.code, 0, prune.stderr);
    const r = JSON.parse(prune.stdout);
    assert.equal(r.apply.output, out);
    assert.equal(defaultOutput(TINY, 0.6, 'latency'), path.join(path.dirname(TINY), 'model-opset17.optin-latency-60.onnx'));
    assert.equal(r.latency.target, 0.6);
    assert.ok(r.latency.predictedRatio <= 0.6 + 1e-9);
    assert.ok(r.latency.measuredRatio > 0 && Number.isFinite(r.latency.measuredRatio));
    assert.equal(r.latency.measuredDenseMs, r.bench.models[0].medianMs);
    assert.equal(r.latency.tableDenseMs, 10, 'prune used the cached table');
    assert.equal(r.latency.cached, true);
    assert.equal(r.bench.batch, 2);
    assert.equal(r.plan.latency.batch, 2);
  });

  it('a decoder exported with its cache gets a decode-step table (each variant fed its own smaller cache); prune --latency --decode predicts and measures decode steps; a model without a cache is refused in one line', async () => {
    const file = materialize(fixture('llama-sst2/model-with-past.skeleton.onnx'));
    const model = loadModel(file);
    const st = await detectStructure(model);
    const t = await measureLatencyTable(model, st, { batch: 2, seqLen: 8, runs: 3, decode: true });
    assert.equal(t.phase, 'decode');
    assert.equal(t.seqLen, 8, 'the context length');
    st.layers.forEach((l, i) => {
      assert.deepEqual(t.layers[i]!.heads.kept, [0, 1, 2], 'key/value groups');
      assert.deepEqual(t.layers[i]!.neurons.kept, widthGrid(l.ffn!.width));
      assert.ok([...t.layers[i]!.heads.ms, ...t.layers[i]!.neurons.ms].every((x) => x > 0 && Number.isFinite(x)));
    });
    assert.ok(t.denseMs > 0 && t.floor.ms > 0);
    await expectOptinError(() => measureLatencyTable(model, st, { batch: 1, seqLen: 128, runs: 1, decode: true }), 'runtime', /one decode step after a cache of 128 tokens failed \(.*\); the model may hold fewer positions .*give a shorter context/);
    const plain = loadModel(fixture('llama-sst2/model.onnx'));
    const plainSt = await detectStructure(plain);
    await expectOptinError(() => measureLatencyTable(plain, plainSt, { decode: true }), 'usage', /model\.onnx: decode-step latency needs a decoder exported with its key\/value cache/);
    const dir = tempDir();
    const env = { OPTIN_CACHE_DIR: path.join(dir, 'cache') };
    const r = optin(env, 'prune', file, '--latency', '0.8', '--decode', '--data', path.join(path.dirname(file), 'train.txt'), '--samples', '4', '--bench-batch', '2', '--bench-seq-len', '8', '--out', path.join(dir, 'p.onnx'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /latency +target 80\.0% of dense decode-step: predicted [\d.]+% \([\d.]+ of [\d.]+ ms\), measured [\d.]+%/);
    assert.match(r.stdout, /decode +[\d.]+ ms -> [\d.]+ ms per step \(\d+ -> \d+ tokens\/s, [\d.]+x\) after a cache of 8 tokens/);
    const l = optin(env, 'latency', file, '--decode', '--batch', '2', '--seq-len', '8');
    assert.match(l.stdout, /^cpu, one decode step, batch 2, a cache of 8 tokens/);
    assert.match(l.stdout, /read from the cache: .*-decode\.json/, 'the prune measured the same table');
    assert.equal(optin(env, 'prune', file, '--budget', '0.8', '--decode').code, 2, '--decode without --latency is a usage error');
  });
});

