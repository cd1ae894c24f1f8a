import * as vscode from 'vscode';
import { OptinPanel } from './panel';
import type { EngineClient } from '../engine/worker/client';
import type { Log } from './log';

/** Pick the .onnx the command is about: the clicked file, the active editor's file, or ask. */
export async function resolveModel(arg: unknown): Promise<vscode.Uri | undefined> {
  if (arg instanceof vscode.Uri) return arg;
  const active = vscode.window.activeTextEditor?.document.uri ?? activeCustomEditorUri();
  if (active && active.fsPath.toLowerCase().endsWith('.onnx')) return active;
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

/** Register every OPTIN command. */
export function registerCommands(ctx: vscode.ExtensionContext, engine: EngineClient, log: Log): void {
  ctx.subscriptions.push(
    vscode.commands.registerCommand('optin.pruneModel', async (arg?: unknown) => {
      const uri = await resolveModel(arg);
      if (uri) await OptinPanel.show(ctx, uri, engine, log);
    }),
    vscode.commands.registerCommand('optin.showLog', () => log.show()),
  );
}
