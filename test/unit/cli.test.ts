import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixture, tempDir, optin, CLI, pruneVerified } from './helpers';
import { loadModel } from '../../src/engine/onnx/model';
import { saveModel } from '../../src/engine/onnx/writer';
import { detectStructure } from '../../src/engine/structure/detect';
import { applyKeep } from '../../src/engine/prune/apply';
import { inspectModel } from '../../src/engine/inspect';
import { toSummary } from '../../src/extension/views';



describe('optin CLI', () => {
  before(() => assert.ok(fs.existsSync(CLI), 'run the build first (dist/cli.js)'));

  it('inspect prints the per-layer table', () => {
    const r = optin('inspect', fixture('bert-sst2/model-opset17.onnx'), '--seq-len', '64');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bert, text, post-LN, hidden 256, 4 layers/);
    assert.match(r.stdout, /MACs at sequence length 64/);
    assert.equal(r.stdout.split('\n').filter((l) => /^\d\s+8 x 32\s+separate\s+1024\s+gelu-erf/.test(l)).length, 4);
  });

  it('inspect --json has the documented fields', () => {
    const r = optin('inspect', fixture('vit-digits/model-opset17.onnx'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.architecture, 'vit');
    assert.equal(j.hidden, 64);
    assert.equal(j.norm, 'pre');
    assert.deepEqual(j.layers.map((l: { heads: number; headSize: number; ffn: number }) => [l.heads, l.headSize, l.ffn]), [[4, 16, 256], [4, 16, 256], [4, 16, 256], [4, 16, 256]]);
    assert.equal(j.macs.seqLen, 17);
    const perLayer = 4 * (3 * 17 * 64 * 16 + 2 * 17 * 17 * 16 + 17 * 16 * 64) + 256 * 2 * 17 * 64;
    assert.equal(j.macs.total, 4 * perLayer);
  });

  const refusals: Array<[string, () => string, RegExp]> = [
    ['a decoder', () => fixture('gpt2-decoder/model.onnx'), /decoder-only/],
    ['a graph onnxruntime refuses', () => fixture('pt14-bert-squad-refused/model.onnx'), /onnxruntime cannot load/],
    ['a truncated file', () => {
      const p = path.join(tempDir(), 'cut.onnx');
      fs.writeFileSync(p, fs.readFileSync(fixture('ort-bert-toy/model.onnx')).subarray(0, 5000));
      return p;
    }, /cut\.onnx is not a readable ONNX protobuf/],
    ['a missing file', () => '/nonexistent/model.onnx', /cannot read \/nonexistent\/model\.onnx: ENOENT/],
  ];
  for (const [what, file, re] of refusals) {
    it(`refuses ${what} with exit 2 and one line on stderr`, () => {
      const r = optin('inspect', file());
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^optin: /);
      assert.match(lines[0]!, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }

  it('rejects unknown options and commands', () => {
    assert.equal(optin('inspect', fixture('ort-bert-toy/model.onnx'), '--bogus').code, 2);
    const r = optin('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
  });

  it('prune --multiple-of 8 writes a verified model whose FFN widths are multiples of 8', () => {
    const out = path.join(tempDir(), 'm8.onnx');
    const r = optin('prune', fixture('bert-sst2/model-opset17.onnx'), '--budget', '0.6', '--multiple-of', '8', '--ranking', 'magnitude', '--samples', '2', '--no-bench', '--out', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    for (const [l, k] of (j.plan.keep.neurons as number[][]).entries()) assert.ok(k.length % 8 === 0 || k.length === 1024, `layer ${l} keeps ${k.length}`);
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    assert.equal(optin('plan', '-', '--budget', '0.6', '--multiple-of', 'x', '--out', out).code, 2);
  });

  it('prunes a model OPTIN already pruned (its "optin/" value names never clash with the instrumentation\'s)', () => {
    const dir = tempDir();
    const once = path.join(dir, 'once.onnx');
    const twice = path.join(dir, 'twice.onnx');
    const first = optin('prune', fixture('torch-bert-like-random/model-opset17.onnx'), '--budget', '0.7', '--samples', '4', '--no-bench', '--out', once, '--json');
    assert.equal(first.code, 0, first.stderr);
    const r = optin('prune', once, '--budget', '0.7', '--samples', '4', '--no-bench', '--out', twice, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    assert.ok(fs.statSync(twice).size < fs.statSync(once).size, 'the second prune makes it smaller again');
  });

  it('inspects, scores and prunes a model whose earlier pruning removed a whole attention (a feed-forward-only layer); the panel\'s model summary shows it', async () => {
    const dir = tempDir();
    const once = path.join(dir, 'model.onnx');
    const m = loadModel(fixture('vit-digits/model-opset17.onnx'));
    const all = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
    saveModel({ ...m, proto: applyKeep(m, await detectStructure(m), { heads: [all(4), [0, 1], [], [1, 3]], neurons: [all(256), all(100), all(50), all(200)] }) }, once);
    fs.copyFileSync(fixture('vit-digits/preprocessor_config.json'), path.join(dir, 'preprocessor_config.json'));
    const r = optin('inspect', once, '--json');
    assert.equal(r.code, 0, r.stderr);
    const layers = JSON.parse(r.stdout).layers as Array<{ heads: number; ffn: number; qkv: string | null }>;
    assert.deepEqual(layers.map((l) => [l.heads, l.ffn, l.qkv]), [[4, 256, 'packed'], [2, 100, 'packed'], [0, 50, null], [2, 200, 'packed']]);
    assert.match(optin('inspect', once).stdout, /^2\s+-\s+\(no attention\)\s+50\s/m);
    const j = pruneVerified(once, '--data', fixture('../data/digits/train'));
    assert.equal(j.plan.keep.heads[2].length, 0);
    const summary = toSummary(await inspectModel(once));
    assert.deepEqual(summary.layers.map((l) => [l.heads, l.ffn, l.qkv]), [[4, 256, 'packed'], [2, 100, 'packed'], [0, 50, '(no attention)'], [2, 200, 'packed']]);
  });
});
