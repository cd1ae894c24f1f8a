import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { scoreModel } from '../../src/engine/optin/scorer';
import { scoreFast, subBatch } from '../../src/engine/optin/fast';
import { chooseMode } from '../../src/engine/optin/mode';
import type { ScoreProgress } from '../../src/engine/optin/types';
import { spearman } from '../../src/shared/ranks';
import { ROOT, FIXTURES, fixture, tempDir } from './helpers';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const optin = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

describe('fast and auto scoring modes, execution providers', function () {
  this.timeout(300_000);
  const sst2 = path.join(FIXTURES, 'data', 'sst2', 'train.tsv');

  it('subBatch spreads the chosen examples over the batch and keeps masks and labels aligned', async () => {
    const m = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const st = await detectStructure(m);
    const b = await loadCalibration(m.path, st, { data: sst2, samples: 8 });
    const s = subBatch(b, 2);
    assert.equal(s.batch, 2);
    assert.deepEqual(s.labels, [b.labels![0], b.labels![4]]);
    const S = b.seqLen;
    assert.deepEqual(Array.from(s.tokenMask.subarray(S, 2 * S)), Array.from(b.tokenMask.subarray(4 * S, 5 * S)));
    const ids = s.feeds.input_ids!.data as BigInt64Array, all = b.feeds.input_ids!.data as BigInt64Array;
    assert.deepEqual(Array.from(ids.subarray(S, 2 * S)), Array.from(all.subarray(4 * S, 5 * S)));
  });

  it('fast mode with every example equals exact mode; heads are always exact', async () => {
    const m = loadModel(fixture('torch-bert-like-random/model-opset17.onnx'));
    const st = await detectStructure(m);
    const b = await loadCalibration(m.path, st, { samples: 4 });
    const exact = await scoreModel(m, st, b);
    const fast = await scoreFast(m, st, b, { neuronExamples: 4 });
    assert.equal(fast.mode, 'fast');
    assert.deepEqual(fast.heads, exact.heads);
    fast.neurons.flat().forEach((x, i) => assert.ok(Math.abs(x - exact.neurons.flat()[i]!) <= 1e-9 * Math.max(1, Math.abs(x)), `neuron ${i}`));
    const sub = await scoreFast(m, st, b, { neuronExamples: 1 });
    assert.deepEqual(sub.heads, exact.heads);
    assert.ok(sub.neurons.flat().every((x) => Number.isFinite(x) && x >= 0));
  });

  it('horizon 1 on half the examples: the extrapolated neuron ranking follows the whole-batch exact one', async () => {
    const m = loadModel(fixture('vit-digits/model-opset17.onnx'));
    const st = await detectStructure(m);
    const b = await loadCalibration(m.path, st, { data: path.join(FIXTURES, 'data', 'digits', 'train'), samples: 8 });
    const exact = await scoreModel(m, st, b, { kinds: ['neuron'] });
    const fast = await scoreFast(m, st, b, { neuronExamples: 4, horizon: 1, referenceNeurons: 6 });
    const rho = spearman(fast.neurons.flat(), exact.neurons.flat());
    assert.ok(rho > 0.6, `rank correlation with the exact scores: ${rho}`);
  });

  it('the reference neurons carry their exact whole-batch, whole-trajectory terms; heads are exact; every other neuron gets the terms its layer has', async () => {
    const m = loadModel(fixture('vit-digits/model-opset17.onnx'));
    const st = await detectStructure(m);
    const b = await loadCalibration(m.path, st, { data: path.join(FIXTURES, 'data', 'digits', 'train'), samples: 4 });
    const exact = await scoreModel(m, st, b);
    const events: ScoreProgress[] = [];
    const fast = await scoreFast(m, st, b, { neuronExamples: 2, horizon: 1, referenceNeurons: 4, onProgress: (p) => events.push(p) });
    assert.deepEqual(fast.raw.heads, exact.raw.heads, 'heads are scored exactly, to the end');
    const before = st.layers.reduce((a, l) => a + l.attention!.heads + (l.ffn?.width ?? 0), 0);
    const refs = events.filter((e) => e.done > before && e.done < e.total);
    assert.ok(refs.length > 0 && refs.every((e) => e.total === before + 4 * st.layers.length), 'the reference neurons count in the progress');
    assert.ok(refs.some((e) => (e.eta ?? 0) > 0), 'their phase reports the time it still needs');
    st.layers.forEach((_, l) => {
      const f = fast.raw.neurons[l]!, e = exact.raw.neurons[l]!;
      const same = f.md.filter((x, j) => x === e.md[j] && f.kl[j] === e.kl[j]).length;
      assert.equal(same, 4, `layer ${l}: the 4 reference neurons carry their exact terms`);
      for (const t of ['md', 'kl'] as const) {
        if (e[t].some((x) => x > 0)) assert.ok(f[t].every((x) => x > 0), `layer ${l}: every neuron has a ${t} term`);
        else assert.ok(f[t].every((x) => x === 0), `layer ${l}: no neuron has a ${t} term, as in the exact scores`);
      }
    });
  });

  it('on the trained decoder, fast mode with its defaults ranks neurons as exact scoring does (Spearman >= 0.9)', async () => {
    const dir = fixture('llama-sst2');
    const m = loadModel(path.join(dir, 'model.onnx'));
    const st = await detectStructure(m);
    const b = await loadCalibration(m.path, st, { data: path.join(dir, 'train.txt'), samples: 32 });
    const exact = await scoreModel(m, st, b, { kinds: ['neuron'] });
    const fast = await scoreFast(m, st, b);
    const rho = spearman(fast.neurons.flat(), exact.neurons.flat());
    assert.ok(rho >= 0.9, `neuron ranking Spearman ${rho.toFixed(3)} on 8 of 32 sentences`);
  });

  it('auto picks exact when it fits, fast with fewer examples, then horizon 1', () => {
    const est = { forward: 1, heads: 60, neurons: 6000, neuronsHorizon1: 1200, references: 0 };
    assert.equal(chooseMode(est, 16, 7000).mode, 'exact');
    const a = chooseMode(est, 16, 60 + 3000);
    assert.deepEqual([a.mode, a.neuronExamples, a.horizon], ['fast', 8, undefined]);
    const c = chooseMode(est, 16, 60 + 600);
    assert.deepEqual([c.mode, c.neuronExamples, c.horizon], ['fast', 8, 1]);
    assert.match(c.reason, /exact scoring estimated at 101\.0 min > 11\.0 min budget: fast mode, neurons on 8 of 16 examples comparing the next layer only/);
    const r = chooseMode({ ...est, references: 300 }, 16, 60 + 3000);
    assert.deepEqual([r.mode, r.neuronExamples], ['fast', 7], 'the reference neurons come out of the budget first');
    assert.match(r.reason, /\(about 49\.8 min\)/);
  });

  it('optin score --mode auto with a tiny time budget falls to fast and says why', () => {
    const out = path.join(tempDir(), 's.json');
    const r = optin('score', fixture('bert-sst2/model-opset17.onnx'), '--data', sst2, '--samples', '8', '--mode', 'auto', '--time-budget', '0.05', '--out', out, '--quiet');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\(fast: exact scoring estimated at [0-9.]+ min > 0\.1 min budget: fast mode, neurons on \d+ of 8 examples/);
    const j = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(j.mode, 'fast');
    assert.match(j.modeReason, /fast mode/);
    const bad = optin('score', fixture('bert-sst2/model-opset17.onnx'), '--mode', 'quick', '--out', out);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--mode must be exact, fast or auto, got "quick"/);
  });
});
