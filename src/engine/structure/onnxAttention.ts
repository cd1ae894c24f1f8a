import type { NodeProto } from '../onnx/schema';
import { GraphIndex, attrInt } from '../onnx/graph';
import { OptinError } from '../errors';
import { nodeId } from './linear';
import { LinearIndex, traceBackToLinear, traceForwardToLinear } from './trace';
import type { AttentionBlock } from './types';

/**
 * The standard ONNX `Attention` op (opset 23) on 3-D inputs: Q, K and V come from separate
 * projections, `q_num_heads` / `kv_num_heads` say how they split, the output [batch, seq,
 * heads * v_head_size] feeds the output projection. A head is d_q columns of Q and K and d_v of V;
 * cutting heads slices them and rewrites both head-count attributes.
 * @throws OptinError('decoder') for causal attention or a key/value cache, ('unsupported') for
 * grouped-query heads and 4-D inputs, naming the node.
 */
export function attentionFromOnnx(ix: GraphIndex, li: LinearIndex, n: NodeProto): AttentionBlock {
  const where = ix.label(n);
  if (attrInt(n, 'is_causal', 0) === 1 || n.input[4] || n.input[5] || n.output.length > 1) {
    throw new OptinError('decoder', `${where} is causal attention or carries a key/value cache: decoder-only models are not supported yet`);
  }
  const H = attrInt(n, 'q_num_heads', 0), kvH = attrInt(n, 'kv_num_heads', 0);
  if (H <= 0 || kvH <= 0) {
    throw new OptinError('unsupported', `${where}: Attention on 4-D [batch, heads, seq, size] inputs is not supported yet; export with 3-D inputs and the q_num_heads/kv_num_heads attributes`);
  }
  if (kvH !== H) {
    throw new OptinError('unsupported', `${where}: grouped-query attention (${H} query heads sharing ${kvH} key/value heads) is not supported yet`);
  }
  const [q, k, v] = n.input.slice(0, 3).map((x) => (x ? traceBackToLinear(ix, li, x)?.linear : undefined));
  const out = traceForwardToLinear(ix, li.all, n.output[0]!);
  if (!q || !k || !v || new Set([q, k, v]).size < 3 || !out) {
    throw new OptinError('unsupported', `${where}: expected separate query, key and value projections (MatMul or Gemm with constant weights) and an output projection`);
  }
  const dq = q.outFeatures / H, dv = v.outFeatures / H;
  if (!Number.isInteger(dq) || !Number.isInteger(dv) || k.outFeatures !== q.outFeatures || out.linear.inFeatures !== v.outFeatures) {
    throw new OptinError('unsupported', `${where}: projection widths ${q.outFeatures}/${k.outFeatures}/${v.outFeatures} do not split into ${H} heads`);
  }
  return {
    heads: H, headSize: dq, vHeadSize: dv,
    layout: 'onnx-attention',
    projections: [q, k, v],
    output: out.linear, input: q.input, context: n.output[0]!, core: nodeId(n),
  };
}
