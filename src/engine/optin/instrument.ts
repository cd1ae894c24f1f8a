import type { OnnxModel } from '../onnx/model';
import type { GraphProto, ModelProto } from '../onnx/schema';
import type { EncoderLayer, ModelStructure } from '../structure/types';
import { GraphBuilder } from '../graph/builder';
import { defaultOpset, extractSubgraph, rewire, shallowCopyModel } from '../graph/surgery';
import { OptinError } from '../errors';

/** Name of the head-mask input of layer l. */
export const headMaskName = (l: number): string => `optin_head_mask_${l}`;
/** Name of the neuron-mask input of layer l. */
export const neuronMaskName = (l: number): string => `optin_neuron_mask_${l}`;

/**
 * How a layer's head mask is shaped: per-head tensor [N,H,S,dv] gets [N,H,1,1]; merged [N,S,H*dv]
 * gets [N,1,H*dv]; V of heads folded into the batch axis, [S,N,H*dv], gets [1,N,H*dv] (same memory
 * order as [N,1,H*dv]). Window attention has `windows` rows of N per example (one per window),
 * so its mask repeats each example's row that many times.
 */
export function headMaskDims(l: EncoderLayer): { dims: Array<number | string>; repeat: number; windows: number } | undefined {
  const a = l.attention;
  if (!a) return undefined;
  if (a.perHead) return { dims: ['n', a.heads, 1, 1], repeat: 1, windows: l.shape?.windows ?? 1 };
  if (a.kvValue) {
    const d = a.vHeadSize / (a.group ?? 1);
    return { dims: ['n', 1, a.heads * d], repeat: d, windows: 1 };
  }
  return { dims: a.folded ? [1, 'n', a.heads * a.vHeadSize] : ['n', 1, a.heads * a.vHeadSize], repeat: a.vHeadSize, windows: 1 };
}

/** Dims of a layer's neuron mask: [N, 1, I], or [N, 1, 1, I] for FFN activations laid out [batch, height, width, I]. */
export function neuronMaskDims(l: EncoderLayer): Array<number | string> {
  const rank = l.shape?.ffnRank ?? 3;
  return ['n', ...new Array<number>(Math.max(1, rank - 2)).fill(1), l.ffn?.width ?? 0];
}

/** The value a layer's head mask multiplies (see {@link headMaskDims}); undefined without attention. */
export const headMaskSite = (l: EncoderLayer): string | undefined => {
  const a = l.attention;
  return a ? a.perHead ?? a.folded?.v ?? a.kvValue ?? a.context : undefined;
};

/** Options for {@link instrument}. */
export interface InstrumentOptions {
  /** Layers that get head and neuron mask inputs. */
  maskLayers: number[];
  /** Extra values exposed as graph outputs (features, residual stream). */
  outputs: string[];
  /** Keep only the graph from this layer's residual input on (that value becomes an input). */
  cutAt?: number;
  /**
   * With `cutAt`: start a neuron suffix inside the layer's FFN instead, at `start` (its activations,
   * or the second matrix's product: see rankOne.ts) of rank `rank`; it and `values`, what the rest of
   * the graph reads from before it ({@link ffnFrontier}; name to rank), become inputs.
   */
  neuronFrom?: { start: string; rank: number; values: Map<string, number> };
  /** Replace the graph outputs with exactly these (default: original outputs + `outputs`). */
  onlyOutputs?: boolean;
}

/** Make the batch axis of graph inputs/outputs symbolic so masked variants can be stacked along it. */
function freeBatchAxis(g: GraphProto): void {
  for (const v of [...g.input, ...g.output]) {
    if (v.type?.value.case !== 'tensorType') continue;
    const dim0 = v.type.value.value.shape?.dim[0];
    if (dim0?.value.case === 'dimValue') dim0.value = { case: 'dimParam', value: 'optin_batch' };
  }
}

