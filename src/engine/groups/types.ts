/** One axis of one value in the graph (with `offset`: the group's channels are entries offset.. of a longer, concatenated axis). */
export interface Slot {
  value: string;
  axis: number;
  offset?: number;
  /** Units mode: each unit is `block` consecutive entries of the axis (a head's `d` columns), the axis holding width x block. */
  block?: number;
  /** Units mode: the axis holds `parts` parts of all units each (packed Q/K/V: 3; heads folded into the batch: batch). */
  parts?: number;
}

/** An initializer (or Constant) sliced along one axis when the group's channels are cut. */
export interface Cut {
  tensor: string;
  axis: number;
  /** The node that reads it (a shared tensor is un-shared before slicing). */
  node: string;
  /** Input index of `tensor` on `node`. */
  input: number;
  /** After a Concat: the group's channels are entries offset .. offset + width - 1 of the axis (which then has `extent` entries). */
  offset?: number;
  extent?: number;
  /** Units mode: each unit is `block` consecutive entries of the axis, in `parts` parts of all units ({@link Slot}). */
  block?: number;
  parts?: number;
}

/**
 * Units mode: an integer entry that holds the units' extent along their axis: entry `index` of input
 * `input` of `node` (a Reshape or Expand shape, a Split size, a Slice bound; input -1: Split's
 * `split` attribute).
 */
export interface ExtentEntry {
  node: string;
  input: number;
  index: number;
  /** With input -1: the attribute holding it (`split`, `num_heads`, `qkv_hidden_sizes`...). */
  attribute?: string;
}

/** A constant entry that scales with the kept units: `value` becomes `value / width * kept` ({@link ExtentEntry}). */
export interface UnitSite extends ExtentEntry {
  value: number;
  /**
   * The entry is computed at run time from values the cut does not change: the vector (of `length`
   * entries) is patched to hold the new literal, or, with `times`, the run-time value `times` (a batch
   * size) times that literal.
   */
  length?: number;
  times?: string;
}

/** A consumer input where a scoring mask multiplies the group's channels. */
export interface MaskSite {
  node: string;
  input: number;
  axis: number;
  rank: number;
  /** After a Concat: the channels are entries offset .. offset + width - 1 of an axis of `extent` entries. */
  offset?: number;
  extent?: number;
}

/**
 * A prunable coupled-channel group (docs/units.md): channel i of every slot in it is
 * one unit: kept or cut together in every producer's output rows, every pass-through op's
 * parameters and every consumer's input columns.
 */
export interface ChannelGroup {
  /** Readable name from the producer's module path ("layer1.0.conv1"). */
  name: string;
  /** Channels in the group. */
  width: number;
  /** Nodes creating the channels (Conv output channels, MatMul/Gemm output features). */
  producers: string[];
  /** Nodes reading the channels as input features. */
  consumers: string[];
  cuts: Cut[];
  /** Depthwise Conv nodes inside the group: their `group` attribute becomes the kept width. */
  depthwise: string[];
  /** Reshape shape constants holding the width as a literal: (node, element index). */
  reshapes: Array<{ node: string; index: number }>;
  /** Where scoring masks go: every consumer input carrying the channels. */
  masks: MaskSite[];
  /** MACs one channel costs per example (producers + pass-through depthwise + consumers), from measured shapes. */
  macsPerChannel: number;
  /** Graph position of the first producer (groups are listed in this order). */
  order: number;
  slots: Slot[];
  /** Units mode: the entries holding the units' extent on the way (resolved to {@link UnitSite}s before a cut). */
  extents?: ExtentEntry[];
  /** Units mode: the constants that change with the kept units (from `extents`; groups/unitShapes.ts). */
  sites?: UnitSite[];
}

/** A candidate the propagation stopped on: which node, and why (not an error: e.g. residual streams). */
export interface GroupRefusal {
  /** The producer the candidate started from. */
  start: string;
  /** The node where propagation stopped. */
  node: string;
  op: string;
  reason: string;
  /** Channels of the candidate. */
  width: number;
}
