import type { DataOptions } from '../data/types';
import type { EpChoice } from '../runtime/providers';

/** Progress of a scoring run. */
export interface ScoreProgress {
  phase: 'teacher' | 'layer';
  layer?: number;
  done: number;
  total: number;
  /** Seconds since scoring started. */
  elapsed: number;
  /** Estimated seconds left (undefined until the first run finished). */
  eta?: number;
  /** Scores of the layer just finished (to fill heatmaps live); `neurons` absent: its heads are done, its neurons still running. */
  partial?: { layer: number; heads: number[]; neurons?: number[] };
}

/** Raw OPTIN losses before balancing: MD and T^2-scaled KL (or squared error) per element. */
export interface RawLosses {
  md: number[];
  kl: number[];
}

/** Importance of every head and FFN neuron (larger = more important). */
export interface Scores {
  heads: number[][];
  neurons: number[][];
  raw: { heads: RawLosses[]; neurons: RawLosses[] };
  /** 'kl' for class and per-token logits (real tokens only), 'squared-error' for single-output (regression) heads, 'cosine-distance' (2 - 2 cos of L2-normalised rows) for embeddings and hidden states. */
  outputLoss: 'kl' | 'squared-error' | 'cosine-distance';
  /** Token rows sampled for the manifold-distillation term. */
  tokenRows: number;
  /** `buckets`: the length buckets the batch was scored in (examples, tokens each), absent when it ran as one padded block. */
  calibration: { examples: number; seqLen: number; meanLength: number; source: string; warning?: string; buckets?: Array<{ examples: number; seqLen: number }>; of?: number };
  /** 'exact' OPTIN trajectory scores, or the 'magnitude' weight-norm baseline. */
  mode: 'exact' | 'fast' | 'magnitude';
  /** Fast mode: the slopes fitted when the neurons' subset losses were extrapolated to the whole batch (extrapolate.ts). */
  extrapolation?: { md: number; kl: number };
  /** Why this mode was used (auto's decision). */
  modeReason?: string;
  provider: string;
  /** True when the inputs shared by the masked runs stayed on the device between runs (WebGPU). */
  inputsOnDevice?: boolean;
  seconds: number;
}

/** Method constants of docs/method.md §2. */
export interface OptinConstants {
  temperature: number;
  lambda: number;
  tokenSample: number;
  seed: number;
  headDecay: number;
  lastLayerDecay: number;
}

/** The paper's defaults. */
export const OPTIN_DEFAULTS: OptinConstants = { temperature: 4, lambda: 10, tokenSample: 768, seed: 0, headDecay: 0.5, lastLayerDecay: 0.5 };

/** Arguments of a scoring job. */
export interface ScoreJob {
  model: string;
  data: DataOptions;
  ep: EpChoice;
  /** 'exact', 'fast' (neurons on a subset of the examples) or 'auto' (exact when it fits timeBudget). */
  mode: 'exact' | 'fast' | 'auto';
  /** Fast mode: examples the neurons are scored on. */
  neuronExamples?: number;
  /** Fast mode: layers each neuron's trajectory covers (default all). */
  horizon?: number;
  /** Auto mode: seconds exact scoring may take (default 600). */
  timeBudget?: number;
  /** 'optin' (default), the weight-magnitude or activation-weighted magnitude (Wanda) baseline, or (channel groups) L1-norm filter ranking. */
  ranking?: 'optin' | 'magnitude' | 'wanda' | 'l1';
  seqLen?: number;
  features?: 'auto' | 'ffn-output' | 'attention-input';
}
