import * as vscode from 'vscode';
import type { HostMessage, WebviewMessage } from '../shared/protocol';
import type { EngineClient } from '../engine/worker/client';
import { webviewHtml, webviewRoots } from './panel';
import { toSummary } from './views';

/** Read-only "OPTIN Model Summary" editor for .onnx files, with a "Prune with OPTIN" button. */
export class SummaryEditor implements vscode.CustomReadonlyEditorProvider {
  static readonly viewType = 'optin.modelSummary';
  constructor(private readonly extensionUri: vscode.Uri, private readonly engine: EngineClient) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  async resolveCustomEditor(doc: vscode.CustomDocument, panel: vscode.WebviewPanel): Promise<void> {
    panel.webview.options = { enableScripts: true, localResourceRoots: webviewRoots(this.extensionUri) };
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'summary');
    const pending: Array<() => void> = [];
    let ready = false;
    panel.webview.onDidReceiveMessage((m: WebviewMessage) => {
      if (m.type === 'ready') {
        ready = true;
        for (const f of pending.splice(0)) f();
      } else if (m.type === 'score') void vscode.commands.executeCommand('optin.pruneModel', doc.uri);
      else if (m.type === 'showLog') void vscode.commands.executeCommand('optin.showLog');
    });
    const send = (m: HostMessage): void => { if (ready) void panel.webview.postMessage(m); else pending.push(() => void panel.webview.postMessage(m)); };
    try {
      send({ type: 'summary', summary: toSummary(await this.engine.inspect(doc.uri.fsPath)) });
    } catch (e) {
      send({ type: 'phase', phase: 'refused', message: e instanceof Error ? e.message : String(e) });
    }
  }
}
