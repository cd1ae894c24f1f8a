import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { create, equals } from '@bufbuild/protobuf';
import { loadModel, decodeModel } from '../../src/engine/onnx/model';
import { saveModel, serializeModel, sessionBytes } from '../../src/engine/onnx/writer';
import { createSession, runSession } from '../../src/engine/runtime/session';
import { tensorFloat32, tensorInts, elementCount } from '../../src/engine/onnx/tensor';
import { DataLocation, DataType, ModelProtoSchema, StringStringEntryProtoSchema, TensorProtoSchema } from '../../src/engine/onnx/schema';
import { expectOptinError, feedsFor, fixture, runModel, sha256, tempDir, FIXTURES } from './helpers';

const RUNNABLE = [
  'bert-sst2/model-opset17.onnx',
  'vit-digits/model-opset14.onnx',
  'vit-digits/model-opset17.onnx',
  'optimum-tiny-distilbert-sst2/model.onnx',
  'optimum-tiny-distilbert-sst2/model.ort-fused.onnx',
  'ort-bert-toy/model.onnx',
  'ort-bert-toy/model.ort-fused.onnx',
  'keras2onnx-tfbert-mrpc/model.onnx',
  'keras2onnx-tfbert-mrpc/model.ort-fused.onnx',
  'torch-bert-like-random/model-opset14.onnx',
  'torch-bert-like-random/model-opset17.onnx',
  'torch-bert-like-random/model-opset17.ort-fused.onnx',
  'ort-fused-attention/attention-opt.onnx',
  'ort-fused-attention/attention-mha.onnx',
  'ort-fused-attention/attention-varied-qkv-opt.onnx',
  'ort-fused-attention/bert-3d-attention-opt.onnx',
  'ort-fused-attention/pruned-attention-opt.onnx',
  'gpt2-decoder/model.onnx',
];

async function sameOutputs(a: string | Uint8Array, b: string | Uint8Array): Promise<void> {
  const s = typeof a === "string" ? await ort.InferenceSession.create(a) : await ort.InferenceSession.create(a);
  const feeds = feedsFor(s);
  await s.release();
  const [x, y] = [await runModel(a, feeds), await runModel(b, feeds)];
  assert.deepEqual(Object.keys(y).sort(), Object.keys(x).sort());
  for (const k of Object.keys(x)) assert.deepEqual(y[k], x[k], `output ${k} differs`);
}

