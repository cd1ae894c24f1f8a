import type { NodeProto } from '../onnx/schema';
import { GraphIndex, attrInt } from '../onnx/graph';
import { OptinError } from '../errors';
import { nodeId } from './linear';
import { LinearIndex, traceBackToLinear, traceForwardToLinear } from './trace';
import type { AttentionBlock } from './types';

/**
 * onnxruntime's fused `GroupQueryAttention` (com.microsoft; Llama-family graphs after the transformer
 * optimizer or the model builder): Q, K and V from separate projections, [batch, seq, heads * d],
 * `num_heads` query heads sharing `kv_num_heads` key/value heads (query head h reads key/value head
 * floor(h / group)), rotary inside, always causal; the output [batch, seq, num_heads * d] feeds the
 * output projection. The unit is a key/value head with its query heads, so the ratio stays uniform
 * and both attributes stay valid when units are cut; with one key/value head (multi-query) the query
 * heads are the units.
 * @throws OptinError('unsupported') for a key/value cache, packed Q/K/V, or projections that do not
 * split into the attribute's heads, naming the node.
 */
export function attentionFromGqa(ix: GraphIndex, li: LinearIndex, n: NodeProto): AttentionBlock {
  const where = ix.label(n);
  if (n.input[3] || n.input[4]) {
    throw new OptinError('unsupported', `${where}: GroupQueryAttention with a key/value cache (past_key/past_value inputs) is not supported yet; prune the model exported without a cache`);
  }
  if (!n.input[1] || !n.input[2]) {
    throw new OptinError('unsupported', `${where}: GroupQueryAttention on a packed Q/K/V input is not supported yet; expected separate query, key and value inputs`);
  }
  const H = attrInt(n, 'num_heads', 0), kvH = attrInt(n, 'kv_num_heads', 0);
  const [q, k, v] = n.input.slice(0, 3).map((x) => traceBackToLinear(ix, li, x!)?.linear);
  const out = traceForwardToLinear(ix, li.all, n.output[0]!);
  if (!q || !k || !v || new Set([q, k, v]).size < 3 || !out) {
    throw new OptinError('unsupported', `${where}: expected separate query, key and value projections (MatMul or Gemm with constant weights) and an output projection`);
  }
  const group = H / kvH, dq = q.outFeatures / H, dv = v.outFeatures / Math.max(kvH, 1);
  if (H <= 0 || kvH <= 0 || !Number.isInteger(group) || !Number.isInteger(dq) || k.outFeatures !== kvH * dq || !Number.isInteger(dv) || out.linear.inFeatures !== H * dv) {
    throw new OptinError('unsupported', `${where}: projection widths ${q.outFeatures}/${k.outFeatures}/${v.outFeatures} do not split into ${H} query and ${kvH} key/value heads`);
  }
  const common = { layout: 'ort-group-query', projections: [q, k, v], output: out.linear, input: q.input, context: n.output[0]!, core: nodeId(n) };
  return kvH === 1 ? { ...common, heads: H, headSize: dq, vHeadSize: dv, sharedKv: true } : { ...common, heads: kvH, headSize: dq, vHeadSize: group * dv, group };
}
