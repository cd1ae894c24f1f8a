import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { discoverData, testSplitFor } from '../../src/engine/data/discover';
import { tempDir } from './helpers';

function write(root: string, rel: string, text = 'x'): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}
function images(root: string, rel: string, classes: string[], n: number): void {
  for (const c of classes) for (let i = 0; i < n; i++) write(root, path.join(rel, c, `${i}.png`));
}

describe('calibration data discovery', () => {
  it('beside the model: a text model is offered text files only, training data first, and told which folders were left out', () => {
    const dir = tempDir();
    for (const f of ['model.onnx', 'dev.tsv', 'extra.jsonl', 'LICENSE.txt', 'README.txt', 'weights.bin', 'tokenizer.json']) write(dir, f);
    write(dir, 'sst2-train.tsv', 'sentence\tlabel\nok\t1\n');
    images(dir, 'digits-train', ['0', '1'], 3);
    write(dir, 'flat-images/a.jpg');
    write(dir, 'data/more.csv', 'text,label\nhi,0\n');
    write(dir, '.git/x.txt');
    const c = discoverData(path.join(dir, 'model.onnx'), 'text');
    const got = c.fits.map((f) => path.relative(dir, f.path));
    assert.deepEqual(got, ['sst2-train.tsv', 'data/more.csv', 'extra.jsonl', 'dev.tsv'], 'training split first, then the larger, the dev split last');
    assert.deepEqual(c.fits.map((f) => f.split), ['train', 'other', 'other', 'test']);
    assert.deepEqual([...c.skipped].sort(), ['digits-train/', 'flat-images/']);
  });

  it('beside the model: a vision model is offered image folders (not their class subfolders) and feeds, the training folder first', () => {
    const dir = tempDir();
    write(dir, 'model.onnx');
    write(dir, 'sst2-train.tsv');
    write(dir, 'extra.jsonl');
    images(dir, 'digits-train', ['0', '1'], 3);
    write(dir, 'flat-images/a.jpg');
    const c = discoverData(path.join(dir, 'model.onnx'), 'vision');
    assert.deepEqual(c.fits.map((f) => path.relative(dir, f.path)), ['digits-train', 'extra.jsonl', 'flat-images']);
    assert.match(c.fits[0]!.what, /image folder, 6 images/);
    assert.deepEqual(c.skipped, ['sst2-train.tsv']);
  });

  it('models and data in sibling folders of a workspace: the right data first for a text, a vision and a CNN model; test splits last', () => {
    const ws = tempDir();
    write(ws, 'models/bert-sst2/model-opset17.onnx');
    write(ws, 'models/bert-sst2/tokenizer.json');
    write(ws, 'models/vit-digits/model-opset17.onnx');
    write(ws, 'models/resnet/model.onnx');
    write(ws, 'data/sst2/train.tsv', 'sentence\tlabel\n'.padEnd(400, 'x'));
    write(ws, 'data/sst2/test.tsv', 'sentence\tlabel\n'.padEnd(900, 'x'));
    images(ws, 'data/digits/train', ['0', '1', '2'], 4);
    images(ws, 'data/digits/test', ['0', '1', '2'], 9);
    write(ws, 'notes/readme.md');
    for (const [model, modality, first, last] of [
      ['models/bert-sst2/model-opset17.onnx', 'text', 'data/sst2/train.tsv', 'data/sst2/test.tsv'],
      ['models/vit-digits/model-opset17.onnx', 'vision', 'data/digits/train', 'data/digits/test'],
      ['models/resnet/model.onnx', 'vision', 'data/digits/train', 'data/digits/test'],
    ] as const) {
      const c = discoverData(path.join(ws, model), modality, [ws]);
      const got = c.fits.map((f) => path.relative(ws, f.path));
      assert.equal(got[0], first, `${model}: ${got.join(', ')}`);
      assert.equal(got[got.length - 1], last, `${model}: ${got.join(', ')}`);
      assert.equal(c.fits[0]!.nearness, 'sibling');
      assert.equal(got.length, 2, `${model}: ${got.join(', ')}`);
    }
  });

  it('data elsewhere in the workspace is found, after what is near; without a workspace the model folder\'s siblings are not searched', () => {
    const ws = tempDir();
    write(ws, 'projects/a/models/bert/model.onnx');
    write(ws, 'projects/a/models/bert/calib.txt');
    write(ws, 'projects/a/data/sst2/train.tsv');
    write(ws, 'datasets/text/train.tsv');
    const model = path.join(ws, 'projects/a/models/bert/model.onnx');
    const all = discoverData(model, 'text', [ws]).fits;
    assert.deepEqual(all.map((f) => [path.relative(ws, f.path), f.nearness]), [
      ['projects/a/models/bert/calib.txt', 'beside'], ['projects/a/data/sst2/train.tsv', 'sibling'], ['datasets/text/train.tsv', 'workspace'],
    ]);
    assert.deepEqual(discoverData(model, 'text').fits.map((f) => path.relative(ws, f.path)), ['projects/a/models/bert/calib.txt']);
  });

  it('the test split that goes with a training file or folder', () => {
    const dir = tempDir();
    write(dir, 'train.tsv');
    write(dir, 'test.tsv');
    write(dir, 'sst2-train.tsv');
    write(dir, 'sst2-dev.tsv');
    images(dir, 'train', ['0'], 1);
    images(dir, 'val', ['0'], 1);
    write(dir, 'other.tsv');
    assert.equal(testSplitFor(path.join(dir, 'train.tsv')), path.join(dir, 'test.tsv'));
    assert.equal(testSplitFor(path.join(dir, 'sst2-train.tsv')), path.join(dir, 'sst2-dev.tsv'));
    assert.equal(testSplitFor(path.join(dir, 'train')), path.join(dir, 'val'));
    assert.equal(testSplitFor(path.join(dir, 'other.tsv')), undefined);
    assert.equal(testSplitFor(path.join(dir, 'test.tsv')), undefined);
  });
});