describe('ONNX model IO', () => {
  for (const rel of RUNNABLE) {
    it(`round-trips ${rel}: same content, identical onnxruntime outputs`, async () => {
      const src = fixture(rel);
      const before = sha256(src);
      const m = loadModel(src);
      const out = path.join(tempDir(), 'copy.onnx');
      assert.deepEqual(saveModel(m, out), [out]);
      const back = loadModel(out);
      assert.ok(equals(ModelProtoSchema, loadModel(src).proto, back.proto), 'decoded protos differ');
      await sameOutputs(src, out);
      assert.equal(sha256(src), before, 'input file was modified');
    });
  }

  it('writes and reads external data, and inlines it again', async () => {
    const dir = tempDir();
    const ext = path.join(dir, 'ext.onnx');
    const files = saveModel(loadModel(fixture('torch-bert-like-random/model-opset17.onnx')), ext, { externalData: true });
    assert.deepEqual(files, [ext, `${ext}.data`]);
    const m = loadModel(ext);
    assert.ok(m.usesExternalData);
    assert.ok(fs.statSync(ext).size < 20_000, 'weights should live in the side file');
    await sameOutputs(fixture('torch-bert-like-random/model-opset17.onnx'), ext);
    const moved = path.join(tempDir(), 'moved.onnx');
    saveModel(m, moved);
    assert.ok(loadModel(moved).usesExternalData, 'input with external data keeps external data');
    await sameOutputs(ext, moved);
    const inline = serializeModel(m);
    await sameOutputs(ext, inline);
  });

  it('opens a session on an external-data model without copying its weights (the side file is read by onnxruntime)', async () => {
    const src = fixture('torch-bert-like-random/model-opset17.onnx');
    const ext = path.join(tempDir(), 'ext.onnx');
    saveModel(loadModel(src), ext, { externalData: true });
    const m = loadModel(ext);
    const sb = sessionBytes(m);
    assert.equal(sb.externalFolder, path.dirname(ext));
    assert.ok(sb.bytes.byteLength < 20_000, `session bytes ${sb.bytes.byteLength} should not hold the weights`);
    assert.equal(sessionBytes(loadModel(src)).externalFolder, undefined, 'an inline model needs no folder');
    const s = await createSession(sb, { label: ext });
    try {
      const feeds = feedsFor(s.session);
      const got = await runSession(s.session, feeds, ext);
      const want = await runModel(src, feeds);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(Array.from(got[k]!.data as Float32Array, Number), v, k);
    } finally {
      await s.session.release();
    }
  });

  it('refuses external data that escapes the model folder', async () => {
    const m = loadModel(fixture('torch-bert-like-random/model-opset17.onnx'));
    const t = m.proto.graph!.initializer.find((x) => x.dims.length === 2)!;
    t.rawData = new Uint8Array(0);
    t.dataLocation = DataLocation.EXTERNAL;
    t.externalData = [create(StringStringEntryProtoSchema, { key: 'location', value: '../../etc/passwd' })];
    await expectOptinError(() => tensorFloat32(t, m.ext), 'io', /outside the model folder/, new RegExp(t.name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  });

  it('reports a missing or truncated external data file', async () => {
    const dir = tempDir();
    const ext = path.join(dir, 'ext.onnx');
    saveModel(loadModel(fixture('torch-bert-like-random/model-opset17.onnx')), ext, { externalData: true });
    fs.truncateSync(`${ext}.data`, 1000);
    const m = loadModel(ext);
    const big = m.proto.graph!.initializer.find((t) => t.dataLocation === DataLocation.EXTERNAL && elementCount(t.dims) > 1000)!;
    await expectOptinError(() => tensorFloat32(big, m.ext), 'corrupt', /truncated/);
    fs.rmSync(`${ext}.data`);
    await expectOptinError(() => tensorFloat32(big, m.ext), 'io', /missing/);
  });

  it('views unaligned raw_data correctly (copies before Float32Array)', () => {
    const buf = new Uint8Array(4 * 3 + 1);
    new DataView(buf.buffer).setFloat32(1, 1.5, true);
    new DataView(buf.buffer).setFloat32(5, -2, true);
    new DataView(buf.buffer).setFloat32(9, 3.25, true);
    const t = create(TensorProtoSchema, { name: 'u', dims: [3n], dataType: DataType.FLOAT, rawData: buf.subarray(1) });
    assert.deepEqual(Array.from(tensorFloat32(t)), [1.5, -2, 3.25]);
  });

  it('moves typed float_data/int64_data into raw bytes', () => {
    const f = create(TensorProtoSchema, { name: 'f', dims: [2n], dataType: DataType.FLOAT, floatData: [0.5, 4] });
    assert.deepEqual(Array.from(tensorFloat32(f)), [0.5, 4]);
    assert.equal(f.floatData.length, 0);
    assert.equal(f.rawData.byteLength, 8);
    const i = create(TensorProtoSchema, { name: 'i', dims: [2n], dataType: DataType.INT64, int64Data: [3n, -(2n ** 40n)] });
    assert.deepEqual(tensorInts(i), [3, -(2 ** 40)]);
  });

  it('refuses int64 dims that would lose precision', async () => {
    await expectOptinError(() => elementCount([2n ** 60n]), 'unsupported', /does not fit/);
  });

  describe('bad files', () => {
    const dir = tempDir();
    const bert = fs.readFileSync(fixture('torch-bert-like-random/model-opset17.onnx'));
    const write = (name: string, data: Uint8Array | string): string => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, data);
      return p;
    };
    it('empty file', async () => {
      await expectOptinError(() => loadModel(write('empty.onnx', '')), 'corrupt', /empty\.onnx is empty/);
    });
    it('truncated file (half of a real model)', async () => {
      await expectOptinError(() => loadModel(write('half.onnx', bert.subarray(0, bert.length >> 1))), 'corrupt', /half\.onnx/, /truncated or corrupt/);
    });
    it('truncated file (cut inside the header)', async () => {
      await expectOptinError(() => loadModel(write('head.onnx', bert.subarray(0, 40))), 'corrupt', /head\.onnx/);
    });
    it('random bytes', async () => {
      const junk = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251);
      await expectOptinError(() => loadModel(write('junk.onnx', junk)), 'corrupt', /junk\.onnx/);
    });
    it('a text file', async () => {
      await expectOptinError(() => loadModel(write('text.onnx', 'hello, this is not a model\n')), 'corrupt', /text\.onnx/);
    });
    it('missing file', async () => {
      await expectOptinError(() => loadModel(path.join(dir, 'nope.onnx')), 'io', /nope\.onnx/, /ENOENT/);
    });
    it('a folder', async () => {
      await expectOptinError(() => loadModel(FIXTURES), 'io', /is a folder/);
    });
    it('in-memory bytes decode with the same checks', async () => {
      await expectOptinError(() => decodeModel(new Uint8Array(0), 'mem'), 'corrupt', /mem is empty/);
    });
  });

  it('refuses to overwrite the input and leaves it byte-identical', async () => {
    const dir = tempDir();
    const src = path.join(dir, 'm.onnx');
    fs.copyFileSync(fixture('torch-bert-like-random/model-opset17.onnx'), src);
    const before = sha256(src);
    await expectOptinError(() => saveModel(loadModel(src), src), 'usage', /refusing to overwrite the input/);
    assert.equal(sha256(src), before);
    assert.deepEqual(fs.readdirSync(dir), ['m.onnx'], 'no temp files left behind');
  });

  it('leaves no partial file when the destination is not writable', async () => {
    const dir = path.join(tempDir(), 'missing-subdir');
    await expectOptinError(() => saveModel(loadModel(fixture('ort-bert-toy/model.onnx')), path.join(dir, 'x.onnx')), 'io', /cannot write/);
    assert.ok(!fs.existsSync(dir));
  });
});
