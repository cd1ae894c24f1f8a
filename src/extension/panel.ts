import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { distinctNames } from './names';
import type { AppliedView, HostMessage, WebviewMessage } from '../shared/protocol';
import type { BenchReport } from '../engine/eval/bench';
import type { EngineClient } from '../engine/worker/client';
import type { Log } from './log';
import type { ModelSession, Sessions } from './sessions';
import { Runner } from './runner';
import { comparisonView, frontierView, planView, sweepFiles, toSummary } from './views';

function timingOf(b: BenchReport): NonNullable<AppliedView['timing']> {
  const [d, p] = b.models;
  return { denseMs: d!.medianMs, prunedMs: p!.medianMs, p10Ms: p!.p10Ms, p90Ms: p!.p90Ms, shape: b.shape, runs: b.runs, threads: b.threads, provider: b.provider };
}

/** Everything a panel needs from the extension. */
export interface PanelDeps {
  ctx: vscode.ExtensionContext;
  engine: EngineClient;
  log: Log;
  sessions: Sessions;
  runner: Runner;
}

/** Webview HTML with a strict CSP (nonce scripts, toolkit and bundle from the extension only). */
export function webviewHtml(w: vscode.Webview, extensionUri: vscode.Uri, mode: 'panel' | 'summary'): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const script = w.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js'));
  const css = w.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'panel.css'));
  const tk = w.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'toolkit.min.js'));
  const csp = `default-src 'none'; img-src ${w.cspSource}; script-src 'nonce-${nonce}' ${w.cspSource}; style-src ${w.cspSource} 'unsafe-inline'; font-src ${w.cspSource}`;
  return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${css}">
