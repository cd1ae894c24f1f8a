import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/engine/onnx/model';
import { GraphIndex, attrInt } from '../../src/engine/onnx/graph';
import { countParameters, tensorFloat32, tensorShape } from '../../src/engine/onnx/tensor';
import { clone, toBinary } from '@bufbuild/protobuf';
import { DataType, ModelProtoSchema, type NodeProto, type TensorProto } from '../../src/engine/onnx/schema';
import { valueInfo } from '../../src/engine/graph/builder';
import { TensorStore, take } from '../../src/engine/graph/tensors';
import { cutNBits, dequantize, nbitsWeight, wholeBlocks } from '../../src/engine/graph/nbits';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { applyKeep, type KeepSet } from '../../src/engine/prune/apply';
import { verifyPruned } from '../../src/engine/verify/verify';
import { layerMacs } from '../../src/engine/flops';
import { scoreModel } from '../../src/engine/optin/scorer';
import { tuneMasks } from '../../src/engine/repair/tune';
import { OptinError } from '../../src/engine/errors';
import { inspectModel } from '../../src/engine/inspect';
import { toSummary } from '../../src/extension/views';
import { fixture, optin, sha256, tempDir } from './helpers';

const DIR = 'llama-sst2';
const INT4 = `${DIR}/model.int4.onnx`;
const EPS32 = 2 ** -24;

/** A one-node model around a MatMulNBits node of the fixture (its constants copied), to run it alone. */
function oneNode(file: string, nodeName: string): { bytes: Uint8Array; K: number; N: number; ix: GraphIndex } {
  const m = loadModel(file);
  const ix = new GraphIndex(m.proto.graph!, m.ext);
  const n = m.proto.graph!.node.find((x) => x.name === nodeName)!;
  const K = attrInt(n, 'K', 0), N = attrInt(n, 'N', 0);
  const proto = clone(ModelProtoSchema, m.proto);
  const g = proto.graph!;
  const node = g.node.find((x) => x.name === nodeName)!;
  node.input[0] = 'x';
  node.output[0] = 'y';
  g.node = [node];
  g.initializer = g.initializer.filter((t) => node.input.includes(t.name));
  g.valueInfo = [];
  g.input = [valueInfo('x', [2, K], DataType.FLOAT)];
  g.output = [valueInfo('y', [2, N], DataType.FLOAT)];
  return { bytes: toBinary(ModelProtoSchema, proto), K, N, ix };
}

