import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/engine/onnx/model';
import { describeInterface } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { readTextExamples } from '../../src/engine/data/examples';
import { expectOptinError, fixture, tempDir, FIXTURES, optin } from './helpers';

const bertPath = fixture('bert-sst2/model-opset17.onnx');
const bert = describeInterface(loadModel(bertPath));
const vitPath = fixture('vit-digits/model-opset17.onnx');
const vit = describeInterface(loadModel(vitPath));
const dir = tempDir();
const file = (name: string, text: string | Buffer): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};

describe('calibration data', () => {
  it('tokenises SST-2 with the model tokenizer, pads to the longest, int64 feeds', async () => {
    const b = await loadCalibration(bertPath, bert, { data: path.join(FIXTURES, 'data', 'sst2', 'train.tsv'), samples: 5 });
    assert.equal(b.kind, 'text');
    assert.equal(b.batch, 5);
    const ids = b.feeds.input_ids!;
    assert.equal(ids.type, 'int64');
    assert.deepEqual(ids.dims, [5, b.seqLen]);
    assert.equal(Number(ids.data[0]), 101, 'starts with [CLS]');
    const mask = Array.from(b.feeds.attention_mask!.data as BigInt64Array, Number);
    assert.equal(mask.reduce((a, x) => a + x, 0) / 5, b.meanLength);
    assert.equal(b.labels?.length, 5);
  });

  it('reads .jsonl and .txt and sentence pairs', async () => {
    const j = readTextExamples(file('a.jsonl', '{"sentence":"good film","label":1}\n{"text":"bad","text_pair":"worse","label":0}\n'));
    assert.deepEqual(j, [{ text: 'good film', label: 1 }, { text: 'bad', textPair: 'worse', label: 0 }]);
    assert.deepEqual(readTextExamples(file('a.txt', 'one\ntwo\n\n')), [{ text: 'one' }, { text: 'two' }]);
    const b = await loadCalibration(bertPath, bert, { data: path.join(dir, 'a.jsonl') });
    const types = Array.from(b.feeds.token_type_ids!.data as BigInt64Array, Number);
    assert.ok(types.slice(b.seqLen).includes(1), 'second segment gets token type 1');
  });

  it('truncates to --max-length and never beyond the position table', async () => {
    const long = 'word '.repeat(300);
    const b = await loadCalibration(bertPath, bert, { data: file('long.txt', long), maxLength: 16 });
    assert.equal(b.seqLen, 16);
    const c = await loadCalibration(bertPath, bert, { data: file('long2.txt', long), maxLength: 4000 });
    assert.equal(c.seqLen, 128);
  });

  it('decodes an ImageFolder with the preprocessor config, grayscale for 1-channel models', async () => {
    const b = await loadCalibration(vitPath, vit, { data: path.join(FIXTURES, 'data', 'digits', 'test'), samples: 20 });
    assert.deepEqual(b.feeds.pixel_values!.dims, [20, 1, 8, 8]);
    assert.equal(b.seqLen, 17);
    assert.deepEqual([...new Set(b.labels)].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'first samples cover every class');
    const px = b.feeds.pixel_values!.data as Float32Array;
    assert.ok(Math.min(...px) >= -1 && Math.max(...px) <= 1, 'normalised with mean 0.5, std 0.5');
  });

  it('eval reads images with the model\'s preprocessor config, else its reference\'s; with neither it refuses instead of guessing', () => {
    const a = tempDir(), b = tempDir();
    fs.copyFileSync(fixture('resnet-mnist/model-opset17.onnx'), path.join(a, 'model.onnx'));
    fs.copyFileSync(fixture('resnet-mnist/model-opset17.onnx'), path.join(b, 'copy.onnx'));
    // Pixels in [0, 1] instead of the default mean 0.5 / std 0.5: a guess would give other inputs.
    fs.writeFileSync(path.join(a, 'preprocessor_config.json'), JSON.stringify({ size: { height: 28, width: 28 }, do_normalize: false, rescale_factor: 1 / 255 }));
    const test = path.join(FIXTURES, 'data', 'mnist', 'test');
    const json = (r: { code: number; stdout: string; stderr: string }): { accuracy: number; reference?: { agreement: number } } => {
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const own = json(optin('eval', path.join(a, 'model.onnx'), '--data', test, '--samples', '100', '--json'));
    const usual = json(optin('eval', fixture('resnet-mnist/model-opset17.onnx'), '--data', test, '--samples', '100', '--json'));
    assert.notEqual(own.accuracy, usual.accuracy, 'the two preprocessings give different accuracies');
    const viaReference = json(optin('eval', path.join(b, 'copy.onnx'), '--data', test, '--samples', '100', '--reference', path.join(a, 'model.onnx'), '--json'));
    assert.equal(viaReference.accuracy, own.accuracy);
    assert.equal(viaReference.reference!.agreement, 1);
    const given = json(optin('eval', path.join(b, 'copy.onnx'), '--data', test, '--samples', '100', '--preprocessor', path.join(a, 'preprocessor_config.json'), '--json'));
    assert.equal(given.accuracy, own.accuracy);
    const none = optin('eval', path.join(b, 'copy.onnx'), '--data', test, '--samples', '100');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no preprocessor_config\.json beside .*copy\.onnx: .*pass --preprocessor FILE/);
  });

  it('eval of a copy written elsewhere tokenises with its reference\'s tokenizer', () => {
    const copy = path.join(tempDir(), 'copy.onnx');
    fs.copyFileSync(bertPath, copy);
    const test = path.join(FIXTURES, 'data', 'sst2', 'test.tsv');
    const alone = optin('eval', copy, '--data', test, '--samples', '20');
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /no tokenizer\.json in .*pass --tokenizer DIR/);
    const r = optin('eval', copy, '--data', test, '--samples', '20', '--reference', bertPath, '--json');
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout) as { accuracy: number; reference: { accuracy: number; agreement: number } };
    assert.equal(e.reference.agreement, 1);
    assert.equal(e.accuracy, e.reference.accuracy);
  });

  it('labels no data as synthetic with a warning', async () => {
    const b = await loadCalibration(bertPath, bert, { samples: 3 });
    assert.equal(b.kind, 'synthetic');
    assert.match(b.warning!, /synthetic/);
  });

  describe('bad data gets a specific error', () => {
    it('missing text column', async () => {
      await expectOptinError(() => readTextExamples(file('x.tsv', 'foo\tlabel\nhello\t1\n')), 'data', /x\.tsv/, /no text column/);
    });
    it('empty file', async () => {
      await expectOptinError(() => readTextExamples(file('e.tsv', '')), 'data', /e\.tsv is empty/);
      await expectOptinError(() => readTextExamples(file('e.txt', '\n\n')), 'data', /holds no examples/);
    });
    it('labels that are not integers', async () => {
      await expectOptinError(() => readTextExamples(file('l.tsv', 'sentence\tlabel\nok\tpositive\n')), 'data', /l\.tsv:2/, /label "positive" is not an integer/);
    });
    it('invalid JSON line', async () => {
      await expectOptinError(() => readTextExamples(file('b.jsonl', '{"text":"a"}\n{oops\n')), 'data', /b\.jsonl:2: not valid JSON/);
    });
    it('unsupported file type', async () => {
      await expectOptinError(() => readTextExamples(file('d.parquet', 'x')), 'data', /unsupported calibration file type/);
    });
    it('missing tokenizer', async () => {
      const m = path.join(dir, 'm');
      fs.mkdirSync(m);
      fs.copyFileSync(bertPath, path.join(m, 'model.onnx'));
      await expectOptinError(() => loadCalibration(path.join(m, 'model.onnx'), bert, { data: file('t.txt', 'hi\n') }), 'data', /no tokenizer\.json/, /--tokenizer/);
    });
    it('unreadable image', async () => {
      const imgs = path.join(dir, 'imgs');
      fs.mkdirSync(path.join(imgs, 'cat'), { recursive: true });
      fs.writeFileSync(path.join(imgs, 'cat', 'broken.png'), 'not a png');
      await expectOptinError(() => loadCalibration(vitPath, vit, { data: imgs }), 'data', /cannot decode image .*broken\.png/);
    });
    it('a folder without images', async () => {
      const none = path.join(dir, 'none');
      fs.mkdirSync(none);
      await expectOptinError(() => loadCalibration(vitPath, vit, { data: none }), 'data', /holds no images/);
    });
  });
});