<script type="module" nonce="${nonce}" src="${tk}"></script>
<title>OPTIN</title></head>
<body data-mode="${mode}"><main id="app"><p id="status">Loading...</p></main>
<script nonce="${nonce}" src="${script}"></script></body></html>`;
}

/** Local resource roots of OPTIN webviews. */
export function webviewRoots(extensionUri: vscode.Uri): vscode.Uri[] {
  return [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')];
}

/** The "OPTIN: <model>" webview panel, one per model file, a live view of its session. */
export class OptinPanel {
  static readonly viewType = 'optin.panel';
  private static readonly panels = new Map<string, OptinPanel>();
  private ready = false;
  private queue: HostMessage[] = [];
  private sent: { summary?: unknown; scores?: unknown; plan?: unknown } = {};
  private readonly subscription: vscode.Disposable;

  /** Open (or reveal) the panel for a model; analyses it the first time. */
  static async show(deps: PanelDeps, session: ModelSession): Promise<OptinPanel> {
    const key = session.uri.fsPath;
    let p = OptinPanel.panels.get(key);
    if (p) p.panel.reveal();
    else {
      p = new OptinPanel(deps, session);
      OptinPanel.panels.set(key, p);
      OptinPanel.retitle();
    }
    if (!session.summary) await p.analyse();
    else p.sync(true);
    return p;
  }

  /** The open panel of a model, if any. */
  static of(fsPath: string): OptinPanel | undefined {
    return OptinPanel.panels.get(fsPath);
  }

  /** Tab titles that tell same-named models apart by their folders. */
  private static retitle(): void {
    const names = distinctNames([...OptinPanel.panels.keys()]);
    for (const [file, p] of OptinPanel.panels) p.panel.title = `OPTIN: ${names.get(file) ?? path.basename(file)}`;
  }

  /** Panels currently open (for tests and commands). */
  static all(): OptinPanel[] {
    return [...OptinPanel.panels.values()];
  }

  readonly panel: vscode.WebviewPanel;

  private constructor(private readonly deps: PanelDeps, readonly session: ModelSession) {
    this.panel = vscode.window.createWebviewPanel(OptinPanel.viewType, `OPTIN: ${path.basename(session.uri.fsPath)}`, vscode.ViewColumn.Active, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: webviewRoots(deps.ctx.extensionUri),
    });
    this.panel.webview.html = webviewHtml(this.panel.webview, deps.ctx.extensionUri, 'panel');
    this.subscription = deps.sessions.onDidChange((s) => { if (s === session) this.sync(); });
    this.panel.onDidDispose(() => {
      OptinPanel.panels.delete(session.uri.fsPath);
      OptinPanel.retitle();
      this.subscription.dispose();
    });
    this.panel.webview.onDidReceiveMessage((m: WebviewMessage) => void this.onMessage(m));
  }

  private async onMessage(m: WebviewMessage): Promise<void> {
    const s = this.session;
    switch (m.type) {
      case 'ready':
        this.ready = true;
        for (const q of this.queue.splice(0)) void this.panel.webview.postMessage(q);
        break;
      case 'showLog':
        this.deps.log.show();
        break;
      case 'score':
        await this.score();
        break;
      case 'setBudget':
        if (m.budget > 0 && m.budget <= 1) this.deps.runner.plan(s, m.budget);
        break;
      case 'setLatency':
        if (m.target > 0 && m.target <= 1) await this.deps.runner.planLatency(s, m.target);
        break;
      case 'apply':
        await this.apply();
        break;
      case 'sweep':
        await this.sweep();
        break;
      case 'deleteSweep':
        await this.deleteSweep();
        break;
      case 'exportPlan':
        await vscode.commands.executeCommand('optin.exportPlan', s.uri);
        break;
      case 'exportScores':
        await vscode.commands.executeCommand('optin.exportScores', s.uri);
        break;
      case 'cancel':
        s.busy?.abort();
        break;
      case 'reveal':
        if (s.output) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(s.output));
        break;
    }
  }

  /** Score the model, filling the heatmap layer by layer; the panel follows the phases. */
  async score(): Promise<boolean> {
    const r = await this.deps.runner.score(this.session, {
      onStart: () => this.post({ type: 'phase', phase: 'scoring' }),
      onLayer: (layer, heads, neurons) => this.post({ type: 'layerScores', layer, heads, ...(neurons ? { neurons } : {}) }),
      onProgress: (done, total, eta) => this.post({ type: 'progress', done, total, ...(eta !== undefined ? { eta } : {}) }),
    });
    if (r.status === 'done') {
      this.sync();
      this.post({ type: 'phase', phase: 'scored' });
    } else if (r.status === 'cancelled') {
      this.post({ type: 'phase', phase: 'cancelled', message: 'Scoring cancelled; nothing was written. The previous scores (if any) still hold.' });
      this.sync(true);
    } else if (r.status === 'failed') {
      this.post({ type: 'phase', phase: 'failed', message: r.message });
    }
    return r.status === 'done';
  }

  /** Write the pruned model of the current plan and show the evidence. */
  async apply(out?: string): Promise<void> {
    if (!this.session.plan) return;
    this.post({ type: 'phase', phase: 'applying', message: `Writing, verifying, timing and evaluating the model that keeps ${Math.round(this.session.budget * 100)}% of MACs...` });
    const r = await this.deps.runner.apply(this.session, out);
    // The Explorer took focus to reveal the new file: give it back to the panel, whose result takes it.
    this.panel.reveal(this.panel.viewColumn, false);
    if ('report' in r) {
      const a = r.report.apply, e = r.evaluation, src = path.basename(r.evalSource ?? this.session.data?.data ?? '');
      const labelled = e?.accuracy !== undefined && e.reference?.accuracy !== undefined;
      this.post({
        type: 'applied',
        result: {
          output: a.output, budget: a.budget, maxAbsDiff: a.verification.maxAbsDiff, tolerance: a.verification.tolerance,
          ...(r.report.bench ? { speedup: r.report.bench.speedup[1]!, timing: timingOf(r.report.bench) } : {}),
          ...(r.report.latency ? { latency: { target: r.report.latency.target, predicted: r.report.latency.predictedRatio, ...(r.report.latency.measuredRatio !== undefined ? { measured: r.report.latency.measuredRatio } : {}) } } : {}), idealSpeedup: r.report.idealSpeedup, fileBytes: a.fileBytes, tuned: !!(a.tuning || a.reconstruction || a.refit),
          ...(labelled && r.heldOut ? { accuracy: { before: e.reference!.accuracy!, after: e.accuracy!, examples: e.examples, source: src } } : {}),
          ...(e?.reference && !(labelled && r.heldOut) ? { agreement: { rate: e.reference.agreement, examples: e.examples, source: r.heldOut ? src : `${src} (the calibration examples)` } } : {}),
          ...(r.report.warning ? { warning: r.report.warning } : {}),
          ...(r.report.comparisons?.length ? { comparisons: r.report.comparisons.map(comparisonView) } : {}),
        },
      });
    } else if (r.status === 'failed') {
      this.post({ type: 'phase', phase: 'failed', message: `Apply failed: ${r.message}` });
    } else {
      this.post({ type: 'phase', phase: 'scored' });
    }
  }

  /** Delete the sweep's models after asking; the frontier and its plans stay (Apply writes a plan again). */
  async deleteSweep(): Promise<void> {
    const r = this.session.frontier;
    if (!r) return;
    const files = sweepFiles(r);
    if (!files.count) return;
    const mb = (files.bytes / 1048576).toFixed(1);
    const ok = await vscode.window.showWarningMessage(`Delete the ${files.count} models of this sweep (${mb} MB in ${files.folder})?`, { modal: true }, 'Delete');
    if (ok !== 'Delete') return;
    for (const f of files.paths) fs.rmSync(f, { force: true });
    if (fs.existsSync(files.folder) && fs.readdirSync(files.folder).length === 0) fs.rmdirSync(files.folder);
    this.deps.log.info(`deleted ${files.count} sweep models (${mb} MB) in ${files.folder}`);
    this.post({ type: 'frontier', frontier: frontierView(r) });
  }

  /** Measure every sweep budget and plot the frontier; a point then selects its plan. */
  async sweep(): Promise<void> {
    if (!this.session.scores) return;
    this.post({ type: 'phase', phase: 'applying', message: `Writing, verifying, evaluating and timing ${Runner.SWEEP_BUDGETS.length} budgets (${Runner.SWEEP_BUDGETS.map((b) => `${Math.round(b * 100)}%`).join(', ')} of MACs)...` });
    const r = await this.deps.runner.sweep(this.session);
    if ('points' in r) this.post({ type: 'frontier', frontier: frontierView(r) });
    else if (r.status === 'failed') this.post({ type: 'phase', phase: 'failed', message: `Sweep failed: ${r.message}` });
    else this.post({ type: 'phase', phase: 'scored' });
  }

  /** Send what changed in the session since the last sync (`full`: everything, e.g. after a cancel). */
  sync(full = false): void {
    const s = this.session;
    if (s.summary && (full || s.summary !== this.sent.summary)) this.post({ type: 'summary', summary: s.summary });
    if (s.scores && (full || s.scores !== this.sent.scores)) {
      const c = s.scores.calibration;
      const data = { source: c.source === 'synthetic' ? 'synthetic data' : path.basename(c.source), examples: c.examples, mode: s.scores.mode, provider: s.scores.provider, seconds: s.scores.seconds };
      this.post({ type: 'scores', scores: { heads: s.scores.heads, neurons: s.scores.neurons }, data, ...(c.warning ? { warning: c.warning } : {}) });
    }
    if (s.plan && (full || s.plan !== this.sent.plan)) this.post({ type: 'plan', plan: planView(s.plan) });
    if (s.frontier && full) this.post({ type: 'frontier', frontier: frontierView(s.frontier) });
    this.sent = { summary: s.summary, scores: s.scores, plan: s.plan };
  }

  /** Send a typed message, queued until the webview says it is ready. */
  post(m: HostMessage): void {
    if (this.ready) void this.panel.webview.postMessage(m);
    else this.queue.push(m);
  }

  private async analyse(): Promise<void> {
    const { engine, log } = this.deps;
    const file = this.session.uri.fsPath;
    this.post({ type: 'phase', phase: 'analysing', message: `Analysing ${path.basename(file)}...` });
    try {
      const report = await engine.inspect(file);
      log.info(`inspected ${report.path}: ${report.structure.layers.length} layers, ${report.macs.total} MACs at seq ${report.macs.seqLen}`);
      this.session.summary = toSummary(report);
      this.sync();
      this.deps.sessions.changed(this.session);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log.error(message);
      this.post({ type: 'phase', phase: 'refused', message });
      void vscode.window.showErrorMessage(`OPTIN: ${message}`, 'Show Log').then((a) => a && log.show());
    }
  }
}
