import * as path from 'node:path';
import * as vscode from 'vscode';
import { writeFileAtomic } from '../engine/util/atomic';
import { OptinPanel, type PanelDeps } from './panel';
import type { ModelSession } from './sessions';
import { outputName, settings } from './config';
import { scoresCsv } from './views';

/** Pick the .onnx the command is about: the clicked file, the active editor's file, or ask. */
export async function resolveModel(arg: unknown): Promise<vscode.Uri | undefined> {
  if (arg instanceof vscode.Uri) return arg;
  const active = vscode.window.activeTextEditor?.document.uri ?? activeCustomEditorUri();
  if (active && active.fsPath.toLowerCase().endsWith('.onnx')) return active;
  const panel = OptinPanel.all().find((p) => p.panel.active);
  if (panel) return panel.session.uri;
  const found = await vscode.workspace.findFiles('**/*.onnx', '**/node_modules/**', 200);
  if (found.length) {
    const pick = await vscode.window.showQuickPick(
      found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
      { placeHolder: 'Choose an ONNX model to prune with OPTIN' },
    );
    return pick?.uri;
  }
  const chosen = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'ONNX models': ['onnx'] } });
  return chosen?.[0];
}

function activeCustomEditorUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom ? input.uri : undefined;
}

/** Latency targets offered by "Plan for a Latency Target...", as fractions of the dense latency. */
const LATENCY_TARGETS = [0.9, 0.8, 0.7, 0.6, 0.5];

async function pickLatencyTarget(phase: 'prefill' | 'decode'): Promise<number | undefined> {
  const what = phase === 'decode' ? 'one decode step with the key/value cache' : 'the whole sequence';
  const items = LATENCY_TARGETS.map((t) => ({ label: `${Math.round(t * 100)}% of the dense latency`, description: t === 0.5 ? '2x faster' : `${(1 / t).toFixed(2)}x faster`, target: t }));
  const pick = await vscode.window.showQuickPick(items, { title: `OPTIN: latency target (timing ${what} on this machine; setting optin.latencyPhase)` });
  return pick?.target;
}

/** Budget presets of the command palette: command id suffix -> fraction of MACs kept. */
export const PRESETS: Record<string, number> = { prune30: 0.7, prune40: 0.6, prune50: 0.5, prune60: 0.4 };

/** Register every OPTIN command. */
export function registerCommands(deps: PanelDeps): void {
  const { ctx, sessions, runner, log } = deps;
  const session = async (arg: unknown, budget?: number): Promise<ModelSession | undefined> => {
    const uri = await resolveModel(arg);
    if (!uri) return undefined;
    const s = sessions.get(uri, budget ?? settings(uri).defaultBudget);
    if (budget !== undefined) s.budget = budget;
    return s;
  };
  const openAndScore = async (arg: unknown, budget?: number): Promise<void> => {
    const s = await session(arg, budget);
    if (!s) return;
    const p = await OptinPanel.show(deps, s);
    if (!s.summary) return;
    if (s.scores) runner.plan(s, s.budget);
    else await p.score();
  };
  const scored = async (arg: unknown): Promise<ModelSession | undefined> => {
    const s = arg instanceof vscode.Uri ? sessions.find(arg.fsPath) : (await session(arg));
    if (!s?.plan || !s.scores) {
      void vscode.window.showWarningMessage('OPTIN: no scores for this model yet; run "Prune with OPTIN" first.');
      return undefined;
    }
    return s;
  };
  const saveTarget = async (s: ModelSession, suggested: string, filters: Record<string, string[]>, given?: unknown): Promise<string | undefined> => {
    if (typeof given === 'string') return given;
    const u = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(path.dirname(s.uri.fsPath), suggested)), filters });
    return u?.fsPath;
  };
  const base = (s: ModelSession): string => path.basename(s.uri.fsPath).replace(/\.onnx$/i, '');
  ctx.subscriptions.push(
    vscode.commands.registerCommand('optin.pruneModel', (arg?: unknown) => openAndScore(arg)),
    ...Object.entries(PRESETS).map(([id, budget]) => vscode.commands.registerCommand(`optin.${id}`, (arg?: unknown) => openAndScore(arg, budget))),
    vscode.commands.registerCommand('optin.latencyTarget', async (arg?: unknown, target?: unknown) => {
      const s = await scored(arg);
      if (!s) return;
      const t = typeof target === 'number' ? target : await pickLatencyTarget(settings(s.uri).latencyPhase);
      if (t === undefined) return;
      await OptinPanel.show(deps, s);
      await runner.planLatency(s, t);
    }),
    vscode.commands.registerCommand('optin.openView', async (arg?: unknown) => {
      const s = await session(arg);
      if (s) await OptinPanel.show(deps, s);
    }),
    vscode.commands.registerCommand('optin.applyPlan', async (arg?: unknown) => {
      const s = await scored(arg);
      if (s) await (await OptinPanel.show(deps, s)).apply();
    }),
    vscode.commands.registerCommand('optin.exportModel', async (arg?: unknown, target?: unknown) => {
      const s = await scored(arg);
      if (!s) return;
      const out = await saveTarget(s, outputName(settings(s.uri).outputNaming, path.basename(s.uri.fsPath), s.budget), { 'ONNX models': ['onnx'] }, target);
      if (out) await (await OptinPanel.show(deps, s)).apply(out);
    }),
    vscode.commands.registerCommand('optin.exportPlan', async (arg?: unknown, target?: unknown) => {
      const s = await scored(arg);
      if (!s) return;
      const out = await saveTarget(s, `${base(s)}.optin-plan-${Math.round(s.budget * 100)}.json`, { 'OPTIN plan': ['json'] }, target);
      if (!out) return;
      writeFileAtomic(out, JSON.stringify(s.plan, null, 1) + '\n');
      log.info(`exported plan to ${out}`);
      if (typeof target !== 'string') void vscode.window.showTextDocument(vscode.Uri.file(out));
    }),
    vscode.commands.registerCommand('optin.exportScores', async (arg?: unknown, target?: unknown) => {
      const s = await scored(arg);
      if (!s) return;
      const out = await saveTarget(s, `${base(s)}.optin-scores.csv`, { CSV: ['csv'] }, target);
      if (!out) return;
      writeFileAtomic(out, scoresCsv(s.scores!, s.plan));
      log.info(`exported scores to ${out}`);
    }),
    vscode.commands.registerCommand('optin.cancel', () => {
      const busy = sessions.all().filter((s) => s.busy);
      for (const s of busy) s.busy!.abort();
      if (!busy.length) void vscode.window.showInformationMessage('OPTIN: nothing is running.');
    }),
    vscode.commands.registerCommand('optin.revealHead', async (fsPath: string, layer: number, head: number) => {
      const s = sessions.find(fsPath);
      if (!s) return;
      const p = await OptinPanel.show(deps, s);
      p.post({ type: 'reveal', layer, head });
    }),
    vscode.commands.registerCommand('optin.showLog', () => log.show()),
  );
}
