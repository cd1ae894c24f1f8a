import * as crypto from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { HostMessage, ModelSummary, WebviewMessage } from '../shared/protocol';
import type { InspectReport } from '../engine/inspect';
import type { EngineClient } from '../engine/worker/client';
import type { Log } from './log';

/** Turn an engine report into the panel's summary message payload. */
export function toSummary(r: InspectReport): ModelSummary {
  const s = r.structure;
  return {
    path: r.path,
    fileName: path.basename(r.path),
    architecture: s.architecture,
    modality: s.modality,
    hidden: s.hidden,
    norm: s.norm,
    parameters: r.parameters,
    fileBytes: r.fileBytes,
    seqLen: r.macs.seqLen,
    totalMacs: r.macs.total,
    layers: s.layers.map((l, i) => ({
      heads: l.attention.heads,
      headSize: l.attention.headSize,
      ffn: l.ffn?.width ?? 0,
      qkv: l.attention.qkv.kind,
      activation: l.ffn?.activation ?? null,
      macs: r.macs.layers[i]!.total,
    })),
  };
}

/** The "OPTIN: <model>" webview panel, one per model file. */
export class OptinPanel {
  static readonly viewType = 'optin.panel';
  private static readonly panels = new Map<string, OptinPanel>();
  private ready = false;
  private queue: HostMessage[] = [];

  /** Open (or reveal) the panel for a model and analyse it in the engine worker. */
  static async show(ctx: vscode.ExtensionContext, model: vscode.Uri, engine: EngineClient, log: Log): Promise<OptinPanel> {
    const key = model.fsPath;
    let p = OptinPanel.panels.get(key);
    if (p) p.panel.reveal();
    else {
      p = new OptinPanel(ctx, model, log);
      OptinPanel.panels.set(key, p);
    }
    await p.analyse(engine);
    return p;
  }

  /** Panels currently open (for tests and commands). */
  static all(): OptinPanel[] {
    return [...OptinPanel.panels.values()];
  }

  readonly panel: vscode.WebviewPanel;

  private constructor(ctx: vscode.ExtensionContext, readonly model: vscode.Uri, private readonly log: Log) {
    const toolkit = vscode.Uri.joinPath(ctx.extensionUri, 'node_modules', '@vscode', 'webview-ui-toolkit', 'dist');
    this.panel = vscode.window.createWebviewPanel(OptinPanel.viewType, `OPTIN: ${path.basename(model.fsPath)}`, vscode.ViewColumn.Active, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [vscode.Uri.joinPath(ctx.extensionUri, 'dist'), vscode.Uri.joinPath(ctx.extensionUri, 'media'), toolkit],
    });
    this.panel.webview.html = this.html(ctx, toolkit);
    this.panel.onDidDispose(() => OptinPanel.panels.delete(model.fsPath));
    this.panel.webview.onDidReceiveMessage((m: WebviewMessage) => this.onMessage(m));
  }

  private onMessage(m: WebviewMessage): void {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        for (const q of this.queue.splice(0)) void this.panel.webview.postMessage(q);
        break;
      case 'showLog':
        this.log.show();
        break;
    }
  }

  /** Send a typed message, queued until the webview says it is ready. */
  post(m: HostMessage): void {
    if (this.ready) void this.panel.webview.postMessage(m);
    else this.queue.push(m);
  }

  private async analyse(engine: EngineClient): Promise<void> {
    this.post({ type: 'status', text: `Analysing ${path.basename(this.model.fsPath)}...` });
    try {
      const report = await engine.inspect(this.model.fsPath);
      this.log.info(`inspected ${report.path}: ${report.structure.layers.length} layers, ${report.macs.total} MACs at seq ${report.macs.seqLen}`);
      this.post({ type: 'summary', summary: toSummary(report) });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.log.error(message);
      this.post({ type: 'error', message });
      void vscode.window.showErrorMessage(`OPTIN: ${message}`, 'Show Log').then((a) => a && this.log.show());
    }
  }

  private html(ctx: vscode.ExtensionContext, toolkit: vscode.Uri): string {
    const w = this.panel.webview;
    const nonce = crypto.randomBytes(16).toString('base64');
    const script = w.asWebviewUri(vscode.Uri.joinPath(ctx.extensionUri, 'dist', 'webview.js'));
    const css = w.asWebviewUri(vscode.Uri.joinPath(ctx.extensionUri, 'media', 'panel.css'));
    const tk = w.asWebviewUri(vscode.Uri.joinPath(toolkit, 'toolkit.min.js'));
    const csp = `default-src 'none'; img-src ${w.cspSource}; script-src 'nonce-${nonce}' ${w.cspSource}; style-src ${w.cspSource} 'unsafe-inline'; font-src ${w.cspSource}`;
    return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${css}">
<script type="module" nonce="${nonce}" src="${tk}"></script>
<title>OPTIN</title></head>
<body><main id="app"><p id="status">Loading...</p></main>
<script nonce="${nonce}" src="${script}"></script></body></html>`;
  }
}
