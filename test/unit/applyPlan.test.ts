import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { magnitudeScores } from '../../src/engine/optin/magnitude';
import { modelRef, makePlan } from '../../src/engine/plan/files';
import type { PlanFile, ScoresFile } from '../../src/engine/plan/schema';
import { SCHEMA_VERSION } from '../../src/engine/plan/schema';
import { applyPlan, defaultOutput } from '../../src/engine/prune/applyPlan';
import { tuneMasks } from '../../src/engine/repair/tune';
import { verifyPruned } from '../../src/engine/verify/verify';
import { applyKeep } from '../../src/engine/prune/apply';
import { sha256File } from '../../src/engine/util/atomic';
import { ROOT, FIXTURES, expectOptinError, fixture, sha256, tempDir } from './helpers';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const optin = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

async function magnitudePlan(modelPath: string, budget: number): Promise<PlanFile> {
  const m = loadModel(modelPath);
  const st = await detectStructure(m);
  const s = magnitudeScores(m, st, 12);
  const scores: ScoresFile = {
    schema: 'optin-scores', version: SCHEMA_VERSION, tool: { name: 'optin', version: 'test' }, created: '', model: modelRef(m.path, sha256File(m.path), st),
    mode: 'magnitude', outputLoss: 'kl', provider: 'none', seconds: 0, calibration: { source: 'test', examples: 0, seqLen: 12, meanLength: 12, tokenRows: 0 },
    macSeqLen: 12, heads: s.heads, neurons: s.neurons, raw: { heads: [], neurons: [] },
  };
  return makePlan(scores, budget);
}

