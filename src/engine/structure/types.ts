import type { ChannelGroup } from '../groups/types';

/** A dense projection y = x W (+ b) found in the graph. */
export interface Linear {
  /** The MatMul, Gemm or MatMulNBits node name (or output name when unnamed). */
  node: string;
  /** MatMulNBits: `weight` is the packed codes (graph/nbits.ts), read as [out, in] (`transposed`). */
  op: 'MatMul' | 'Gemm' | 'MatMulNBits';
  /** MatMulNBits: input features per quantization block (input features are cut only in whole blocks). */
  blockSize?: number;
  /** Activation input value. */
  input: string;
  /** Initializer holding the weight. */
  weight: string;
  /** Weight stored as [out, in] (Gemm transB=1) instead of [in, out]. */
  transposed: boolean;
  inFeatures: number;
  outFeatures: number;
  /** Bias initializer, when the bias is a separate Add or a Gemm C input. */
  bias?: string;
  /** Where the bias lives: an Add node, the Gemm, or a fused consumer (BiasGelu, SkipLayerNormalization...). */
  biasNode?: string;
  /** Value after the bias (or after the MatMul when there is none). */
  output: string;
}

/**
 * Where an attention layer is, shape-free: its core (Softmax or fused op), the projections that
 * produce its heads and the one that reads them back, and the values scoring masks. How many heads
 * and how wide comes from the propagation ({@link AttentionBlock}).
 */
export interface AttentionSite {
  /**
   * Decoders exported with a key/value cache: the graph inputs (past) and outputs (present) that hold
   * this attention's keys and values, heads on axis 1; their head axis follows the kept key/value heads.
   */
  cache?: string[];
  /** How Q, K and V are produced ('separate', 'packed', 'fused-attention', 'mha', ...): shown, never branched on. */
  layout: string;
  /** The Q/K/V projections, query first (none when a fused node holds the weights). */
  projections: Linear[];
  /** Output projection; `einsum` when the weight is [heads, headSize, hidden]. */
  output: Linear & { einsum?: boolean };
  /** Value entering the Q/K/V projections. */
  input: string;
  /** Per-head context tensor [batch, seq, heads*vHeadSize] before the output projection. */
  context: string;
  /** Per-head context [batch, heads, seq, vHeadSize] (the P*V MatMul output) in unfused graphs. */
  perHead?: string;
  /**
   * Heads folded into the batch axis (nn.MultiheadAttention exports: [seq, batch*heads, size]):
   * `v` is V before the fold ([seq, batch, heads*vHeadSize], batch on axis 1), where the head mask
   * applies; `pv` is the P*V MatMul output, from which the merge back to [seq*batch, width] runs.
   * The block's `input` is then the batch-first value the projections' input is transposed from.
   */
  folded?: { v: string; pv: string };
  /** Softmax node (unfused graphs) or the fused attention node. */
  core: string;
}

/** One multi-head attention block: its site and its heads as the propagation found them (docs/units.md). */
export interface AttentionBlock extends AttentionSite {
  heads: number;
  /** Head size of Q and K. */
  headSize: number;
  /**
   * Context columns per unit: the head size of V (equal to headSize except for qkv_hidden_sizes
   * graphs); with grouped-query attention, group x the value head size.
   */
  vHeadSize: number;
  /**
   * Grouped-query attention: query heads sharing each key/value head. `heads` then counts key/value
   * heads, each pruned with its query heads as one unit (docs/units.md). Absent: 1.
   */
  group?: number;
  /**
   * Multi-query attention: one key/value head shared by every query head; the units are the query
   * heads, and the K/V projections are a fixed cost paid while any head is kept.
   */
  sharedKv?: boolean;
  /** Grouped-query attention: the V projection's product [batch, seq, heads * value head size], where scoring masks a unit. */
  kvValue?: string;
  /**
   * The heads as a group of the channel propagation in units mode (docs/units.md, "Heads are groups
   * of d channels"): every weight, bias and constant term cut with them, each with its unit layout.
   * Set by detection (detectStructure), which refuses a block the propagation does not close over.
   */
  unit?: ChannelGroup;
}

/** Activation between the two FFN matrices. */
export type Activation = 'gelu-erf' | 'gelu-tanh' | 'gelu' | 'fast-gelu' | 'bias-gelu' | 'relu' | 'silu' | 'quick-gelu' | 'unknown';

