import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { OPTIN_ID, api, waitFor, workspaceModel } from './util';

describe('OPTIN workflow in a real VS Code (synthetic calibration from the workspace settings)', function () {
  this.timeout(240_000);
  const model = workspaceModel('bert-tiny.onnx');

  it('palette preset "Prune: keep 60% of MACs" scores the model and plans at budget 0.6', async () => {
    await vscode.extensions.getExtension(OPTIN_ID)!.activate();
    await vscode.commands.executeCommand('optin.prune40', model);
    const s = await waitFor(() => api().sessions.find(model.fsPath)?.plan, 120_000, 'a plan');
    assert.equal(s.budget, 0.6);
    assert.ok(s.macs.ratio <= 0.6 + 1e-9 && s.macs.ratio > 0.4, `ratio ${s.macs.ratio}`);
    assert.deepEqual(s.scores.heads.map((h) => h.length), [4, 4]);
  });

  it('the OPTIN tree lists the model, its layers and every head with score, rank and fate', async () => {
    const tree = api().tree;
    // Other suites' models may be in the tree too (the hybrid suite's): find this one by name.
    const root = tree.getChildren().find((n) => tree.getTreeItem(n).label === 'bert-tiny.onnx');
    assert.ok(root, `bert-tiny.onnx in the tree: ${tree.getChildren().map((n) => tree.getTreeItem(n).label).join(', ')}`);
    const layers = tree.getChildren(root);
    assert.equal(layers.length, 2);
    const heads = tree.getChildren(layers[0]);
    assert.equal(heads.length, 4);
    const item = tree.getTreeItem(heads[0]!);
    assert.match(String(item.description), /^[0-9.e+-]+ · rank \d+\/8 · (kept|pruned)$/);
    assert.equal(item.command?.command, 'optin.revealHead');
  });

  it('Apply writes bert-tiny.optin-60.onnx beside the model; it loads and runs in onnxruntime', async () => {
    const out = path.join(path.dirname(model.fsPath), 'bert-tiny.optin-60.onnx');
    fs.rmSync(out, { force: true });
    const before = fs.readFileSync(model.fsPath);
    await vscode.commands.executeCommand('optin.applyPlan', model);
    assert.ok(fs.existsSync(out), 'pruned model written');
    assert.ok(fs.statSync(out).size < before.length);
    assert.ok(before.equals(fs.readFileSync(model.fsPath)), 'original untouched');
    const bench = await api().engine.bench([model.fsPath, out], { runs: 1, warmup: 0, batch: 2, seqLen: 8 });
    assert.equal(bench.models.length, 2);
    const inspect = await api().engine.inspect(out);
    assert.ok(inspect.macs.total < (await api().engine.inspect(model.fsPath)).macs.total);
  });

  it('exports the plan as JSON and the scores as CSV', async () => {
    const dir = path.dirname(model.fsPath);
    const plan = path.join(dir, 'bert-tiny.optin-plan.json');
    const csv = path.join(dir, 'bert-tiny.optin-scores.csv');
    await vscode.commands.executeCommand('optin.exportPlan', model, plan);
    await vscode.commands.executeCommand('optin.exportScores', model, csv);
    const j = JSON.parse(fs.readFileSync(plan, 'utf8'));
    assert.equal(j.schema, 'optin-plan');
    assert.equal(j.budget, 0.6);
    const lines = fs.readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'layer,kind,index,score,rank,kept');
    const s = api().sessions.find(model.fsPath)!.scores!;
    assert.equal(lines.length, 1 + s.heads.flat().length + s.neurons.flat().length);
  });

  it('hovers and CodeLenses on the exported plan show each head\'s score, rank and fate', async () => {
    const plan = vscode.Uri.file(path.join(path.dirname(model.fsPath), 'bert-tiny.optin-plan.json'));
    const doc = await vscode.workspace.openTextDocument(plan);
    await vscode.window.showTextDocument(doc);
    const text = doc.getText();
    const at = text.indexOf('"heads"', text.indexOf('"scores"'));
    const firstNumber = text.slice(at).search(/[-0-9]/) + at;
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', plan, doc.positionAt(firstNumber + 1));
    const md = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : (c as vscode.MarkdownString).value))).join('\n');
    assert.match(md, /OPTIN\*\* layer 0, head 0: importance [0-9.e+-]+, rank \d+ of 8 heads, \*\*(kept|pruned)\*\* \(keep 60% of MACs\)/);
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', plan);
    assert.ok(lenses.some((l) => /^OPTIN: keeps \d+\/8 heads, \d+\/\d+ neurons, [0-9.]+% of MACs \(plan: keep 60% of MACs\)$/.test(l.command?.title ?? '')), lenses.map((l) => l.command?.title).join(' | '));
  });

  it('opens .onnx files in the read-only "OPTIN Model Summary" editor on request', async () => {
    await vscode.commands.executeCommand('vscode.openWith', model, 'optin.modelSummary');
    const tab = await waitFor(() => vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.input instanceof vscode.TabInputCustom && t.input.viewType === 'optin.modelSummary'));
    assert.ok(tab);
  });

  it('contributes the documented settings', () => {
    const c = vscode.workspace.getConfiguration('optin');
    for (const k of ['defaultBudget', 'calibration.data', 'calibration.samples', 'scoringMode', 'executionProvider', 'maxSequenceLength', 'maskTuning', 'channelRepair', 'outputNaming']) {
      assert.notEqual(c.inspect(k)?.defaultValue, undefined, `optin.${k}`);
    }
    assert.equal(c.get('calibration.data'), 'synthetic', 'the test workspace setting is read');
  });
});

