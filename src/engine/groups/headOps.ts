import type { NodeProto } from '../onnx/schema';
import { attrInt } from '../onnx/graph';

/** Why detection leaves a fused attention node alone (a form with no rule yet), and the error code it is refused with. */
export interface HeadOpRefusal {
  code: 'unsupported' | 'decoder';
  why: string;
}

/**
 * A fused attention op that reads query, key and value as [.., heads * d] and writes the context
 * [.., heads * d_v] (units mode, docs/units.md): everything the engine knows of it, in one place.
 * Which inputs carry the heads (query, key, value: each traced back to its projection), which inputs
 * it must not have (a key/value cache, a per-head bias: no rule yet), which attributes hold head
 * counts (rewritten when heads are cut), where a packed bias (query, key and value biases one after
 * the other) is, the layout name shown to the user, and the forms refused by name.
 */
export interface HeadOp {
  heads: number[];
  absent: number[];
  attrs: string[];
  bias?: number;
  /** A mask input, followed only while it is the same for every head (no head axis, or one of size 1). */
  mask?: number;
  layout: string;
  refuse(n: NodeProto): HeadOpRefusal | undefined;
}

const no = (why: string): HeadOpRefusal => ({ code: 'unsupported', why });

/** com.microsoft MultiHeadAttention with separate Q/K/V (q and k may pass RotaryEmbedding); causal with `unidirectional=1` (decoders). */
const MHA: HeadOp = {
  heads: [0, 1, 2], absent: [5, 6, 7], attrs: ['num_heads'], bias: 3, layout: 'mha',
  refuse: (n) => {
    if (n.input[6] || n.input[7]) return no('MultiHeadAttention with a key/value cache (past_key/past_value inputs) is not supported yet; prune the model exported without a cache');
    if (n.input[5]) return no('MultiHeadAttention with an attention bias input (it has a head axis) is not supported yet; prune the model exported without it');
    return attrInt(n, 'num_heads', 0) <= 0 ? no('MultiHeadAttention without num_heads is not supported') : undefined;
  },
};

/**
 * com.microsoft GroupQueryAttention (Llama-family graphs after onnxruntime's transformer optimizer or
 * the model builder): `num_heads` query heads sharing `kv_num_heads` key/value heads (query head h
 * reads key/value head floor(h / group)), rotary inside, always causal. The unit is a key/value head
 * with its query heads, so the ratio stays uniform and both attributes stay valid; with one key/value
 * head (multi-query) the query heads are the units.
 */
const GQA: HeadOp = {
  heads: [0, 1, 2], absent: [3, 4], attrs: ['num_heads', 'kv_num_heads'], layout: 'ort-group-query',
  refuse: (n) => {
    if (n.input[3] || n.input[4]) return no('GroupQueryAttention with a key/value cache (past_key/past_value inputs) is not supported yet; prune the model exported without a cache');
    return !n.input[1] || !n.input[2] ? no('GroupQueryAttention on a packed Q/K/V input is not supported yet; expected separate query, key and value inputs') : undefined;
  },
};

/**
 * The standard ONNX `Attention` op (opset 23) on 3-D inputs: `q_num_heads` / `kv_num_heads` say how
 * Q, K and V split; a head is d_q columns of Q and K and d_v of V, and both attributes are rewritten.
 */
const ONNX_ATTENTION: HeadOp = {
  heads: [0, 1, 2], absent: [4, 5], attrs: ['q_num_heads', 'kv_num_heads'], mask: 3, layout: 'onnx-attention',
  refuse: (n) => {
    if (attrInt(n, 'is_causal', 0) === 1 || n.input[4] || n.input[5] || n.output.length > 1) {
      return { code: 'decoder', why: 'is causal attention or carries a key/value cache: decoder-only models are not supported yet' };
    }
    const H = attrInt(n, 'q_num_heads', 0), kvH = attrInt(n, 'kv_num_heads', 0);
    if (H <= 0 || kvH <= 0) return no('Attention on 4-D [batch, heads, seq, size] inputs is not supported yet; export with 3-D inputs and the q_num_heads/kv_num_heads attributes');
    return kvH !== H ? no(`grouped-query attention (${H} query heads sharing ${kvH} key/value heads) is not supported yet`) : undefined;
  },
};

/** The head rule of a fused attention op (com.microsoft MultiHeadAttention and GroupQueryAttention, ONNX Attention), if `n` is one. */
export function headOp(n: NodeProto): HeadOp | undefined {
  if (n.domain === 'com.microsoft') return n.opType === 'MultiHeadAttention' ? MHA : n.opType === 'GroupQueryAttention' ? GQA : undefined;
  return (n.domain === '' || n.domain === 'ai.onnx') && n.opType === 'Attention' ? ONNX_ATTENTION : undefined;
}

/** onnxruntime's `Attention` (com.microsoft): the Q/K/V projection (packed weight [hidden, q + k + v]) and the attention in one node. */
export const isFusedAttention = (n: NodeProto): boolean => n.domain === 'com.microsoft' && n.opType === 'Attention';

/** onnxruntime's `RotaryEmbedding` (com.microsoft): rotates each head's columns; its optional `num_heads` holds a head count. */
export const isRotary = (n: NodeProto): boolean => n.domain === 'com.microsoft' && n.opType === 'RotaryEmbedding';
