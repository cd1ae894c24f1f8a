import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { OptinError } from '../engine/errors';
import { makeLatencyPlan, makePlan } from '../engine/plan/files';
import { runPrune, type PruneReport } from '../engine/worker/pipeline';
import { runSweep, type SweepReport } from '../engine/worker/sweep';
import { atScoresSeqLen } from './views';
import type { EngineClient } from '../engine/worker/client';
import type { EvalReport } from '../engine/eval/evaluate';
import { formatBudget, formatEta, pct } from '../shared/format';
import type { Log } from './log';
import type { ModelSession, Sessions } from './sessions';
import { outputName, repairRequest, settings } from './config';
import { pickCalibration } from './dataPick';
import { freeName } from './names';
import { describeCpuNodes } from '../engine/runtime/fallback';

/** Callbacks the panel gives the runner to follow a job live. */
export interface RunnerEvents {
  /** Data is chosen and checked; scoring starts now. */
  onStart?: () => void;
  /** A layer's scores arrived (`neurons` absent: only its heads so far). */
  onLayer?: (layer: number, heads: number[], neurons?: number[]) => void;
  onProgress?: (done: number, total: number, eta?: number) => void;
}

/** How a scoring or apply request ended. */
export type Outcome = { status: 'done' } | { status: 'cancelled' } | { status: 'failed'; message: string } | { status: 'skipped' };

/** A finished Apply: the prune report and, when data was given, the evaluation beside it. */
export interface ApplyResult {
  report: PruneReport; evaluation?: EvalReport; heldOut: boolean;
  /** The data evaluated on (a test split, or the calibration file). */
  evalSource?: string;
}

/** Show an engine failure: notification with the reason and "Show Log"; cancellations are quiet. */
export function reportFailure(e: unknown, log: Log, what: string): Outcome {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof OptinError && e.code === 'cancelled') {
    log.info(`${what} cancelled`);
    void vscode.window.showInformationMessage(`OPTIN: ${what} cancelled; nothing was written.`);
    return { status: 'cancelled' };
  }
  log.error(`${what} failed: ${message}`);
  void vscode.window.showErrorMessage(`OPTIN: ${message}`, 'Show Log').then((a) => a && log.show());
  return { status: 'failed', message };
}

/** Runs scoring and applying for model sessions, with progress notifications that can be cancelled. */
export class Runner {
  constructor(
    private readonly engine: EngineClient,
    private readonly sessions: Sessions,
    private readonly log: Log,
    /** Per-workspace memory (the calibration data last chosen for each model). */
    private readonly memory?: vscode.Memento,
  ) {}

  /** Re-plan a scored session at a budget (instant; no model needed). */
  plan(s: ModelSession, budget: number): void {
    s.budget = budget;
    s.latencyTarget = undefined;
    if (s.scores) s.plan = makePlan(s.scores, budget, s.scores.macSeqLen, settings(s.uri).multipleOf);
    this.sessions.changed(s);
  }

  /** Timing shape of Apply's benchmark, which latency tables are measured at too. */
  private benchShape(s: ModelSession): { batch: number; seqLen: number; runs: number } {
    return { batch: 8, seqLen: Math.min(64, settings(s.uri).maxSequenceLength), runs: 10 };
  }

  /** Re-plan under a latency target: the latency table is measured once per model and shape (then cached). */
  async planLatency(s: ModelSession, target: number): Promise<Outcome> {
    const scores = s.scores;
    if (!scores) return { status: 'skipped' };
    const cfg = settings(s.uri);
    const { batch, seqLen } = this.benchShape(s);
    const r = await this.job(s, `OPTIN: latency table of ${path.basename(s.uri.fsPath)}`, 'latency planning', async (step, signal) => {
      const lat = await this.engine.latency(s.uri.fsPath, { ep: cfg.executionProvider, batch, seqLen, ...(cfg.latencyPhase === 'decode' ? { decode: true } : {}) }, step, signal);
      s.plan = makeLatencyPlan(scores, lat.table, target, scores.macSeqLen, cfg.multipleOf);
      s.budget = s.plan.budget;
      s.latencyTarget = target;
      this.log.info(`latency plan for ${s.uri.fsPath} at ${target} of the dense latency: predicted ${s.plan.latency!.predictedMs.toFixed(2)} of ${s.plan.latency!.denseMs.toFixed(2)} ms (${lat.cached ? 'cached table' : 'table measured now'}: ${lat.file})`);
      return { status: 'done' } as const;
    });
    return r;
  }

