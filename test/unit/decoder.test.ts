import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { applyKeep, type KeepSet } from '../../src/engine/prune/apply';
import { verifyPruned } from '../../src/engine/verify/verify';
import { layerMacs } from '../../src/engine/flops';
import { activationMagnitudeScores } from '../../src/engine/optin/wanda';
import type { Linear } from '../../src/engine/structure/types';
import { FIXTURES, fixture, optin, pruneVerified, tempDir } from './helpers';
import { materialize } from '../fixtures/materialize';
import { saveModel } from '../../src/engine/onnx/writer';
import { evaluate } from '../../src/engine/eval/evaluate';
import { create } from '@bufbuild/protobuf';
import { ValueInfoProtoSchema } from '../../src/engine/onnx/schema';
import { weightOf, withWeights } from './weightEdits';

const DIR = 'llama-sst2';
const MODEL = `${DIR}/model.onnx`;
const metrics = (): { test_txt_perplexity: number; test_txt_tokens: number } => JSON.parse(fs.readFileSync(fixture(`${DIR}/metrics.json`), 'utf8'));

describe('decoder-only language models (grouped-query attention, rotary, SwiGLU)', function () {
  this.timeout(300_000);

  it('the trained Llama-style decoder: 4 layers of 2 key/value groups of 4 query heads x 16, SwiGLU 256, causal, MACs per unit from the formula', async () => {
    const st = await detectStructure(loadModel(fixture(MODEL)));
    assert.equal(st.architecture, 'decoder');
    assert.match(st.causal ?? '', /Trilu/);
    assert.deepEqual(st.layers.map((l) => [l.attention!.layout, l.attention!.heads, l.attention!.group, l.attention!.headSize, l.attention!.vHeadSize, l.ffn?.width, !!l.ffn?.gate]), Array.from({ length: 4 }, () => ['grouped-query', 2, 4, 16, 64, 256, true]));
    const s = 20, D = 128, g = 4, d = 16;
    const m = layerMacs(st.layers[0]!, s, D);
    assert.equal(m.perHead, s * D * (g * d + d + d) + g * s * s * (d + d) + s * g * d * D, 'one unit: its 4 query heads, one key and one value head, 4 heads of output rows');
    assert.equal(m.perNeuron, 3 * s * D);
  });

  it('cutting whole key/value groups (and a whole attention) equals masking their V: Q columns of the group, K/V heads, output rows, reshapes', async () => {
    const m = loadModel(fixture(MODEL));
    const st = await detectStructure(m);
    const batch = await loadCalibration(m.path, st, { data: fixture(`${DIR}/train.txt`), samples: 6 });
    const keep: KeepSet = { heads: [[1], [0], [], [0, 1]], neurons: [[0, 5, 9, 200], Array.from({ length: 256 }, (_, j) => j), Array.from({ length: 100 }, (_, j) => 2 * j), [255]] };
    const proto = applyKeep(m, st, keep);
    const pruned = { ...m, path: `${m.path} (pruned)`, proto };
    const macs = st.layers.reduce((a, l, i) => a + layerMacs(l, batch.meanLength, st.hidden, keep.heads[i]!.length, keep.neurons[i]!.length).total, 0);
    const v = await verifyPruned(m, st, pruned, keep, batch, { macs, seqLen: batch.meanLength });
    assert.ok(v.maxAbsDiff <= v.tolerance, `pruned vs masked original ${v.maxAbsDiff} > ${v.tolerance}`);
    const re = await detectStructure({ ...m, proto: applyKeep(m, st, { ...keep, heads: [[1], [0], [0, 1], [0]] }) });
    assert.deepEqual(re.layers.map((l) => [l.attention!.layout, l.attention!.heads]), [['multi-query', 4], ['multi-query', 4], ['grouped-query', 2], ['multi-query', 4]], 're-detected: one kept group is 4 query heads sharing one key/value head');
  });

  it('multi-query attention (8 query heads, one shared key/value head): the units are query heads; the shared K/V projections cost MACs while any head is kept; cutting rewrites the repeat count; verified', async () => {
    const file = materialize(fixture('llama-mqa-random/model.skeleton.onnx'));
    const m = loadModel(file);
    const st = await detectStructure(m);
    assert.deepEqual(st.layers.map((l) => [l.attention!.layout, l.attention!.heads, l.attention!.sharedKv]), [['multi-query', 8, true], ['multi-query', 8, true]]);
    const s = 20, D = 128, d = 16;
    const perHead = s * D * d + s * s * (d + d) + s * d * D, kv = s * D * (d + d);
    assert.equal(layerMacs(st.layers[0]!, s, D).heads, 8 * perHead + kv);
    assert.equal(layerMacs(st.layers[0]!, s, D, 3).heads, 3 * perHead + kv);
    assert.equal(layerMacs(st.layers[0]!, s, D, 0).heads, 0, 'no head kept: the whole attention, K/V included, is gone');
    const batch = await loadCalibration(m.path, st, { samples: 4 });
    const keep: KeepSet = { heads: [[1, 5, 6], []], neurons: [Array.from({ length: 100 }, (_, j) => 2 * j), [3]] };
    const pruned = { ...m, path: `${m.path} (pruned)`, proto: applyKeep(m, st, keep) };
    const macs = st.layers.reduce((a, l, i) => a + layerMacs(l, batch.meanLength, st.hidden, keep.heads[i]!.length, keep.neurons[i]!.length).total, 0);
    const v = await verifyPruned(m, st, pruned, keep, batch, { macs, seqLen: batch.meanLength });
    assert.ok(v.maxAbsDiff <= v.tolerance);
    pruneVerified(file, '--samples', '4');
  });

  it('prune --budget 0.6 on text with the model\'s tokenizer: verified, perplexity on the held-out text beside it, original untouched', () => {
    const j = pruneVerified(fixture(MODEL), '--data', fixture(`${DIR}/train.txt`), '--samples', '16');
    assert.equal(j.evaluation.examples, 400);
    assert.ok(Math.abs(j.evaluation.reference.language.perplexity / metrics().test_txt_perplexity - 1) < 1e-3, `dense perplexity ${j.evaluation.reference.language.perplexity} vs PyTorch ${metrics().test_txt_perplexity}`);
    assert.equal(j.evaluation.reference.language.tokens, metrics().test_txt_tokens);
    assert.ok(j.evaluation.language.perplexity > j.evaluation.reference.language.perplexity * 0.99);
  });

  it('calibration text through a SentencePiece-style tokenizer.json (Metaspace normalizer, BPE with byte fallback) gives the ids of an independent reference', async () => {
    const dir = path.join(FIXTURES, 'data', 'tokenizers', 'sentencepiece-style');
    const m = loadModel(fixture(MODEL));
    const st = await detectStructure(m);
    const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as number[][];
    const b = await loadCalibration(m.path, st, { data: path.join(dir, 'samples.txt'), tokenizer: dir });
    const ids = b.feeds.input_ids!, S = b.seqLen;
    const rows = Array.from({ length: b.batch }, (_, r) => Array.from(ids.data.subarray(r * S, (r + 1) * S), Number).filter((_, t) => b.tokenMask[r * S + t]));
    assert.deepEqual(rows, expected);
    assert.deepEqual(expected[2]!.slice(10, 13), [229, 155, 152], '☕ falls back to its three UTF-8 bytes <0xE2><0x98><0x95>');
  });

  it('optin eval reports perplexity and bits per token; equal to PyTorch\'s on the same text', () => {
    const r = optin('eval', fixture(MODEL), '--data', fixture(`${DIR}/test.txt`), '--json');
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    assert.equal(e.language.tokens, metrics().test_txt_tokens);
    assert.ok(Math.abs(e.language.perplexity / metrics().test_txt_perplexity - 1) < 1e-3, `${e.language.perplexity} vs ${metrics().test_txt_perplexity}`);
    assert.ok(Math.abs(e.language.bitsPerToken - Math.log2(e.language.perplexity)) < 1e-9);
  });

  it('activation-weighted magnitude (Wanda) scores a key/value group and a neuron whose weights are all zero exactly 0, below every other; --ranking wanda prunes verified', async () => {
    const m = loadModel(fixture(MODEL));
    const st = await detectStructure(m);
    const l = st.layers[2]!, a = l.attention!, f = l.ffn!;
    /** Zero entries [from, to) of the weight's output axis (columns) or input axis (rows). */
    const zero = (lin: Linear, from: number, to: number, rows: boolean): { name: string; data: Float32Array } => {
      const w = weightOf(m, lin);
      const [R, C] = [w.dims[0]!, w.dims[1]!];
      const data = Float32Array.from(w.data);
      for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) if ((rows ? r : c) >= from && (rows ? r : c) < to) data[r * C + c] = 0;
      return { name: w.name, data };
    };
    const [q, k, v] = a.projections as [Linear, Linear, Linear];
    const edited = withWeights(m, [
      zero(q, 64, 128, false), zero(k, 16, 32, false), zero(v, 16, 32, false), zero(a.output, 64, 128, true),
      zero(f.gate!, 7, 8, false), zero(f.up, 7, 8, false), zero(f.down, 7, 8, true),
    ]);
    const batch = await loadCalibration(m.path, st, { data: fixture(`${DIR}/train.txt`), samples: 8 });
    const s = await activationMagnitudeScores(edited, st, batch, batch.meanLength);
    assert.deepEqual(s.heads[2], [s.heads[2]![0], 0]);
    assert.ok(s.heads[2]![0]! > 0);
    assert.equal(s.neurons[2]![7], 0);
    assert.ok(s.neurons[2]!.every((x, j) => j === 7 || x > 0));
    pruneVerified(fixture(MODEL), '--data', fixture(`${DIR}/train.txt`), '--samples', '8', '--ranking', 'wanda', '--no-eval');
    const r = optin('prune', fixture(MODEL), '--budget', '0.6', '--data', fixture(`${DIR}/train.txt`), '--samples', '8', '--ranking', 'wanda', '--no-eval', '--no-bench', '--out', path.join(tempDir(), 'w.onnx'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /budget 0\.6 \(keep 60% of MACs\), activation-weighted magnitude ranking \(Wanda\)/);
  });

  it('an encoder whose input is named like a cache is not refused (only float cache tensors of rank 3+ make a decoder)', async () => {
    const m = loadModel(fixture('bert-sst2/model-opset17.onnx'));
    const g = m.proto.graph!;
    for (const n of g.node) n.input = n.input.map((i) => (i === 'token_type_ids' ? 'past_segment_cache' : i));
    g.input.find((i) => i.name === 'token_type_ids')!.name = 'past_segment_cache';
    const st = await detectStructure(m);
    assert.equal(st.causal, undefined);
    assert.equal(st.layers.length, 4);
  });

  it('its export with a key/value cache (optimum names, position_ids) prunes at 0.6: the cache keeps the kept key/value heads; prefill and one decode step equal the masked original; the decode step equals the pruned model\'s own full run; optin bench times decode steps', () => {
    const file = materialize(fixture(`${DIR}/model-with-past.skeleton.onnx`));
    const j = pruneVerified(file, '--data', path.join(path.dirname(file), 'train.txt'), '--samples', '8', '--no-eval');
    const d = j.apply.verification.decodeStep;
    assert.ok(d && d.maxAbsDiff <= 1e-4 * d.outputScale && d.selfMaxAbsDiff <= 1e-4 * d.outputScale, JSON.stringify(d));
    const kept = (j.plan.keep.heads as number[][]).map((h) => h.length);
    const g = loadModel(j.out).proto.graph!;
    const heads = (name: string): number => {
      const v = [...g.input, ...g.output].find((x) => x.name === name)!;
      return Number((v.type!.value.value as { shape: { dim: Array<{ value: { value: bigint } }> } }).shape.dim[1]!.value.value);
    };
    kept.forEach((k, l) => {
      if (k === 0) return;
      for (const n of [`past_key_values.${l}.key`, `past_key_values.${l}.value`, `present.${l}.key`, `present.${l}.value`]) assert.equal(heads(n), k, n);
    });
    const b = optin('bench', file, j.out, '--batch', '2', '--seq-len', '8', '--runs', '2', '--json');
    assert.equal(b.code, 0, b.stderr);
    const d2 = JSON.parse(b.stdout).decode;
    assert.equal(d2.context, 8, 'decode steps timed after a cache of --seq-len tokens');
    assert.equal(d2.models.length, 2);
    for (const m of d2.models) assert.ok(Math.abs(m.tokensPerSecond - 2000 / m.medianMs) < 1e-9 * m.tokensPerSecond);
  });

  it('a cached export with one key/value group cut is evaluated against its original, each fed its own empty cache (their cache inputs differ in heads)', async () => {
    const file = materialize(fixture(`${DIR}/model-with-past.skeleton.onnx`));
    const m = loadModel(file);
    const st = await detectStructure(m);
    const keep: KeepSet = { heads: [[0, 1], [0, 1], [1], [0, 1]], neurons: st.layers.map((l) => Array.from({ length: l.ffn!.width }, (_, j) => j)) };
    const out = path.join(tempDir(), 'one-group-cut.onnx');
    saveModel({ ...m, proto: applyKeep(m, st, keep) }, out);
    const r = await evaluate(out, { data: { data: path.join(path.dirname(file), 'test.txt'), tokenizer: path.dirname(file), samples: 16 }, reference: file });
    assert.ok(r.language && r.reference?.language, JSON.stringify(r));
    assert.ok(r.language.perplexity > 0 && r.reference.language.perplexity > 0 && r.language.perplexity !== r.reference.language.perplexity);
  });

  it('a cache input joined to no attention is refused in one line naming it; nothing written', () => {
    const m = loadModel(fixture(MODEL));
    const g = m.proto.graph!;
    const extra = create(ValueInfoProtoSchema, { name: 'past_key_values.9.key' });
    extra.type = structuredClone(g.output[0]!.type);
    (extra.type!.value.value as { shape: { dim: unknown[] } }).shape.dim.push(structuredClone((extra.type!.value.value as { shape: { dim: unknown[] } }).shape.dim[2]));
    g.input.push(extra);
    const file = path.join(tempDir(), 'odd-cache.onnx');
    saveModel(m, file);
    fs.copyFileSync(fixture(`${DIR}/tokenizer.json`), path.join(path.dirname(file), 'tokenizer.json'));
    const out = path.join(tempDir(), 'p.onnx');
    const r = optin('prune', file, '--budget', '0.7', '--no-bench', '--out', out, '--json');
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /this key\/value-cache layout is not supported yet \(key\/value-cache input "past_key_values\.9\.key" is not joined to one attention's keys or values\)/);
    assert.ok(!fs.existsSync(out));
  });

  it('a cached export whose pruning removed a layer\'s whole attention: its cache is carried with zeros (K/V projections gone), verified with a decode step; analysed and pruned again; a cache carried otherwise is refused in one line', async () => {
    const file = materialize(fixture(`${DIR}/model-with-past.skeleton.onnx`));
    const m = loadModel(file);
    const st = await detectStructure(m);
    const keep: KeepSet = { heads: [[0, 1], [0, 1], [0, 1], []], neurons: st.layers.map((l) => Array.from({ length: l.ffn!.width / 2 }, (_, j) => 2 * j)) };
    const proto = applyKeep(m, st, keep);
    const kv = st.layers[3]!.attention!.projections.slice(1).map((p) => p.node);
    assert.ok(kv.length === 2 && kv.every((n) => !proto.graph!.node.some((x) => (x.name || x.output[0]) === n)), 'layer 3\'s K and V projections are no longer computed');
    const batch = await loadCalibration(file, st, { data: path.join(path.dirname(file), 'train.txt'), tokenizer: path.dirname(file), samples: 4 });
    const s = batch.meanLength;
    const macs = st.layers.reduce((a, l, i) => a + layerMacs(l, s, st.hidden, keep.heads[i]!.length, keep.neurons[i]!.length).total, 0);
    const v = await verifyPruned(m, st, { ...m, path: `${file} (pruned)`, proto }, keep, batch, { macs, seqLen: s });
    assert.ok(v.maxAbsDiff <= v.tolerance && v.decodeStep && v.decodeStep.maxAbsDiff <= 1e-4 * v.decodeStep.outputScale && v.decodeStep.selfMaxAbsDiff <= 1e-4 * v.decodeStep.outputScale, JSON.stringify(v));

    const dir = tempDir();
    const out = path.join(dir, 'model.onnx');
    saveModel({ ...m, proto }, out);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(path.dirname(file), f), path.join(dir, f));
    const st2 = await detectStructure(loadModel(out));
    assert.deepEqual(st2.layers.map((l) => [l.attention?.heads ?? 0, l.ffn?.width]), [[2, 128], [2, 128], [2, 128], [0, 128]]);
    assert.deepEqual(st2.idleCache, ['past_key_values.3.key', 'present.3.key', 'past_key_values.3.value', 'present.3.value']);
    assert.ok(!st2.outputs.some((o) => o.startsWith('present.')), 'cache outputs are not compared as model outputs');
    const again = pruneVerified(out, '--data', path.join(path.dirname(file), 'train.txt'), '--samples', '4', '--no-eval');
    const d = again.apply.verification.decodeStep;
    assert.ok(d && d.maxAbsDiff <= 1e-4 * d.outputScale && d.selfMaxAbsDiff <= 1e-4 * d.outputScale, JSON.stringify(d));

    const odd = loadModel(out);
    const cat = odd.proto.graph!.node.find((n) => n.output[0] === 'present.3.key')!;
    cat.input[1] = 'past_key_values.3.key';
    const oddFile = path.join(tempDir(), 'carried.onnx');
    saveModel(odd, oddFile);
    const r = optin('inspect', oddFile);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /the key\/value-cache input "past_key_values\.3\.key" is only carried to the output "present\.3\.key": no attention reads it, so an earlier pruning removed this layer's whole attention\..*prune the original model once at the budget you want/);
  });
});