describe('several models at once', () => {
  it('two models scored at once (two panels) both finish with their own plans', async function () {
    this.timeout(400_000);
    const a = workspaceModel('bert-toy.onnx');
    const b = workspaceModel('bert-tiny-14.onnx');
    await Promise.all([vscode.commands.executeCommand('optin.prune50', a), vscode.commands.executeCommand('optin.prune50', b)]);
    const pa = await waitFor(() => api().sessions.find(a.fsPath)?.plan, 180_000, 'the bert-toy plan');
    const pb = await waitFor(() => api().sessions.find(b.fsPath)?.plan, 180_000, 'the bert-tiny-14 plan');
    assert.equal(pa.model.path, a.fsPath);
    assert.equal(pb.model.path, b.fsPath);
    assert.equal(pa.budget, 0.5);
    assert.equal(pb.budget, 0.5);
    assert.notEqual(pa.model.sha256, pb.model.sha256);
    assert.equal(pb.keep.heads.length, 2);
  });

  it('a decoder-only language model (Llama-style, grouped-query attention): the preset scores key/value groups and neurons; Apply writes a smaller decoder', async () => {
    const llama = workspaceModel('llama-decoder.onnx');
    await vscode.commands.executeCommand('optin.prune40', llama);
    const s = await waitFor(() => api().sessions.find(llama.fsPath)?.plan, 180_000, 'a plan for the decoder');
    assert.deepEqual(s.scores.heads.map((h) => h.length), [2, 2, 2, 2], 'one score per key/value group');
    assert.deepEqual(s.scores.neurons.map((n) => n.length), [256, 256, 256, 256]);
    const out = path.join(path.dirname(llama.fsPath), 'llama-decoder.optin-60.onnx');
    fs.rmSync(out, { force: true });
    await vscode.commands.executeCommand('optin.applyPlan', llama);
    assert.ok(fs.existsSync(out), 'pruned decoder written');
    const r = await api().engine.inspect(out);
    assert.equal(r.structure.architecture, 'decoder');
    assert.ok(r.macs.total < (await api().engine.inspect(llama.fsPath)).macs.total);
  });

  it('"Plan for a Latency Target" with optin.latencyPhase = decode times decode steps on a decoder exported with its cache (Apply writes it), and names the missing cache on one without', async function () {
    this.timeout(400_000);
    const cached = workspaceModel('llama-cached.onnx');
    const c = vscode.workspace.getConfiguration('optin');
    await c.update('latencyPhase', 'decode', vscode.ConfigurationTarget.Workspace);
    try {
      await vscode.commands.executeCommand('optin.prune30', cached);
      await waitFor(() => api().sessions.find(cached.fsPath)?.plan, 180_000, 'a plan for the cached decoder');
      await vscode.commands.executeCommand('optin.latencyTarget', cached, 0.8);
      const s = api().sessions.find(cached.fsPath)!;
      assert.equal(s.lastFailure, undefined, s.lastFailure);
      assert.equal(s.latencyTarget, 0.8);
      const l = s.plan!.latency!;
      assert.equal(l.phase, 'decode');
      assert.equal(l.batch, 8);
      assert.ok(l.predictedMs <= 0.8 * l.denseMs * (1 + 1e-9), `${l.predictedMs} of ${l.denseMs}`);
      await vscode.commands.executeCommand('optin.applyPlan', cached);
      assert.ok(s.output && fs.existsSync(s.output) && fs.statSync(s.output).size < fs.statSync(cached.fsPath).size, 'a smaller decoder written');
      const plain = workspaceModel('llama-decoder.onnx');
      if (!api().sessions.find(plain.fsPath)?.plan) await vscode.commands.executeCommand('optin.prune30', plain);
      await waitFor(() => api().sessions.find(plain.fsPath)?.plan, 180_000, 'a plan for the decoder without a cache');
      await vscode.commands.executeCommand('optin.latencyTarget', plain, 0.8);
      assert.match(api().sessions.find(plain.fsPath)!.lastFailure ?? '', /decode-step latency needs a decoder exported with its key\/value cache/);
    } finally {
      await c.update('latencyPhase', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });
});
