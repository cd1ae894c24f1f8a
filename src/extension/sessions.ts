import * as vscode from 'vscode';
import type { DataOptions } from '../engine/data/calibration';
import type { PlanFile, ScoresFile } from '../engine/plan/schema';
import type { SweepReport } from '../engine/worker/sweep';
import type { ModelSummary } from '../shared/protocol';

/** What the extension knows about one model: its summary, scores, current plan and data. */
export interface ModelSession {
  readonly uri: vscode.Uri;
  summary?: ModelSummary;
  scores?: ScoresFile;
  /** Scores of the layers finished so far while a run is going. */
  partial?: { heads: number[][]; neurons: number[][] };
  plan?: PlanFile;
  budget: number;
  /** Set while the plan is searched under a latency target instead of `budget`. */
  latencyTarget?: number;
  data?: DataOptions;
  /** The last sweep (speed/accuracy frontier). */
  frontier?: SweepReport;
  /** Last written pruned model. */
  output?: string;
  busy?: AbortController;
  /** Why the last scoring, apply or planning job on this model failed (cleared when one starts). */
  lastFailure?: string;
}

/** All model sessions of this window; fires when one changes (tree view, panel, hovers listen). */
export class Sessions implements vscode.Disposable {
  private readonly map = new Map<string, ModelSession>();
  private readonly emitter = new vscode.EventEmitter<ModelSession>();
  readonly onDidChange = this.emitter.event;

  /** The session of a model, created on first use. */
  get(uri: vscode.Uri, budget: number): ModelSession {
    let s = this.map.get(uri.fsPath);
    if (!s) {
      s = { uri, budget };
      this.map.set(uri.fsPath, s);
    }
    return s;
  }

  find(fsPath: string): ModelSession | undefined {
    return this.map.get(fsPath);
  }

  all(): ModelSession[] {
    return [...this.map.values()];
  }

  changed(s: ModelSession): void {
    this.emitter.fire(s);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
