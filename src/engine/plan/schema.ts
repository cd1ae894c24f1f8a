import type { MacTerm } from '../channels/macs';
import type { CpuNodes } from '../runtime/fallback';
/** Version of the scores and plan file formats (bumped on incompatible changes). */
export const SCHEMA_VERSION = 1;

/** Per-layer geometry stored with scores and plans, enough to re-plan without the model. */
export interface LayerGeometry {
  heads: number;
  headSize: number;
  vHeadSize: number;
  ffn: number;
  /** Gated FFN (SwiGLU/GeGLU): a neuron is a column of gate and up and a row of down (3*s*D MACs). */
  gated?: boolean;
  /** Grouped-query attention: query heads per key/value head; a "head" here is that whole group. */
  group?: number;
  /** Multi-query attention: heads are query heads sharing one key/value head (a fixed K/V cost while any is kept). */
  sharedKv?: boolean;
  /** Neurons are kept or cut in whole aligned blocks of this many (the second matrix's quantization blocks: Linear.blockSize). */
  neuronBlock?: number;
  /**
   * Staged models (Swin): this layer's measured width, positions, attention query rows and keys
   * per query; the MAC model uses them instead of the model-wide hidden size and sequence length.
   */
  shape?: { hidden: number; tokens: number; queries: number; keys: number };
}

/** Identity of the model scores and plans belong to. */
export interface ModelRef {
  path: string;
  sha256: string;
  architecture: string;
  modality: string;
  hidden: number;
  norm: 'pre' | 'post';
  layers: LayerGeometry[];
  /**
   * Channel networks: every layer is a coupled-channel group (0 heads, `ffn` = its channels) with
   * this name, and MACs are the sum of these terms (products of kept widths).
   */
  channels?: { names: string[]; terms: MacTerm[] };
  /**
   * Hybrid models: the first `transformerLayers` layers are transformer layers; each layer after
   * them is a coupled-channel group outside the transformer (0 heads, `ffn` = its channels) with
   * this name, whose MACs are these terms. One search covers heads, neurons and channels.
   */
  hybrid?: { transformerLayers: number; names: string[]; terms: MacTerm[] };
  /** What the analysis left unpruned and why, in words (ModelStructure.notes). */
  notes?: string[];
  /** An output projection or second FFN matrix, which the repairs rewrite, is block-quantized (MatMulNBits): no repair is available. */
  quantized?: boolean;
}

/** How many of a model's layers are transformer layers (the rest are channel groups: all of them in channel networks, the tail in hybrids). */
export function transformerLayerCount(model: ModelRef): number {
  return model.channels ? 0 : model.hybrid?.transformerLayers ?? model.layers.length;
}

/** The name of layer `l` when it is a channel group (channel networks, the tail of a hybrid), else undefined. */
export function groupName(model: ModelRef, l: number): string | undefined {
  const L = transformerLayerCount(model);
  return l < L ? undefined : (model.channels ?? model.hybrid)?.names[l - L];
}

/**
 * `optin score` output (schema "optin-scores", version 1). `heads[l][h]` and `neurons[l][j]` are
 * OPTIN importances, larger = more important.
 */
export interface ScoresFile {
  schema: 'optin-scores';
  version: number;
  tool: { name: string; version: string };
  created: string;
  model: ModelRef;
  mode: 'exact' | 'fast' | 'magnitude';
  modeReason?: string;
  outputLoss: 'kl' | 'squared-error' | 'cosine-distance';
  provider: string;
  /** Nodes the GPU provider left to the CPU (absent on the CPU provider). */
  cpuNodes?: CpuNodes;
  /** True when the inputs shared by the masked runs stayed on the device between runs (WebGPU). */
  inputsOnDevice?: boolean;
  seconds: number;
  /** `of`: the examples given, when auto mode scored channel groups on fewer (`examples`) to fit its time budget. */
  calibration: { source: string; examples: number; seqLen: number; meanLength: number; tokenRows: number; warning?: string; buckets?: Array<{ examples: number; seqLen: number }>; of?: number };
  /** Sequence length of the MAC model (mean unpadded calibration length for text; tokens for vision). */
  macSeqLen: number;
  heads: number[][];
  neurons: number[][];
  raw: { heads: Array<{ md: number[]; kl: number[] }>; neurons: Array<{ md: number[]; kl: number[] }> };
}

/** The latency side of a plan searched with `--latency`: target, the table's numbers and the prediction. */
export interface PlanLatency {
  /** Fraction of the dense model's measured latency asked for (0.5 = twice as fast). */
  target: number;
  denseMs: number;
  predictedMs: number;
  /** Where and at what shape the table was measured. */
  provider: string;
  batch: number;
  seqLen: number;
  /** 'decode': the table timed one decode step after a cache of `seqLen` tokens; absent: the whole sequence. */
  phase?: 'decode';
}

/** Kept elements and cost of one layer in a plan. */
export interface PlanLayer {
  heads: number;
  neurons: number;
  macs: number;
}

/**
 * `optin plan` output (schema "optin-plan", version 1): which heads and neurons to keep under a
 * MAC budget, with the scores it was made from.
 */
export interface PlanFile {
  schema: 'optin-plan';
  version: number;
  tool: { name: string; version: string };
  created: string;
  model: ModelRef;
  /** Fraction of MACs kept, in (0, 1]. */
  budget: number;
  /** Kept neurons per layer are a multiple of this (or the full width); absent = 1. */
  multipleOf?: number;
  macs: { seqLen: number; baseline: number; kept: number; ratio: number };
  /** Present when the plan was searched under a latency target instead of a MAC budget. */
  latency?: PlanLatency;
  /** Channel plans: how the budget was shared between groups (plan/channelSearch.ts). */
  allocation?: 'uniform' | 'global';
  /** Kept head indices and kept neuron indices per layer (sorted). */
  keep: { heads: number[][]; neurons: number[][] };
  layers: PlanLayer[];
  /** Sum of kept scores (the search's objective). */
  importance: number;
  scores: { heads: number[][]; neurons: number[][]; mode: string; calibration: ScoresFile['calibration'] };
}
