import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineClient } from '../../src/engine/worker/client';
import { OptinError } from '../../src/engine/errors';
import { ROOT, FIXTURES, fixture, sha256, tempDir } from './helpers';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const optin = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

describe('optin score / optin plan', () => {
  const dir = tempDir();
  const scores = path.join(dir, 'vit.scores.json');
  const model = fixture('vit-digits/model-opset17.onnx');

  it('scores the digits ViT on its images and writes the documented JSON', () => {
    const before = sha256(model);
    const r = optin('score', model, '--data', path.join(FIXTURES, 'data', 'digits', 'test'), '--samples', '12', '--out', scores);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /scoring: .*elements/);
    assert.match(r.stderr, /scored 1040 elements of 4 layers/);
    const j = JSON.parse(fs.readFileSync(scores, 'utf8'));
    assert.equal(j.schema, 'optin-scores');
    assert.equal(j.version, 1);
    assert.equal(j.model.sha256, before);
    assert.deepEqual(j.heads.map((h: number[]) => h.length), [4, 4, 4, 4]);
    assert.deepEqual(j.neurons.map((n: number[]) => n.length), [256, 256, 256, 256]);
    assert.ok(j.heads.flat().every((x: number) => Number.isFinite(x) && x >= 0));
    assert.equal(j.macSeqLen, 17);
    assert.equal(sha256(model), before, 'the model file is untouched');
  });

  it('plans at a budget from the scores file', () => {
    const plan = path.join(dir, 'vit.plan.json');
    const r = optin('plan', scores, '--budget', '0.5', '--out', plan, '--json');
    assert.equal(r.code, 0, r.stderr);
    const p = JSON.parse(fs.readFileSync(plan, 'utf8'));
    assert.equal(p.schema, 'optin-plan');
    assert.ok(p.macs.ratio <= 0.5 && p.macs.ratio > 0.45, `ratio ${p.macs.ratio}`);
    assert.equal(p.keep.heads.length, 4);
    assert.equal(p.layers[0].heads, p.keep.heads[0].length);
  });

  it('refuses a bad budget and a file that is not a scores file', () => {
    const r = optin('plan', scores, '--budget', '1.5', '--out', path.join(dir, 'x.json'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /outside \(0, 1\]/);
    assert.ok(!fs.existsSync(path.join(dir, 'x.json')));
    const bad = optin('plan', model, '--budget', '0.5', '--out', path.join(dir, 'y.json'));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not valid JSON/);
  });

  it('scores a text model on synthetic data with a visible warning', () => {
    const out = path.join(dir, 'bert.scores.json');
    const r = optin('score', fixture('torch-bert-like-random/model-opset17.onnx'), '--samples', '4', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: no calibration data given: scoring on a synthetic batch/);
  });

  it('scores sentences of different lengths in length buckets, says so and records them', () => {
    const out = path.join(dir, 'llama.scores.json');
    const r = optin('score', fixture('llama-sst2/model.onnx'), '--data', fixture('llama-sst2/train.txt'), '--samples', '6', '--mode', 'exact', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const m = /in (\d) length buckets \((\d+) of (\d+) padded tokens\)/.exec(r.stderr);
    assert.ok(m, r.stderr);
    const j = JSON.parse(fs.readFileSync(out, 'utf8'));
    const b: Array<{ examples: number; seqLen: number }> = j.calibration.buckets;
    assert.equal(b.length, Number(m[1]));
    assert.equal(b.reduce((a, x) => a + x.examples, 0), 6);
    assert.equal(b.reduce((a, x) => a + x.examples * x.seqLen, 0), Number(m[2]));
    assert.equal(Number(m[3]), 6 * j.calibration.seqLen);
    assert.ok(Number(m[2]) < Number(m[3]));
  });

  it('refuses a decoder before scoring', () => {
    const r = optin('score', fixture('gpt2-decoder/model.onnx'), '--out', path.join(dir, 'g.json'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /decoder-only/);
    assert.ok(!fs.existsSync(path.join(dir, 'g.json')));
  });

  it('cancellation stops scoring within one run and the caller gets "cancelled"', async () => {
    const engine = new EngineClient(path.join(ROOT, 'dist', 'engineWorker.js'));
    const ac = new AbortController();
    let runsAfterCancel = 0;
    let cancelledAt = -1;
    try {
      await assert.rejects(
        engine.score({ model: fixture('bert-sst2/model-opset17.onnx'), data: { samples: 8 }, ep: 'cpu', mode: 'exact' }, (p) => {
          if (p.phase !== 'layer') return;
          if (cancelledAt < 0 && p.done > 0) { cancelledAt = p.done; ac.abort(); }
          else if (cancelledAt >= 0) runsAfterCancel++;
        }, ac.signal),
        (e: unknown) => e instanceof OptinError && e.code === 'cancelled',
      );
      assert.ok(cancelledAt > 0);
      // At most the run in progress when the worker saw the cancel, plus one whose progress message
      // was already in flight when the caller aborted.
      assert.ok(runsAfterCancel <= 2, `${runsAfterCancel} runs finished after cancel`);
    } finally {
      await engine.dispose();
    }
  });
});