/** Position-wise feed-forward block. */
export interface FfnBlock {
  up: Linear;
  /** Gated FFNs (SwiGLU, GeGLU): the projection the activation reads; neuron j is column j of gate and up, row j of down. */
  gate?: Linear;
  down: Linear;
  activation: Activation;
  /** Neuron activations [batch, seq, I] right before the second matrix. */
  hidden: string;
  width: number;
  /**
   * The neurons as a group of the channel propagation (docs/units.md): every weight and bias cut
   * with them, and the constants that hold their count (`sites`: shape entries, Split sizes).
   */
  unit?: ChannelGroup;
}

/** A LayerNorm, fused or decomposed. */
export interface NormInfo {
  kind: 'LayerNormalization' | 'SkipLayerNormalization' | 'SimplifiedLayerNormalization' | 'SkipSimplifiedLayerNormalization' | 'decomposed';
  /** Node that produces the normalised value (the last node of a decomposed chain). */
  node: string;
  output: string;
}

/**
 * Measured geometry of a layer whose residual stream differs from the model-wide [batch, tokens,
 * hidden] (staged models such as Swin: width and token count change between stages, the stream is
 * [batch, height, width, channels], attention runs over windows). Absent for uniform encoders.
 */
export interface LayerShape {
  /** Width of the residual stream in this layer. */
  hidden: number;
  /** Positions per example in the residual stream. */
  tokens: number;
  /** Attention query rows per example (tokens plus window padding). */
  queries: number;
  /** Keys each query attends to (the window size for window attention). */
  keys: number;
  /** Attention batch rows per example (windows; 1 for global attention). */
  windows: number;
  /** The layer input's dims after the batch axis ([height, width, channels] for Swin). */
  inputDims: number[];
  /** Rank of the FFN activations the neuron mask multiplies ([batch, height, width, I] = 4). */
  ffnRank: number;
}

/**
 * One encoder layer: an attention block and the feed-forward block after it, or a feed-forward block
 * alone (`attention: null`: a layer whose attention an earlier pruning removed, or a second FFN in a
 * layer, as in Conformer's macaron FFNs).
 */
export interface EncoderLayer<A extends AttentionSite = AttentionBlock> {
  index: number;
  attention: A | null;
  ffn: FfnBlock | null;
  /** Residual stream entering the layer. */
  input: string;
  /** Residual stream leaving the layer. */
  output: string;
  /** LayerNorm before attention (pre-LN) or after the attention residual (post-LN). */
  norm1?: NormInfo;
  norm2?: NormInfo;
  /** Value used as this layer's OPTIN feature (see docs/method.md §2). */
  feature: string;
  /** Measured geometry of staged models (see {@link LayerShape}); absent for uniform encoders. */
  shape?: LayerShape;
}

/** A model input and the role it plays. */
export interface ModelInput {
  name: string;
  role: 'input_ids' | 'attention_mask' | 'token_type_ids' | 'position_ids' | 'pixel_values' | 'hidden_states' | 'past_key_values' | 'other';
  dtype: 'int64' | 'int32' | 'float32' | 'float16' | 'other';
  /** Dimensions; strings are symbolic, -1 unknown. */
  shape: Array<number | string>;
}

/** Everything later steps need to mask, measure and slice a transformer encoder. */
export interface ModelStructure {
  architecture: string;
  modality: 'text' | 'vision' | 'hidden-states';
  hidden: number;
  norm: 'pre' | 'post';
  layers: EncoderLayer[];
  inputs: ModelInput[];
  outputs: string[];
  /** Token count for vision models (patches + class/distillation tokens). */
  visionTokens?: number;
  /** Rows of the word-embedding table read by input_ids, when found. */
  vocabSize?: number;
  /** Length of the position-embedding table for text models, when found. */
  maxPositions?: number;
  opset: number;
  producer: string;
  /** Decoder-only models: why attention is causal (the mask the graph builds). */
  causal?: string;
  /**
   * The stack runs sequence-first in the file; the model's graph was replaced in memory by one with a
   * batch-first stream (structure/streamLayout.ts), which every later step reads and cuts.
   */
  sequenceFirst?: { transposes: number };
  /**
   * Decoders: key/value-cache inputs and outputs of layers whose attention a pruning removed, as
   * (past, present) pairs: the present is the past with zeros for the new positions; no attention reads them.
   */
  idleCache?: string[];
  /** What the analysis left unpruned and why (e.g. block-quantized feed-forward blocks), in words for the user. */
  notes?: string[];
}