  /**
   * Run `fn` as the session's one busy job with a cancellable progress notification: refuses when
   * the session is busy, reports failures (quiet cancellations) and always clears the busy state.
   */
  private async job<T>(s: ModelSession, title: string, what: string, fn: (step: (m: string) => void, signal: AbortSignal) => Promise<T>): Promise<T | Outcome> {
    if (s.busy) {
      void vscode.window.showInformationMessage('OPTIN is already working on this model.');
      return { status: 'skipped' };
    }
    const ac = new AbortController();
    this.setBusy(s, ac);
    try {
      return await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
        token.onCancellationRequested(() => ac.abort());
        return fn((m) => { progress.report({ message: m }); this.log.info(m); }, ac.signal);
      });
    } catch (e) {
      return this.failed(s, reportFailure(e, this.log, what));
    } finally {
      this.setBusy(s, undefined);
      this.sessions.changed(s);
    }
  }

  private failed(s: ModelSession, o: Outcome): Outcome {
    if (o.status === 'failed') s.lastFailure = o.message;
    return o;
  }

  private setBusy(s: ModelSession, ac: AbortController | undefined): void {
    s.busy = ac;
    if (ac) s.lastFailure = undefined;
    void vscode.commands.executeCommand('setContext', 'optin.busy', this.sessions.all().some((x) => x.busy));
  }

  /** Score every head and neuron of the session's model. */
  async score(s: ModelSession, ev: RunnerEvents = {}): Promise<Outcome> {
    if (s.busy) {
      void vscode.window.showInformationMessage('OPTIN is already working on this model.');
      return { status: 'skipped' };
    }
    const data = await pickCalibration(s.uri, s.summary?.modality, this.memory);
    if (!data) return { status: 'skipped' };
    const cfg = settings(s.uri);
    const ac = new AbortController();
    this.setBusy(s, ac);
    const name = path.basename(s.uri.fsPath);
    this.log.info(`scoring ${s.uri.fsPath} on ${data.data ?? 'synthetic data'} (${data.samples} samples, ${cfg.executionProvider})`);
    try {
      await this.engine.preflight({ model: s.uri.fsPath, data });
      s.data = data;
      s.partial = { heads: [], neurons: [] };
      ev.onStart?.();
      const scores = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `OPTIN: scoring ${name}`, cancellable: true }, async (progress, token) => {
        token.onCancellationRequested(() => ac.abort());
        let last = 0;
        return this.engine.score({ model: s.uri.fsPath, data, ep: cfg.executionProvider, mode: cfg.scoringMode }, (p, warning) => {
          if (warning) {
            this.log.warn(warning);
            void vscode.window.showWarningMessage(`OPTIN: ${warning}`);
          }
          if (p.partial) {
            s.partial!.heads[p.partial.layer] = p.partial.heads;
            if (p.partial.neurons) s.partial!.neurons[p.partial.layer] = p.partial.neurons;
            ev.onLayer?.(p.partial.layer, p.partial.heads, p.partial.neurons);
          }
          if (p.total > 0) {
            const done = (100 * p.done) / p.total;
            const eta = formatEta(p.eta);
            progress.report({ increment: done - last, message: `${p.done} of ${p.total} elements${eta ? `, ${eta}` : ''}` });
            last = done;
            ev.onProgress?.(p.done, p.total, p.eta);
          }
        }, ac.signal);
      });
      s.scores = scores;
      if (s.summary) s.summary = atScoresSeqLen(s.summary, scores);
      this.log.info(`scored ${s.uri.fsPath} in ${scores.seconds.toFixed(1)} s on ${scores.provider}, ${scores.mode} mode${scores.modeReason ? ` (${scores.modeReason})` : ''}`);
      if (scores.cpuNodes) this.log.info(describeCpuNodes(scores.cpuNodes, scores.provider.split(' ')[0]!));
      this.plan(s, s.budget);
      const elements = scores.heads.flat().length + scores.neurons.flat().length;
      const what = s.summary?.units === 'channels' ? 'channels' : scores.heads.flat().length ? 'heads and neurons' : 'neurons';
      void vscode.window.showInformationMessage(`OPTIN: scored ${elements} ${what} of ${name} in ${scores.seconds.toFixed(0)} s; the plan to ${formatBudget(s.budget)} is ready.`, 'Apply').then((a) => {
        if (a === 'Apply') void vscode.commands.executeCommand('optin.applyPlan', s.uri);
      });
      return { status: 'done' };
    } catch (e) {
      return this.failed(s, reportFailure(e, this.log, 'scoring'));
    } finally {
      this.setBusy(s, undefined);
      s.partial = undefined;
      this.sessions.changed(s);
    }
  }

  /** Write, verify, benchmark and evaluate the pruned model of the current plan to `out` (default: settings' naming beside the model). */
  async apply(s: ModelSession, out?: string): Promise<ApplyResult | Outcome> {
    if (!s.scores || !s.plan) {
      void vscode.window.showWarningMessage('OPTIN: score the model first (Prune with OPTIN).');
      return { status: 'skipped' };
    }
    const scores = s.scores;
    const cfg = settings(s.uri);
    let target = out ?? path.join(path.dirname(s.uri.fsPath), outputName(cfg.outputNaming, path.basename(s.uri.fsPath), s.budget));
    if (!out && fs.existsSync(target) && cfg.existingOutput !== 'replace') {
      let keepBoth = cfg.existingOutput === 'keepBoth';
      if (!keepBoth) {
        const a = await vscode.window.showWarningMessage(`${path.basename(target)} exists already. Replace it?`, { modal: true, detail: 'Keep Both writes the new model under a free name beside it. The setting optin.existingOutput decides without asking.' }, 'Replace', 'Keep Both');
        if (!a) return { status: 'skipped' };
        keepBoth = a === 'Keep Both';
      }
      if (keepBoth) target = freeName(target, fs.existsSync);
    }
    const result = await this.job(s, `OPTIN: writing ${path.basename(target)}`, 'apply', async (step, signal) => {
      const report = await runPrune(this.engine, {
        model: s.uri.fsPath, budget: s.budget, ...(s.latencyTarget ? { latency: s.latencyTarget, ...(cfg.latencyPhase === 'decode' ? { decode: true } : {}) } : {}), multipleOf: cfg.multipleOf, data: s.data ?? {}, ep: cfg.executionProvider, scores, ...repairRequest(cfg), out: target,
        bench: this.benchShape(s), evalBesideData: true, repairHint: 'the optin.maskTuning setting',
      }, { step, note: (m) => this.log.info(m) }, signal);
      if (report.notEvaluated) this.log.warn(`could not evaluate ${report.apply.output}: ${report.notEvaluated}`);
      const on = report.evaluatedOn;
      return { report, ...(report.evaluation && on ? { evaluation: report.evaluation, heldOut: on.heldOut, evalSource: on.source } : { heldOut: false }) };
    });
    if (!('report' in result)) return result;
    s.output = result.report.apply.output;
    this.log.info(`wrote ${result.report.apply.files.join(', ')}; max |pruned - masked| ${result.report.apply.verification.maxAbsDiff.toExponential(2)}; speedup ${result.report.bench?.speedup[1]?.toFixed(2)}x (ideal ${result.report.idealSpeedup.toFixed(2)}x)`);
    const warning = result.report.warning;
    if (warning) {
      this.log.warn(`${result.report.apply.output}: ${warning}`);
      void vscode.window.showWarningMessage(`OPTIN: ${warning}.`);
    }
    await this.announce(result);
    return result;
  }

  /** Budgets a panel sweep measures. */
  static readonly SWEEP_BUDGETS = [0.9, 0.7, 0.6, 0.5, 0.4];

  /**
   * The speed/accuracy frontier of a scored session: every budget of {@link SWEEP_BUDGETS} written
   * to `<name>.optin-sweep/` beside the model, verified, evaluated (held-out calibration examples)
   * and timed with the dense model in one interleaved run.
   */
  async sweep(s: ModelSession): Promise<SweepReport | Outcome> {
    if (!s.scores) {
      void vscode.window.showWarningMessage('OPTIN: score the model first (Prune with OPTIN).');
      return { status: 'skipped' };
    }
    const scores = s.scores;
    const cfg = settings(s.uri);
    const file = s.uri.fsPath;
    const outDir = path.join(path.dirname(file), `${path.basename(file).replace(/\.onnx$/i, '')}.optin-sweep`);
    const report = await this.job(s, `OPTIN: sweeping ${Runner.SWEEP_BUDGETS.length} budgets of ${path.basename(file)}`, 'sweep', async (step, signal) => {
      fs.mkdirSync(outDir, { recursive: true });
      return runSweep(this.engine, {
        model: file, targets: Runner.SWEEP_BUDGETS, kind: 'macs', multipleOf: cfg.multipleOf, data: s.data ?? {}, ep: cfg.executionProvider, scores, outDir,
        bench: this.benchShape(s), repairHint: 'the optin.maskTuning setting',
      }, { step }, signal);
    });
    if (!('points' in report)) return report;
    s.frontier = report;
    this.log.info(`sweep of ${file}: ${report.points.map((p) => `${p.target}: ${p.speedup.toFixed(2)}x`).join(', ')}; models in ${outDir}`);
    for (const p of report.points) if (p.warning) this.log.warn(`sweep of ${file} at ${p.target}: ${p.warning}`);
    return report;
  }

  /** Say what was written; the new file is revealed in the Explorer (the caller takes focus back). */
  private async announce(r: ApplyResult): Promise<void> {
    const out = r.report.apply.output;
    const parts = [`wrote ${path.basename(out)}`];
    if (r.report.bench) parts.push(`${r.report.bench.speedup[1]!.toFixed(2)}x faster`);
    const e = r.evaluation;
    if (e?.language && e.reference?.language) parts.push(`perplexity ${e.reference.language.perplexity.toFixed(2)} -> ${e.language.perplexity.toFixed(2)}`);
    else if (e?.accuracy !== undefined && e.reference?.accuracy !== undefined) parts.push(`accuracy ${pct(e.reference.accuracy, 1)} -> ${pct(e.accuracy, 1)}`);
    else if (e?.reference) parts.push(`agrees with the original on ${pct(e.reference.agreement, 1)}`);
    void vscode.window.showInformationMessage(`OPTIN: ${parts.join(', ')}.`, 'Reveal in Explorer', 'Open Summary').then((a) => {
      if (a === 'Reveal in Explorer' && fs.existsSync(out)) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(out));
      if (a === 'Open Summary') void vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(out), 'optin.modelSummary');
    });
    if (fs.existsSync(out)) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(out)).then(undefined, () => undefined);
  }
}
