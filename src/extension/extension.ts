import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { EngineClient } from '../engine/worker/client';
import { Log } from './log';
import { Sessions } from './sessions';
import { Runner } from './runner';
import { ImportanceTree } from './treeView';
import { PlanLens } from './planLens';
import { SummaryEditor } from './summaryEditor';

/** What the extension exports (used by its integration tests). */
export interface OptinApi {
  engine: EngineClient;
  sessions: Sessions;
  tree: ImportanceTree;
}

/** Wire up commands, views, the engine process and the output channel; nothing heavy runs here. */
export function activate(ctx: vscode.ExtensionContext): OptinApi {
  const log = new Log();
  const engine = new EngineClient(vscode.Uri.joinPath(ctx.extensionUri, 'dist', 'engineWorker.js').fsPath, (line) => log.info(`engine: ${line}`));
  const sessions = new Sessions();
  const runner = new Runner(engine, sessions, log, ctx.workspaceState);
  const tree = new ImportanceTree(sessions);
  const lens = new PlanLens();
  const plans: vscode.DocumentSelector = { language: 'json', pattern: '**/*.json' };
  ctx.subscriptions.push(
    log, sessions, tree, { dispose: () => void engine.dispose() },
    vscode.window.createTreeView('optin.importance', { treeDataProvider: tree, showCollapseAll: true }),
    vscode.languages.registerHoverProvider(plans, lens),
    vscode.languages.registerCodeLensProvider(plans, lens),
    vscode.window.registerCustomEditorProvider(SummaryEditor.viewType, new SummaryEditor(ctx.extensionUri, engine), { supportsMultipleEditorsPerDocument: true }),
  );
  registerCommands({ ctx, engine, log, sessions, runner });
  return { engine, sessions, tree };
}

export function deactivate(): void {}
