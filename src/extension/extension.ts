import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { EngineClient } from '../engine/worker/client';
import { Log } from './log';

/** Wire up commands, the engine worker and the output channel; nothing heavy runs here. */
export function activate(ctx: vscode.ExtensionContext): { engine: EngineClient } {
  const log = new Log();
  const engine = new EngineClient(vscode.Uri.joinPath(ctx.extensionUri, 'dist', 'engineWorker.js').fsPath);
  ctx.subscriptions.push(log, { dispose: () => void engine.dispose() });
  registerCommands(ctx, engine, log);
  return { engine };
}

export function deactivate(): void {}
