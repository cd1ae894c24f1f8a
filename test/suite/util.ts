import * as vscode from 'vscode';
import type { OptinApi } from '../../src/extension/extension';

/** Extension id from package.json (publisher.name). */
export const OPTIN_ID = 'optin-tools.optin-vscode';

/** A model file in the test workspace. */
export function workspaceModel(name: string): vscode.Uri {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri;
  if (!root) throw new Error('the test workspace has no folder');
  return vscode.Uri.joinPath(root, name);
}

/** Poll until `fn` returns a value (tabs and editors appear a moment after commands return). */
export async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 90_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The API the activated extension exports (sessions, tree, engine). */
export function api(): OptinApi {
  return vscode.extensions.getExtension<OptinApi>(OPTIN_ID)!.exports;
}
