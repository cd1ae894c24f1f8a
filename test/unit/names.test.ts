import * as assert from 'node:assert/strict';
import { distinctNames, freeName } from '../../src/extension/names';

describe('names of models in titles and the tree', () => {
  it('a unique file name stays alone; same-named models get the folders that tell them apart', () => {
    const n = distinctNames(['/w/bert-sst2/model-opset17.onnx', '/w/vit/model-opset17.onnx', '/w/resnet.onnx', '/x/a/bert/model.onnx', '/x/b/bert/model.onnx']);
    assert.equal(n.get('/w/resnet.onnx'), 'resnet.onnx');
    assert.equal(n.get('/w/bert-sst2/model-opset17.onnx'), 'model-opset17.onnx · bert-sst2');
    assert.equal(n.get('/w/vit/model-opset17.onnx'), 'model-opset17.onnx · vit');
    assert.equal(n.get('/x/a/bert/model.onnx'), 'model.onnx · a/bert');
    assert.equal(n.get('/x/b/bert/model.onnx'), 'model.onnx · b/bert');
  });

  it('a free name beside an existing output', () => {
    const taken = new Set(['/m/a.optin-60.onnx', '/m/a.optin-60-2.onnx']);
    assert.equal(freeName('/m/a.optin-50.onnx', (p) => taken.has(p)), '/m/a.optin-50.onnx');
    assert.equal(freeName('/m/a.optin-60.onnx', (p) => taken.has(p)), '/m/a.optin-60-3.onnx');
  });
});
