import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { OPTIN_ID, api, waitFor, workspaceModel } from './util';

describe('OPTIN extension in a real VS Code', () => {
  it('is installed and activates', async () => {
    const ext = vscode.extensions.getExtension(OPTIN_ID);
    assert.ok(ext, `extension ${OPTIN_ID} not found`);
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  it('registers its commands', async () => {
    const all = await vscode.commands.getCommands(true);
    for (const c of ['optin.pruneModel', 'optin.prune30', 'optin.prune40', 'optin.prune50', 'optin.prune60', 'optin.latencyTarget', 'optin.openView', 'optin.applyPlan', 'optin.exportPlan', 'optin.exportModel', 'optin.cancel', 'optin.showLog']) assert.ok(all.includes(c), `${c} missing`);
  });

  it('contributes "Prune with OPTIN" to the explorer context menu for .onnx files', () => {
    const pkg = vscode.extensions.getExtension(OPTIN_ID)!.packageJSON as {
      contributes: { menus: Record<string, Array<{ command: string; when: string }>>; commands: Array<{ command: string; title: string }> };
    };
    const entry = pkg.contributes.menus['explorer/context']!.find((m) => m.command === 'optin.pruneModel');
    assert.ok(entry);
    assert.equal(entry.when, 'resourceExtname == .onnx');
    assert.equal(pkg.contributes.commands.find((c) => c.command === 'optin.pruneModel')!.title, 'Prune with OPTIN');
  });

  it('"Open Importance View" on a model opens the OPTIN panel for it', async () => {
    const model = workspaceModel('bert-tiny.onnx');
    await vscode.commands.executeCommand('optin.openView', model);
    const tab = await waitFor(() =>
      vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label === `OPTIN: ${path.basename(model.fsPath)}`),
    );
    assert.ok(tab.input instanceof vscode.TabInputWebview);
  });

  it('analyses the model in the engine worker', async () => {
    const ext = vscode.extensions.getExtension<{ engine: { inspect(p: string): Promise<{ structure: { layers: Array<{ attention: { heads: number } }> } }> } }>(OPTIN_ID)!;
    const r = await ext.exports.engine.inspect(workspaceModel('bert-tiny.onnx').fsPath);
    assert.deepEqual(r.structure.layers.map((l) => l.attention!.heads), [4, 4]);
  });

  it('an abort inside onnxruntime ends only the engine process: Prune reports the step, the host and the next job go on', async () => {
    const crash = workspaceModel('crash.onnx');
    await vscode.commands.executeCommand('optin.prune40', crash);
    const session = await waitFor(() => api().sessions.find(crash.fsPath), 60_000, 'a session for crash.onnx');
    await waitFor(() => session.lastFailure, 120_000, 'the scoring failure');
    assert.match(session.lastFailure!, /^the engine process aborted while scoring layer 1 \(\d+ of \d+ elements\) of crash\.onnx \(it said: injected fault \(OPTIN_FAULT_INJECT\)\); nothing was written; /);
    assert.equal(session.scores, undefined);
    assert.equal(session.busy, undefined);
    const r = await api().engine.inspect(workspaceModel('bert-tiny.onnx').fsPath);
    assert.deepEqual(r.structure.layers.map((l) => l.attention!.heads), [4, 4]);
  });

  it('reports an unsupported model as an engine error, not a crash', async () => {
    const ext = vscode.extensions.getExtension<{ engine: { inspect(p: string): Promise<unknown> } }>(OPTIN_ID)!;
    await assert.rejects(ext.exports.engine.inspect(workspaceModel('gpt2-decoder.onnx').fsPath), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'decoder');
      assert.match(e.message, /decoder-only/);
      return true;
    });
  });
});
