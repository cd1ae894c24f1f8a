import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { OPTIN_ID, api, waitFor, workspaceModel } from './util';

describe('a hybrid model (Swin stages + FPN-style segmentation head) in a real VS Code', function () {
  this.timeout(300_000);
  const model = workspaceModel('swin/swin-fpn-scenes.onnx');

  it('the palette preset plans heads, neurons and the head conv\'s channels together; the tree names the channel group; Apply writes a smaller model', async () => {
    await vscode.extensions.getExtension(OPTIN_ID)!.activate();
    await vscode.commands.executeCommand('optin.prune40', model);
    const plan = await waitFor(() => api().sessions.find(model.fsPath)?.plan, 240_000, 'a plan');
    assert.equal(plan.budget, 0.6);
    assert.deepEqual(plan.model.hybrid?.names, ['fuse.0']);
    assert.deepEqual(plan.model.layers.map((g) => g.heads), [3, 3, 6, 6, 0]);
    const tree = api().tree;
    const root = tree.getChildren().find((n) => tree.getTreeItem(n).label === 'swin-fpn-scenes.onnx');
    assert.ok(root, 'the model is in the OPTIN tree');
    const rows = tree.getChildren(root);
    assert.equal(rows.length, 5);
    const group = tree.getTreeItem(rows[4]!);
    assert.equal(group.label, 'fuse.0');
    assert.match(String(group.description), /^\d+\/48 channels$/);
    const out = path.join(path.dirname(model.fsPath), 'swin-fpn-scenes.optin-60.onnx');
    fs.rmSync(out, { force: true });
    await vscode.commands.executeCommand('optin.applyPlan', model);
    assert.ok(fs.existsSync(out), 'pruned model written');
    assert.ok(fs.statSync(out).size < fs.statSync(model.fsPath).size);
    const bench = await api().engine.bench([model.fsPath, out], { runs: 1, warmup: 0, batch: 2, seqLen: 8 });
    assert.equal(bench.models.length, 2, 'both load and run in onnxruntime');
  });
});