describe('block-quantized weights (onnxruntime MatMulNBits, int4)', function () {
  this.timeout(300_000);

  it('dequantize reads the codes as onnxruntime does: x W^T equals onnxruntime\'s output within the float32 bound of a K-term sum', async () => {
    const name = '/layers.1/mlp/down_proj/MatMul_Q4';
    const { bytes, K, N, ix } = oneNode(fixture(INT4), name);
    const w = dequantize(ix, nbitsWeight(ix.graph.node.find((x) => x.name === name)!)!);
    assert.deepEqual(w.dims, [N, K]);
    const x = Float32Array.from({ length: 2 * K }, (_, i) => Math.sin(1.7 * i) * 2);
    const session = await ort.InferenceSession.create(bytes);
    const y = (await session.run({ x: new ort.Tensor('float32', x, [2, K]) })).y!.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      for (let n = 0; n < N; n++) {
        let exact = 0, abs = 0;
        for (let k = 0; k < K; k++) { exact += x[r * K + k]! * w.data[n * K + k]!; abs += Math.abs(x[r * K + k]! * w.data[n * K + k]!); }
        // Rounding of a K-term float32 dot product: |err| <= K * u * sum |x_k w_k| (u = 2^-24), plus the final rounding.
        assert.ok(Math.abs(y[r * N + n]! - exact) <= (K + 1) * EPS32 * abs, `row ${r} col ${n}: ${y[r * N + n]} vs ${exact}`);
      }
    }
  });

  it('cutting rows of N, or whole blocks of K, copies codes, scales and zero points: the cut weight dequantizes to exactly the kept part; a split block is refused in one line', () => {
    const m = loadModel(fixture(INT4));
    const ix = new GraphIndex(m.proto.graph!, m.ext);
    const node = ix.graph.node.find((x) => x.name === '/layers.0/mlp/down_proj/MatMul_Q4')!;
    const q = nbitsWeight(node)!;
    assert.deepEqual([q.K, q.N, q.bits, q.blockSize, q.blocks], [256, 128, 4, 32, 8]);
    const full = dequantize(ix, q);
    const store = new TensorStore(ix);
    const attrs: Record<string, number> = {};
    const rows = [0, 3, 4, 90, 127];
    const copy = { ...node, input: [...node.input] };
    cutNBits(ix, store, nbitsWeight(copy)!, 'out', rows, (k, v) => { attrs[k] = v; });
    assert.deepEqual(attrs, { N: 5 });
    const cix = new GraphIndex(m.proto.graph!, m.ext);
    const outCut = dequantize(cix, { ...nbitsWeight(copy)!, N: 5 });
    assert.deepEqual(Array.from(outCut.data), Array.from(take(full, 0, rows).data));
    const keepK = [...Array.from({ length: 32 }, (_, j) => 32 + j), ...Array.from({ length: 64 }, (_, j) => 192 + j)];
    assert.deepEqual(wholeBlocks(q, keepK), [1, 6, 7]);
    const copyK = { ...node, input: [...node.input] };
    const attrsK: Record<string, number> = {};
    cutNBits(ix, store, nbitsWeight(copyK)!, 'in', keepK, (k, v) => { attrsK[k] = v; });
    assert.deepEqual(attrsK, { K: 96 });
    const kix = new GraphIndex(m.proto.graph!, m.ext);
    assert.deepEqual(tensorShape(kix.constant(copyK.input[1]!)!), [128, 3, 16]);
    const inCut = dequantize(kix, { ...nbitsWeight(copyK)!, K: 96, blocks: 3 });
    assert.deepEqual(Array.from(inCut.data), Array.from(take(full, 1, keepK).data));
    assert.throws(() => cutNBits(ix, store, q, 'in', keepK.slice(1), () => undefined), (e: unknown) => e instanceof OptinError && /MatMul_Q4.*blocks of 32 input rows/.test(e.message) && !e.message.includes('\n'));
  });

  it('found as 4 causal layers of 2 key/value groups; the feed-forward blocks, quantized along their neurons, are cut in whole blocks of 32 and say so; parameters count K x N per weight; the panel shows the note', async () => {
    const m = loadModel(fixture(INT4));
    const st = await detectStructure(m);
    assert.equal(st.architecture, 'decoder');
    assert.deepEqual(st.layers.map((l) => [l.attention!.heads, l.attention!.group, l.attention!.output.op, l.ffn?.width, l.ffn?.down.blockSize, l.ffn?.down.op]), Array.from({ length: 4 }, () => [2, 4, 'MatMulNBits', 256, 32, 'MatMulNBits']));
    assert.equal(st.notes?.length, 1);
    assert.match(st.notes![0]!, /the neurons of 4 feed-forward blocks .*down_proj.* are cut in whole blocks of 32/);
    assert.equal(countParameters(m.proto), countParameters(loadModel(fixture(`${DIR}/model.onnx`)).proto));
    assert.equal(toSummary(await inspectModel(fixture(INT4))).note, st.notes![0]);
  });

  it('OPTIN scores key/value groups and neurons on the int4 model; cutting them slices packed rows of N and whole blocks of K, rewrites N and K, and equals masking them; a split block is refused', async () => {
    const m = loadModel(fixture(INT4));
    const st = await detectStructure(m);
    const batch = await loadCalibration(m.path, st, { data: fixture(`${DIR}/train.txt`), samples: 6 });
    const scores = await scoreModel(m, st, batch);
    for (const x of [scores.heads.flat(), scores.neurons.flat()]) assert.ok(x.every((s) => Number.isFinite(s) && s >= 0) && x.some((s) => s > 0));
    const all = Array.from({ length: 256 }, (_, j) => j);
    const blocks = (...b: number[]): number[] => b.flatMap((k) => all.slice(32 * k, 32 * k + 32));
    const keep: KeepSet = { heads: [[1], [0, 1], [], [0]], neurons: [blocks(1, 6, 7), all, blocks(0), []] };
    const proto = applyKeep(m, st, keep);
    const byName = new Map(proto.graph!.node.map((n) => [n.name, n]));
    const q0 = byName.get('/layers.0/self_attn/q_proj/MatMul_Q4')!, k0 = byName.get('/layers.0/self_attn/k_proj/MatMul_Q4')!, o0 = byName.get('/layers.0/self_attn/o_proj/MatMul_Q4')!;
    assert.deepEqual([attrInt(q0, 'N', 0), attrInt(k0, 'N', 0), attrInt(o0, 'K', 0), attrInt(o0, 'N', 0)], [64, 16, 64, 128]);
    const mlp = (l: number, p: string): NodeProto => byName.get(`/layers.${l}/mlp/${p}_proj/MatMul_Q4`)!;
    assert.deepEqual([attrInt(mlp(0, 'gate'), 'N', 0), attrInt(mlp(0, 'up'), 'N', 0), attrInt(mlp(0, 'down'), 'K', 0), attrInt(mlp(2, 'down'), 'K', 0)], [96, 96, 96, 32]);
    const pix = new GraphIndex(proto.graph!, m.ext);
    assert.deepEqual(tensorShape(pix.constant(o0.input[1]!)!), [128, 2, 16]);
    assert.deepEqual(tensorShape(pix.constant(q0.input[1]!)!), [64, 4, 16]);
    const pruned = { ...m, path: `${m.path} (pruned)`, proto };
    const macs = st.layers.reduce((a, l, i) => a + layerMacs(l, batch.meanLength, st.hidden, keep.heads[i]!.length, keep.neurons[i]!.length).total, 0);
    const v = await verifyPruned(m, st, pruned, keep, batch, { macs, seqLen: batch.meanLength });
    assert.ok(v.maxAbsDiff <= v.tolerance, `pruned vs masked original ${v.maxAbsDiff} > ${v.tolerance}`);
    assert.throws(() => applyKeep(m, st, { ...keep, neurons: [all.slice(1), all, all, all] }), (e: unknown) => e instanceof OptinError && /\/layers\.0\/mlp\/down_proj\/MatMul_Q4.*blocks of 32 input rows; the cut keeps part of a block \(255 of 256 rows\)/.test(e.message));
    await assert.rejects(tuneMasks(m, st, keep, batch), (e: unknown) => e instanceof OptinError && /--tune.*"\/layers\.0\/self_attn\/o_proj\/MatMul_Q4".*block-quantized/.test(e.message));
  });

  it('a pruned int4 model left with one key/value group keeps it as one unit (its query heads own 16 rows each, blocks of 32); a unit narrower than a block is refused in one line naming the output projection', async () => {
    const m = loadModel(fixture(INT4));
    const st = await detectStructure(m);
    const all = Array.from({ length: 256 }, (_, j) => j);
    const proto = applyKeep(m, st, { heads: [[0, 1], [0, 1], [1], [0, 1]], neurons: st.layers.map(() => all) });
    const again = await detectStructure({ ...m, proto });
    assert.deepEqual(again.layers.map((l) => [l.attention!.heads, l.attention!.group, l.attention!.vHeadSize]), [[2, 4, 64], [2, 4, 64], [1, 4, 64], [2, 4, 64]]);
    // Layer 2's output projection re-blocked to 128 input rows (one block a row): a key/value group owns 64.
    const wide = clone(ModelProtoSchema, m.proto);
    const o = wide.graph!.node.find((n) => n.name === '/layers.2/self_attn/o_proj/MatMul_Q4')!;
    const tensor = (name: string): TensorProto => wide.graph!.initializer.find((t) => t.name === name)!;
    const codes = tensor(o.input[1]!), scales = tensor(o.input[2]!), zp = tensor(o.input[3]!);
    codes.dims = [128n, 1n, 64n];
    scales.rawData = new Uint8Array(new Float32Array(Array.from({ length: 128 }, (_, n) => tensorFloat32(scales)[4 * n]!)).buffer);
    scales.dims = [128n];
    zp.rawData = Uint8Array.from({ length: 128 }, (_, n) => zp.rawData[2 * n]! & 15);
    zp.dims = [128n];
    o.attribute.find((a) => a.name === 'block_size')!.i = 128n;
    await assert.rejects(() => detectStructure({ ...m, proto: wide }), (e: unknown) => e instanceof OptinError && /\/layers\.2\/self_attn\/o_proj\/MatMul_Q4 \(MatMulNBits\) is quantized in blocks of 128 input rows, but one key\/value group owns 64/.test(e.message) && !e.message.includes('\n'));
  });

  it('optin prune writes a smaller verified int4 model with whole blocks of neurons cut, says so, suggests no repair it cannot do, and leaves the original byte-identical', () => {
    const dir = tempDir();
    const src = fixture(INT4);
    const before = sha256(src);
    const out = path.join(dir, 'pruned.onnx');
    const r = optin('prune', src, '--budget', '0.9', '--data', fixture(`${DIR}/train.txt`), '--samples', '8', '--no-bench', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /verified +max \|pruned - masked original\|/);
    assert.match(r.stdout, /note +the neurons of 4 feed-forward blocks .* are cut in whole blocks of 32/);
    assert.doesNotMatch(r.stdout, /--tune/);
    assert.ok(fs.statSync(out).size < fs.statSync(src).size);
    assert.equal(sha256(src), before);
    const tuned = optin('prune', src, '--budget', '0.9', '--data', fixture(`${DIR}/train.txt`), '--samples', '8', '--no-bench', '--tune', '--out', path.join(dir, 'tuned.onnx'));
    assert.equal(tuned.code, 2);
    assert.match(tuned.stderr, /the repair \(--tune\) rewrites the weights of "\/layers\.0\/self_attn\/o_proj\/MatMul_Q4", which are block-quantized/);
    assert.doesNotMatch(tuned.stderr, /scoring/, 'refused before scoring');
    const pruned = loadModel(out);
    const downs = pruned.proto.graph!.node.filter((n) => n.opType === 'MatMulNBits' && n.name.includes('down_proj')).map((n) => attrInt(n, 'K', 0));
    assert.ok(downs.every((k) => k % 32 === 0) && downs.reduce((a, k) => a + k, 0) < 4 * 256, `kept neurons per layer ${downs.join('/')}`);
  });
});
