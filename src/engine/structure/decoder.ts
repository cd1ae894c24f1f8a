import { attrInt, type GraphIndex } from '../onnx/graph';
import { DataType, type ValueInfoProto } from '../onnx/schema';
import { tensorBytes, tensorShape } from '../onnx/tensor';

/** Names of key/value-cache inputs and outputs (optimum's past_key_values.N.key, present.N.value, onnxruntime-genai's past_key_N...). */
export const CACHE_NAME = /(^|[._/])(past|present)([._]|$)|past_key|past_value|key_values|kv_cache|(^|[._])cache[._]/i;

/** A graph input or output that looks like a key/value cache: a cache name, a float tensor of rank 3 or more. */
export function isCacheValue(v: ValueInfoProto): boolean {
  const t = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  const float = !!t && [DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16].includes(t.elemType);
  return CACHE_NAME.test(v.name) && float && (t?.shape?.dim.length ?? 0) >= 3;
}

/** A key/value-cache input or output of the graph not among `understood` (the caches joined to a recognised attention), or undefined. */
export function cacheEvidence(ix: GraphIndex, understood: Set<string> = new Set()): string | undefined {
  const v = [...ix.graph.input, ...ix.graph.output].find((x) => !understood.has(x.name) && isCacheValue(x));
  return v ? `key/value-cache ${ix.graph.input.includes(v) ? 'input' : 'output'} "${v.name}"` : undefined;
}

/**
 * The present output an idle cache input is passed to: Concat(past, zeros) along the sequence, as
 * pruning writes a removed attention's cache (prune/apply.ts, idleCache); undefined otherwise.
 */
export function idleCacheOutput(ix: GraphIndex, past: string): string | undefined {
  const uses = ix.uses(past).filter((u) => u.opType !== 'Shape');
  const cat = uses.length === 1 ? uses[0]! : undefined;
  if (cat?.opType !== 'Concat' || cat.input.length !== 2 || cat.input[0] !== past) return undefined;
  if (ix.producer.get(cat.input[1]!)?.opType !== 'ConstantOfShape') return undefined;
  return ix.graph.output.some((o) => o.name === cat.output[0]) ? cat.output[0] : undefined;
}

const ATTENTION_OPS = new Set(['Softmax', 'Attention', 'MultiHeadAttention', 'GroupQueryAttention']);

/**
 * The graph output a cache input is carried to when no attention reads it on the way (a cached
 * decoder whose pruning removed a layer's whole attention), or undefined.
 */
export function carriedCache(ix: GraphIndex, input: string): string | undefined {
  const outputs = new Set(ix.graph.output.map((o) => o.name));
  const seen = new Set([input]);
  const stack = [input];
  let reached: string | undefined;
  while (stack.length) {
    const v = stack.pop()!;
    if (outputs.has(v)) reached ??= v;
    for (const u of ix.uses(v)) {
      if (ATTENTION_OPS.has(u.opType)) return undefined;
      for (const o of u.output) if (o && !seen.has(o) && seen.size < 256) { seen.add(o); stack.push(o); }
    }
  }
  return reached;
}

/** Why a graph computes causal (decoder) attention, or undefined when it does not. */
export function causalEvidence(ix: GraphIndex): string | undefined {
  for (const n of ix.graph.node) {
    if (n.opType === 'Trilu') return `${ix.label(n)} builds a triangular (causal) mask`;
    if (n.opType === 'GroupQueryAttention' && n.domain === 'com.microsoft') return `${ix.label(n)} is onnxruntime's GroupQueryAttention (always causal)`;
    if ((n.opType === 'MultiHeadAttention' || n.opType === 'Attention') && n.domain === 'com.microsoft' && attrInt(n, 'unidirectional', 0) === 1) return `${ix.label(n)} is onnxruntime's ${n.opType} with unidirectional=1 (causal)`;
  }
  for (const t of ix.graph.initializer.concat(
    ix.graph.node.filter((n) => n.opType === 'Constant').flatMap((n) => n.attribute.filter((a) => a.t).map((a) => a.t!)),
  )) {
    if (t.dims.length < 2) continue;
    const shape = tensorShape(t);
    const n = shape[shape.length - 1]!;
    if (n < 2 || shape[shape.length - 2] !== n || n * n > 1 << 22) continue;
    if (isLowerTriangular(t.dataType, tensorBytes(t, ix.ext), n)) return `constant "${t.name}" is a ${n}x${n} lower-triangular (causal) mask`;
  }
  return undefined;
}

function isLowerTriangular(dt: number, bytes: Uint8Array, n: number): boolean {
  const width = dt === DataType.FLOAT ? 4 : dt === DataType.UINT8 || dt === DataType.BOOL || dt === DataType.INT8 ? 1 : 0;
  if (!width || bytes.byteLength < n * n * width) return false;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = (i: number, j: number): number => (width === 4 ? dv.getFloat32((i * n + j) * 4, true) : dv.getUint8(i * n + j));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = at(i, j);
      if (j > i ? v !== 0 : v !== 1) return false;
    }
  }
  return true;
}
