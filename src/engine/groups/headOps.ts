import type { NodeProto } from '../onnx/schema';

/**
 * A fused attention op that reads query, key and value as [.., heads * d] and writes the context
 * [.., heads * d_v] (units mode, docs/units.md): which inputs carry the heads, which inputs it must
 * not have (a key/value cache, a per-head bias: no rule yet), which attributes hold head counts, and
 * where a packed bias (query, key and value biases one after the other) is.
 */
export interface HeadOp {
  heads: number[];
  absent: number[];
  attrs: string[];
  bias?: number;
  /** A mask input, followed only while it is the same for every head (no head axis, or one of size 1). */
  mask?: number;
}

const MHA: HeadOp = { heads: [0, 1, 2], absent: [5, 6, 7], attrs: ['num_heads'], bias: 3 };
const GQA: HeadOp = { heads: [0, 1, 2], absent: [3, 4], attrs: ['num_heads', 'kv_num_heads'] };
const ONNX_ATTENTION: HeadOp = { heads: [0, 1, 2], absent: [4, 5], attrs: ['q_num_heads', 'kv_num_heads'], mask: 3 };

/** The head rule of a fused attention op (com.microsoft MultiHeadAttention and GroupQueryAttention, ONNX Attention), if `n` is one. */
export function headOp(n: NodeProto): HeadOp | undefined {
  if (n.domain === 'com.microsoft') return n.opType === 'MultiHeadAttention' ? MHA : n.opType === 'GroupQueryAttention' ? GQA : undefined;
  return (n.domain === '' || n.domain === 'ai.onnx') && n.opType === 'Attention' ? ONNX_ATTENTION : undefined;
}

/** onnxruntime's `Attention` (com.microsoft): the Q/K/V projection (packed weight [hidden, q + k + v]) and the attention in one node. */
export const isFusedAttention = (n: NodeProto): boolean => n.domain === 'com.microsoft' && n.opType === 'Attention';

/** onnxruntime's `RotaryEmbedding` (com.microsoft): rotates each head's columns; its optional `num_heads` holds a head count. */
export const isRotary = (n: NodeProto): boolean => n.domain === 'com.microsoft' && n.opType === 'RotaryEmbedding';
