/**
 * Messages between the extension host and the OPTIN webview. Both sides import this file;
 * every message is one member of a discriminated union on `type`.
 */

/** Per-layer summary shown in the panel. */
export interface LayerSummary {
  /** Channel networks and the channel groups of hybrid models: the group's name ("layer1.0.conv1"); its channels are in `ffn`. */
  name?: string;
  heads: number;
  headSize: number;
  /** Grouped-query attention: query heads per key/value head (then `heads` counts key/value groups). */
  group?: number;
  ffn: number;
  qkv: string;
  activation: string | null;
  macs: number;
}

/** Model summary as the panel displays it. */
export interface ModelSummary {
  path: string;
  fileName: string;
  architecture: string;
  modality: string;
  hidden: number;
  norm: 'pre' | 'post';
  parameters: number;
  fileBytes: number;
  /** The one sequence length every MAC count in the panel uses. */
  seqLen: number;
  /** Where it comes from: the model's fixed token count, the calibration data's mean length, or a default until data is chosen. */
  seqLenSource: 'fixed' | 'calibration' | 'default';
  totalMacs: number;
  layers: LayerSummary[];
  /** 'channels' for CNN-style models: every layer is a coupled-channel group (no heads; `ffn` = its channels; MACs per example). */
  units?: 'heads-neurons' | 'channels';
  /** What is not pruned and why (e.g. attention the engine does not recognise), shown as a warning. */
  note?: string;
  /** Staged models (Swin): every layer's MACs are per example at its own measured width, positions and window, not at `seqLen`. */
  perLayerGeometry?: boolean;
}

/** Importance of every head and neuron, `heads[l][h]`, `neurons[l][j]` (larger = more important). */
export interface ScoreGrid {
  heads: number[][];
  neurons: number[][];
}

/** A prune plan as the panel shows it. */
export interface PlanView {
  /** Fraction of MACs kept, in (0, 1]. */
  budget: number;
  /** Kept head / neuron indices per layer. */
  keepHeads: number[][];
  keepNeurons: number[][];
  macs: { seqLen: number; baseline: number; kept: number };
  /** Parameters of the prunable projections before and after. */
  /** Parameters of the prunable projections before and after (transformers; absent for channel groups). */
  parameters?: { before: number; after: number };
  /** Layers the plan removes most of, in words (empty when none). */
  warnings: string[];
  /** Present for a plan searched under a latency target: the table's prediction. */
  latency?: { target: number; predictedMs: number; denseMs: number; shape: string; provider: string };
}

/** Where the scores came from: the data, how many examples, the mode and the provider. */
export interface DataInfo {
  source: string;
  examples: number;
  mode: string;
  provider: string;
  seconds: number;
}

/** Outcome of Apply: where the pruned model went and the evidence that it is right and faster. */
export interface AppliedView {
  output: string;
  /** The plan's budget this model was written for (results are cleared when the plan moves). */
  budget: number;
  maxAbsDiff: number;
  tolerance: number;
  speedup?: number;
  /** Latency plans: the target, the table's prediction and the measurement (fractions of the dense latency). */
  latency?: { target: number; predicted: number; measured?: number };
  /** How the speedup was measured: medians (p10-p90) of interleaved runs. */
  timing?: { denseMs: number; prunedMs: number; p10Ms: number; p90Ms: number; shape: string; runs: number; threads: number; provider: string };
  idealSpeedup: number;
  fileBytes: { before: number; after: number };
  tuned: boolean;
  /** Accuracy before and after on labelled examples that were not used for calibration. */
  accuracy?: { before: number; after: number; examples: number; source: string };
  /** How often the pruned model predicts what the original predicts (on the same examples). */
  agreement?: { rate: number; examples: number; source: string };
  /** The pruned model is much worse than the original (said in words, with what to try). */
  warning?: string;
  /** Channel plans: other models at the same budget, measured on the same examples as `accuracy`/`agreement`. */
  comparisons?: Array<{ kind: 'l1' | 'unrepaired'; measure: 'accuracy' | 'mIoU' | 'agreement'; value: number }>;
}