describe('applying a plan', function () {
  this.timeout(180_000);
  const dir = tempDir();
  const model = path.join(dir, 'tiny.onnx');
  fs.copyFileSync(fixture('torch-bert-like-random/model-opset17.onnx'), model);
  const sst2 = path.join(FIXTURES, 'data', 'sst2');

  it('writes <name>.optin-<pct>.onnx beside the input, verified, with the plan in metadata_props', async () => {
    const plan = await magnitudePlan(model, 0.5);
    const before = sha256(model);
    const r = await applyPlan({ model, plan, data: { samples: 4 } });
    assert.equal(r.output, defaultOutput(model, 0.5));
    assert.equal(path.basename(r.output), 'tiny.optin-50.onnx');
    assert.equal(sha256(model), before, 'input untouched');
    assert.ok(r.verification.maxAbsDiff <= r.verification.tolerance);
    assert.equal(r.macs.after, plan.macs.kept);
    assert.ok(r.fileBytes.after < r.fileBytes.before);
    const meta = loadModel(r.output).proto.metadataProps.find((p) => p.key === 'optin.plan');
    assert.ok(meta);
    const j = JSON.parse(meta.value);
    assert.equal(j.budget, 0.5);
    assert.deepEqual(j.heads, plan.layers.map((l) => l.heads));
    assert.equal(j.sourceSha256, before);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  });

  for (const rel of ['bert-sst2/model-opset17.onnx', 'torch-bert-like-random/model-opset14.onnx', 'torch-bert-like-random/model-opset17.ort-fused.onnx',
    'keras2onnx-tfbert-mrpc/model.onnx', 'keras2onnx-tfbert-mrpc/model.ort-fused.onnx', 'optimum-tiny-distilbert-sst2/model.onnx',
    'optimum-tiny-distilbert-sst2/model.ort-fused.onnx', 'ort-bert-toy/model.onnx', 'ort-bert-toy/model.ort-fused.onnx',
    'ort-fused-attention/attention-opt.onnx', 'ort-fused-attention/attention-varied-qkv-opt.onnx', 'ort-fused-attention/attention-mha.onnx',
    'ort-fused-attention/bert-3d-attention-opt.onnx', 'vit-digits/model-opset14.onnx', 'vit-digits/model-opset17.onnx']) {
    it(`applies a 0.5 plan to ${rel} and verifies it`, async () => {
      const src = fixture(rel);
      const plan = await magnitudePlan(src, 0.5);
      const out = path.join(dir, `${rel.replace(/[/.]/g, '_')}.onnx`);
      const r = await applyPlan({ model: src, plan, data: { samples: 4 }, out });
      assert.ok(r.verification.maxAbsDiff <= r.verification.tolerance);
      assert.equal(r.macs.after, plan.macs.kept);
      assert.ok(r.macs.after <= 0.5 * r.macs.before * (1 + 1e-9));
      assert.ok(fs.existsSync(out));
    });
  }

  it('a cancelled apply writes nothing', async () => {
    const plan = await magnitudePlan(model, 0.4);
    const ac = new AbortController();
    ac.abort();
    const out = path.join(dir, 'cancelled.onnx');
    await expectOptinError(() => applyPlan({ model, plan, data: { samples: 2 }, out }, ac.signal), 'cancelled', /nothing was written/);
    assert.ok(!fs.existsSync(out));
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('cancelled')), []);
  });

  it('refuses a plan made for another model, and leaves the original byte-identical', async () => {
    const plan = await magnitudePlan(model, 0.5);
    const other = path.join(dir, 'other.onnx');
    fs.copyFileSync(fixture('torch-bert-like-random/model-opset14.onnx'), other);
    const before = sha256(other);
    await expectOptinError(() => applyPlan({ model: other, plan, data: {} }), 'data', /the plan was made for .*tiny\.onnx \(sha256 [0-9a-f]{12}…\), not .*other\.onnx/);
    assert.equal(sha256(other), before);
    assert.ok(!fs.existsSync(defaultOutput(other, 0.5)));
  });

  it('refuses budgets outside (0, 1], plans that keep nothing, output = input, read-only folders', async () => {
    const plan = await magnitudePlan(model, 0.5);
    const before = sha256(model);
    await expectOptinError(() => applyPlan({ model, plan: { ...plan, budget: 1.5 }, data: {} }), 'usage', /budget 1.5 is outside \(0, 1\]/);
    await expectOptinError(() => applyPlan({ model, plan: { ...plan, budget: 0 }, data: {} }), 'usage', /budget 0 is outside \(0, 1\]/);
    await expectOptinError(() => applyPlan({ model, plan: { ...plan, keep: { heads: plan.keep.heads.map(() => []), neurons: plan.keep.neurons } }, data: {} }), 'usage', /keeps no attention head/);
    await expectOptinError(() => applyPlan({ model, plan, out: model, data: {} }), 'usage', /is the input model; OPTIN never overwrites the original/);
    const ro = path.join(dir, 'readonly');
    fs.mkdirSync(ro);
    fs.chmodSync(ro, 0o555);
    try {
      const dest = process.getuid?.() === 0 ? '/proc/self/x.onnx' : path.join(ro, 'x.onnx');
      await expectOptinError(() => applyPlan({ model, plan, out: dest, data: {} }), 'io', /cannot write to \S+: (EACCES|EPERM|EROFS); choose another output path/);
    } finally {
      fs.chmodSync(ro, 0o755);
    }
    assert.equal(sha256(model), before);
    await expectOptinError(() => Promise.resolve(makePlan({ ...({} as ScoresFile), model: plan.model, heads: plan.scores.heads, neurons: plan.scores.neurons, macSeqLen: 12 }, -0.1)), 'usage', /budget -0.1 is outside/);
  });

  it('mask tuning lowers the reconstruction error on real data and the tuned model still verifies', async () => {
    const m = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const st = await detectStructure(m);
    const batch = await loadCalibration(m.path, st, { data: path.join(sst2, 'train.tsv'), samples: 16 });
    const plan = await magnitudePlan(m.path, 0.4);
    const keep = { heads: plan.keep.heads, neurons: plan.keep.neurons };
    const t = await tuneMasks(m, st, keep, batch);
    assert.equal(t.steps.length, [...keep.heads, ...keep.neurons].filter((k) => k.length > 0).length, 'one solve per sublayer that keeps something');
    const used = t.steps.filter((s) => !s.rejected);
    assert.ok(used.length >= 4, JSON.stringify(t.steps));
    for (const s of used) assert.ok(s.after < s.before);
    assert.ok(t.scales.heads.flat().concat(t.scales.neurons.flat()).every((x) => Number.isFinite(x) && Math.abs(x) <= 10));
    assert.ok(t.scales.neurons.flat().some((x) => Math.abs(x - 1) > 1e-3), 'some scale moved');
    const tuned = { ...keep, scales: t.scales };
    const proto = applyKeep(m, st, tuned);
    const v = await verifyPruned(m, st, { ...m, proto }, tuned, batch, { macs: plan.macs.kept, seqLen: plan.macs.seqLen });
    assert.ok(v.maxAbsDiff <= v.tolerance);
  });

  it('optin prune: score, plan, apply, verify, eval and bench in one command with a JSON report', () => {
    const out = path.join(dir, 'p.onnx');
    const r = optin('prune', fixture('bert-sst2/model-opset17.onnx'), '--budget', '0.5', '--ranking', 'magnitude', '--data', path.join(sst2, 'train.tsv'), '--samples', '8',
      '--eval', path.join(sst2, 'test.tsv'), '--out', out, '--bench-runs', '2', '--bench-batch', '2', '--bench-seq-len', '16', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.apply.output, out);
    assert.ok(fs.existsSync(out));
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    assert.equal(j.evaluation.examples, 872);
    assert.ok(j.evaluation.accuracy > 0.5 && j.evaluation.accuracy <= 1);
    assert.ok(j.evaluation.reference.accuracy > 0.7);
    assert.equal(j.bench.models.length, 2);
    assert.ok(j.bench.speedup[1] > 0);
    assert.ok(Math.abs(j.idealSpeedup - 2) < 0.01);
  });

  it('optin prune prints the human report; optin eval and optin bench work on their own', () => {
    const out = path.join(dir, 'tiny.p.onnx');
    const r = optin('prune', model, '--budget', '0.7', '--ranking', 'magnitude', '--out', out, '--bench-runs', '2', '--bench-batch', '2', '--bench-seq-len', '8');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /layer\s+heads\s+neurons/);
    assert.match(r.stdout, /MACs\s+.* -> .*70\.0% kept/);
    assert.match(r.stdout, /verified\s+max \|pruned - masked original\| = /);
    assert.match(r.stdout, /speed\s+.*x measured, 1\.43x ideal from MACs/);
    const e = optin('eval', fixture('bert-sst2/model-opset17.onnx'), '--data', path.join(sst2, 'test.tsv'), '--reference', fixture('bert-sst2/model-opset17.onnx'), '--json');
    assert.equal(e.code, 0, e.stderr);
    const ej = JSON.parse(e.stdout);
    assert.equal(ej.examples, 872);
    assert.equal(ej.accuracy.toFixed(4), '0.7924', 'the dense accuracy recorded in metrics.json');
    assert.equal(ej.reference.agreement, 1);
    const b = optin('bench', model, out, '--runs', '3', '--batch', '2', '--seq-len', '8', '--json');
    assert.equal(b.code, 0, b.stderr);
    const bj = JSON.parse(b.stdout);
    assert.equal(bj.runs, 3);
    assert.equal(bj.models.length, 2);
  });

  it('optin eval explains unlabelled data; optin prune explains a bad budget', () => {
    const txt = path.join(dir, 'plain.txt');
    fs.writeFileSync(txt, 'a fine film\nawful\n');
    const e = optin('eval', fixture('bert-sst2/model-opset17.onnx'), '--data', txt);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /plain\.txt has no labels; evaluation needs a label column/);
    const p = optin('prune', model, '--budget', '1.2');
    assert.equal(p.code, 2);
    assert.match(p.stderr, /--budget 1\.2 is outside \(0, 1\]/);
  });
});
