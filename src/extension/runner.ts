import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { OptinError } from '../engine/errors';
import { makePlan } from '../engine/plan/files';
import { runPrune, type PruneReport } from '../engine/worker/pipeline';
import type { EngineClient } from '../engine/worker/client';
import type { Log } from './log';
import type { ModelSession, Sessions } from './sessions';
import { outputName, settings } from './config';
import { pickCalibration } from './dataPick';

/** Callbacks the panel gives the runner to follow a job live. */
export interface RunnerEvents {
  onLayer?: (layer: number, heads: number[], neurons: number[]) => void;
  onProgress?: (done: number, total: number, eta?: number) => void;
}

function fmtEta(s?: number): string {
  if (s === undefined || !Number.isFinite(s)) return '';
  return s >= 90 ? `, about ${Math.round(s / 60)} min left` : `, about ${Math.max(1, Math.round(s))} s left`;
}

/** Show an engine failure: notification with the reason and "Show Log"; cancellations are quiet. */
export function reportFailure(e: unknown, log: Log, what: string): void {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof OptinError && e.code === 'cancelled') {
    log.info(`${what} cancelled`);
    void vscode.window.showInformationMessage(`OPTIN: ${what} cancelled; nothing was written.`);
    return;
  }
  log.error(`${what} failed: ${message}`);
  void vscode.window.showErrorMessage(`OPTIN: ${message}`, 'Show Log').then((a) => a && log.show());
}

/** Runs scoring and applying for model sessions, with progress notifications that can be cancelled. */
export class Runner {
  constructor(
    private readonly engine: EngineClient,
    private readonly sessions: Sessions,
    private readonly log: Log,
  ) {}

  /** Re-plan a scored session at a budget (instant; no model needed). */
  plan(s: ModelSession, budget: number): void {
    s.budget = budget;
    if (s.scores) s.plan = makePlan(s.scores, budget);
    this.sessions.changed(s);
  }

  /** Score every head and neuron of the session's model; false when cancelled or failed. */
  async score(s: ModelSession, ev: RunnerEvents = {}): Promise<boolean> {
    if (s.busy) {
      void vscode.window.showInformationMessage('OPTIN is already working on this model.');
      return false;
    }
    const data = await pickCalibration(s.uri);
    if (!data) return false;
    const cfg = settings(s.uri);
    s.data = data;
    const ac = new AbortController();
    s.busy = ac;
    s.partial = { heads: [], neurons: [] };
    this.log.info(`scoring ${s.uri.fsPath} on ${data.data ?? 'synthetic data'} (${data.samples} samples, ${cfg.executionProvider})`);
    try {
      await this.engine.preflight({ model: s.uri.fsPath, data });
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `OPTIN: scoring ${path.basename(s.uri.fsPath)}`, cancellable: true }, async (progress, token) => {
        token.onCancellationRequested(() => ac.abort());
        let last = 0;
        s.scores = await this.engine.score({ model: s.uri.fsPath, data, ep: cfg.executionProvider, mode: cfg.scoringMode }, (p, warning) => {
          if (warning) {
            this.log.warn(warning);
            void vscode.window.showWarningMessage(`OPTIN: ${warning}`);
          }
          if (p.partial) {
            s.partial!.heads[p.partial.layer] = p.partial.heads;
            s.partial!.neurons[p.partial.layer] = p.partial.neurons;
            ev.onLayer?.(p.partial.layer, p.partial.heads, p.partial.neurons);
            this.log.info(`layer ${p.partial.layer} scored`);
          }
          if (p.total > 0) {
            const pct = (100 * p.done) / p.total;
            progress.report({ increment: pct - last, message: `${p.done}/${p.total} elements${fmtEta(p.eta)}` });
            last = pct;
            ev.onProgress?.(p.done, p.total, p.eta);
          }
        }, ac.signal);
      });
      this.log.info(`scored ${s.uri.fsPath} in ${s.scores!.seconds.toFixed(1)} s on ${s.scores!.provider}, ${s.scores!.mode} mode${s.scores!.modeReason ? ` (${s.scores!.modeReason})` : ''}`);
      this.plan(s, s.budget);
      return true;
    } catch (e) {
      reportFailure(e, this.log, 'scoring');
      return false;
    } finally {
      s.busy = undefined;
      s.partial = undefined;
      this.sessions.changed(s);
    }
  }

  /** Write, verify and benchmark the pruned model of the current plan to `out` (default: settings' naming beside the model). */
  async apply(s: ModelSession, out?: string): Promise<PruneReport | undefined> {
    if (!s.scores || !s.plan) {
      void vscode.window.showWarningMessage('OPTIN: score the model first (Prune with OPTIN).');
      return undefined;
    }
    if (s.busy) {
      void vscode.window.showInformationMessage('OPTIN is already working on this model.');
      return undefined;
    }
    const cfg = settings(s.uri);
    const target = out ?? path.join(path.dirname(s.uri.fsPath), outputName(cfg.outputNaming, path.basename(s.uri.fsPath), s.budget));
    const ac = new AbortController();
    s.busy = ac;
    try {
      const report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `OPTIN: writing ${path.basename(target)}`, cancellable: true }, async (progress, token) => {
        token.onCancellationRequested(() => ac.abort());
        return runPrune(this.engine, {
          model: s.uri.fsPath, budget: s.budget, data: s.data ?? {}, ep: cfg.executionProvider, scores: s.scores!, tune: cfg.maskTuning, out: target,
          bench: { batch: 8, seqLen: Math.min(64, cfg.maxSequenceLength), runs: 10 },
        }, { step: (m) => { progress.report({ message: m }); this.log.info(m); } }, ac.signal);
      });
      s.output = report.apply.output;
      const v = report.apply.verification;
      this.log.info(`wrote ${report.apply.files.join(', ')}; max |pruned - masked| ${v.maxAbsDiff.toExponential(2)}; speedup ${report.bench?.speedup[1]?.toFixed(2)}x (ideal ${report.idealSpeedup.toFixed(2)}x)`);
      if (fs.existsSync(report.apply.output)) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(report.apply.output)).then(undefined, () => undefined);
      void vscode.window.showInformationMessage(`OPTIN: wrote ${path.basename(report.apply.output)}: ${report.bench ? `${report.bench.speedup[1]!.toFixed(2)}x faster, ` : ''}outputs match the masked model within ${v.maxAbsDiff.toExponential(1)}.`);
      return report;
    } catch (e) {
      reportFailure(e, this.log, 'apply');
      return undefined;
    } finally {
      s.busy = undefined;
      this.sessions.changed(s);
    }
  }
}