function insertMul(b: GraphBuilder, value: string, mask: string): void {
  const g = b.graph;
  const idx = g.node.findIndex((n) => n.output.includes(value));
  const producer = idx >= 0 ? g.node[idx] : undefined;
  const out = b.nodeAfter(producer, 'Mul', [value, mask], 'mask');
  rewire(g, value, out, new Set([out]));
  for (const o of g.output) if (o.name === value) o.name = out;
}

/**
 * An in-memory copy of the model with mask inputs and extra outputs; the user's file is never
 * touched. Masks multiply each head's context vector (or its V, when heads are folded into the
 * batch axis: the same thing, since a head's context is its attention-weighted V) and each FFN
 * neuron's activation.
 */
export function instrument(model: OnnxModel, st: ModelStructure, opts: InstrumentOptions): ModelProto {
  const proto = shallowCopyModel(model.proto);
  const g = proto.graph!;
  const b = new GraphBuilder(g, defaultOpset(proto));
  freeBatchAxis(g);
  for (const l of opts.maskLayers) {
    const layer = st.layers[l]!;
    const hm = headMaskDims(layer);
    if (hm) {
      b.input(headMaskName(l), hm.dims);
      insertMul(b, headMaskSite(layer)!, headMaskName(l));
    }
    if (layer.ffn) {
      b.input(neuronMaskName(l), neuronMaskDims(layer));
      insertMul(b, layer.ffn.hidden, neuronMaskName(l));
    }
  }
  const outputs = [...(opts.onlyOutputs ? [] : st.outputs), ...opts.outputs];
  for (const o of outputs) b.output(o);
  if (opts.onlyOutputs) g.output = g.output.filter((o) => outputs.includes(o.name));
  if (opts.cutAt !== undefined) {
    const layer = st.layers[opts.cutAt];
    if (!layer) throw new OptinError('usage', `no layer ${opts.cutAt}`);
    const cuts = new Map<string, Array<number | string>>([[layer.input, layer.shape ? ['n', ...layer.shape.inputDims] : ['n', 's', st.hidden]]]);
    if (opts.neuronFrom && layer.ffn) {
      const symbolic = (v: string, rank: number): string[] => ['n', ...Array.from({ length: rank - 1 }, (_, i) => `optin_${v}_${i + 1}`)];
      const { start, rank, values } = opts.neuronFrom;
      cuts.set(start, start === layer.ffn.hidden ? neuronMaskDims(layer).map((d, i) => (i === 0 ? 'n' : d === 1 ? `optin_d${i}` : d)) : symbolic(start, rank));
      for (const [v, r] of values) cuts.set(v, symbolic(v, r));
    }
    proto.graph = extractSubgraph(g, cuts, outputs);
  }
  return proto;
}

/**
 * What a neuron of layer l changes starts at its FFN activations (or, where its removal is a rank-1
 * change, at the second matrix's product: `start`, see rankOne.ts): the suffix graph of a neuron can
 * begin there instead of at the layer input, skipping the layer's attention and first FFN matrix.
 * The values it then needs from before (the residual the FFN output is added to) are those computed
 * from the layer input that a node downstream of `start` reads; the dense run supplies them.
 * @returns their names (float activations are checked by the caller on the dense run)
 */
export function ffnFrontier(g: GraphProto, layer: EncoderLayer, start = layer.ffn?.hidden): string[] {
  if (!layer.ffn || !start) return [];
  const closure = (from: string): Set<string> => {
    const consumers = new Map<string, number[]>();
    g.node.forEach((n, i) => n.input.forEach((x) => consumers.set(x, [...(consumers.get(x) ?? []), i])));
    const values = new Set([from]);
    const stack = [from];
    while (stack.length) {
      for (const i of consumers.get(stack.pop()!) ?? []) {
        for (const o of g.node[i]!.output) if (o && !values.has(o)) { values.add(o); stack.push(o); }
      }
    }
    return values;
  };
  const after = closure(start);
  const fromInput = closure(layer.input);
  const out = new Set<string>();
  for (const n of g.node) {
    if (!n.input.some((x) => after.has(x))) continue;
    for (const x of n.input) if (x && !after.has(x) && fromInput.has(x)) out.add(x);
  }
  return [...out];
}