/** One budget of a sweep, measured. */
export interface FrontierPoint {
  /** The MAC budget of the plan (clicking the point selects it). */
  budget: number;
  /** MACs kept, recounted from the written model. */
  macsRatio: number;
  /** Accuracy (labelled data) or agreement with the original. */
  value: number;
  /** Dense median / this median, same interleaved run. */
  speedup: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  output: string;
}

/** The speed/accuracy frontier of a sweep, as the panel plots it. */
export interface FrontierView {
  metric: 'accuracy' | 'agreement' | 'mIoU';
  examples: number;
  source: string;
  heldOut: boolean;
  dense: { value: number; medianMs: number; p10Ms: number; p90Ms: number };
  points: FrontierPoint[];
  /** How the timings were taken ("batch 8 x 64 tokens", runs, threads, provider). */
  bench: { shape: string; runs: number; threads: number; provider: string };
  /** Where the sweep's models were written, how many are still there and their size on disk. */
  files: { folder: string; count: number; bytes: number };
}

/**
 * The panel's state machine: analysing -> idle -> scoring -> scored -> applying -> applied, with
 * cancelled / failed leading back to a "Score again" and refused (the model cannot be pruned) final.
 */
export type PanelPhase = 'analysing' | 'refused' | 'idle' | 'scoring' | 'scored' | 'applying' | 'applied' | 'cancelled' | 'failed';

/** Extension -> webview. */
export type HostMessage =
  /** The model was analysed; render its summary. */
  | { type: 'summary'; summary: ModelSummary }
  /** The panel moved to another phase; `message` says why (refused, failed, cancelled) or what runs. */
  | { type: 'phase'; phase: PanelPhase; message?: string }
  /** Scoring progress: elements done of total, seconds left when known. */
  | { type: 'progress'; done: number; total: number; eta?: number }
  /** One layer finished scoring: fill its heatmap rows now. */
  | { type: 'layerScores'; layer: number; heads: number[]; neurons?: number[] }
  /** Every score is known (from a run or a saved scores file), and the data they came from. */
  | { type: 'scores'; scores: ScoreGrid; data: DataInfo; warning?: string }
  /** The plan at the current budget. */
  | { type: 'plan'; plan: PlanView }
  /** Apply finished: the pruned model was written and verified. */
  | { type: 'applied'; result: AppliedView }
  /** A sweep finished: plot the frontier. */
  | { type: 'frontier'; frontier: FrontierView }
  /** Highlight one head in the heatmap (from the tree view or a plan hover). */
  | { type: 'reveal'; layer: number; head: number };

/** Webview -> extension. */
export type WebviewMessage =
  /** The webview script has loaded and can receive messages. */
  | { type: 'ready' }
  /** The user asked to see the OPTIN output channel. */
  | { type: 'showLog' }
  /** Start scoring (the "Score" / "Score again" button). */
  | { type: 'score' }
  /** Re-plan at this budget (slider or preset); answered by a `plan` message. */
  | { type: 'setBudget'; budget: number }
  /** Re-plan under a latency target (fraction of the dense latency); the host measures (or reads) the latency table first. */
  | { type: 'setLatency'; target: number }
  /** Write the pruned model of the current plan. */
  | { type: 'apply' }
  /** Apply, verify, evaluate and time several budgets and plot the frontier. */
  | { type: 'sweep' }
  /** Delete the models a sweep wrote (after a confirmation); the frontier and its plans stay. */
  | { type: 'deleteSweep' }
  /** Save the plan as JSON / the scores as CSV. */
  | { type: 'exportPlan' }
  | { type: 'exportScores' }
  /** Reveal the written model in the explorer. */
  | { type: 'reveal' }
  /** Stop the running job. */
  | { type: 'cancel' };
