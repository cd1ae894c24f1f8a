import { clone, create } from '@bufbuild/protobuf';
import { AttributeProtoSchema, AttributeType, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, type GraphProto, type ModelProto, type NodeProto } from '../onnx/schema';
import { DataType } from '../onnx/schema';
import { valueInfo } from './builder';

/** Clone a message while the graph's listed array fields are temporarily emptied (they are not copied). */
function cloneWithout<T>(g: GraphProto, fields: Array<'node' | 'initializer'>, cloneFn: () => T): T {
  const saved = fields.map((f) => g[f]);
  for (const f of fields) g[f] = [];
  try {
    return cloneFn();
  } finally {
    fields.forEach((f, i) => { (g[f] as unknown) = saved[i]; });
  }
}

/** Copy a model's protobuf without copying tensor bytes (initializers are shared by reference). */
export function shallowCopyModel(proto: ModelProto): ModelProto {
  const g = proto.graph!;
  const copy = cloneWithout(g, ['initializer'], () => clone(ModelProtoSchema, proto));
  copy.graph!.initializer = [...g.initializer];
  return copy;
}

/** Redirect every consumer of `from` (except `except`) to read `to`, including graph outputs. */
export function rewire(g: GraphProto, from: string, to: string, except: Set<string> = new Set()): void {
  for (const n of g.node) {
    if (except.has(n.name)) continue;
    n.input = n.input.map((i) => (i === from ? to : i));
  }
}

/** The node opset version of the default domain. */
export function defaultOpset(proto: ModelProto): number {
  return Number(proto.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 0);
}

/**
 * Keep only the nodes needed to compute `outputs`, treating `cuts` as new float graph inputs
 * (dims given) instead of computing them. Original inputs that remain needed are kept.
 */
export function extractSubgraph(g: GraphProto, cuts: Map<string, Array<number | string>>, outputs: string[]): GraphProto {
  const nodes = g.node.map((n) => unfuseSkipNorm(n, cuts));
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => producer.set(o, i)));
  const needed = new Set<number>();
  const seen = new Set<string>();
  const stack = [...outputs];
  while (stack.length) {
    const v = stack.pop()!;
    if (!v || seen.has(v)) continue;
    seen.add(v);
    if (cuts.has(v)) continue;
    const p = producer.get(v);
    if (p === undefined || needed.has(p)) continue;
    needed.add(p);
    for (const i of nodes[p]!.input) stack.push(i);
  }
  const inits = g.initializer;
  const sub = cloneWithout(g, ['node', 'initializer'], () => clone(GraphProtoSchema, g));
  sub.node = nodes.filter((_, i) => needed.has(i)).map((n) => clone(NodeProtoSchema, n));
  const used = new Set(sub.node.flatMap((n) => n.input));
  for (const o of outputs) used.add(o);
  sub.initializer = inits.filter((t) => used.has(t.name));
  sub.input = [
    ...g.input.filter((i) => used.has(i.name) && !cuts.has(i.name) && !inits.some((t) => t.name === i.name)),
    ...[...cuts.entries()].filter(([c]) => used.has(c)).map(([c, dims]) => valueInfo(c, dims, DataType.FLOAT)),
  ];
  sub.output = g.output.filter((o) => outputs.includes(o.name));
  for (const o of outputs) if (!sub.output.some((x) => x.name === o)) sub.output.push(valueInfo(o, undefined, DataType.FLOAT));
  sub.valueInfo = [];
  return sub;
}

/** Drop nodes whose outputs no graph output needs, then initializers (and IR<4 inputs) nobody reads. */
export function removeDeadNodes(g: GraphProto): void {
  const producer = new Map<string, number>();
  g.node.forEach((n, i) => n.output.forEach((o) => producer.set(o, i)));
  const needed = new Set<number>();
  const stack = g.output.map((o) => o.name);
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (!v || seen.has(v)) continue;
    seen.add(v);
    const p = producer.get(v);
    if (p === undefined || needed.has(p)) continue;
    needed.add(p);
    for (const i of g.node[p]!.input) stack.push(i);
  }
  g.node = g.node.filter((_, i) => needed.has(i));
  const used = new Set([...g.node.flatMap((n) => n.input), ...g.output.map((o) => o.name)]);
  const dropped = new Set(g.initializer.filter((t) => !used.has(t.name)).map((t) => t.name));
  g.initializer = g.initializer.filter((t) => !dropped.has(t.name));
  g.input = g.input.filter((i) => !dropped.has(i.name));
}

/**
 * Order nodes so every value is produced before it is read (Kahn's algorithm, stable for nodes
 * already in order).
 * @throws Error on a cycle (a bug in the caller's surgery).
 */
export function topoSort(g: GraphProto): void {
  const producer = new Map<string, number>();
  g.node.forEach((n, i) => n.output.forEach((o) => { if (o) producer.set(o, i); }));
  const state = new Uint8Array(g.node.length);
  const out: typeof g.node = [];
  const visit = (root: number): void => {
    const stack: Array<[number, number]> = [[root, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [i, k] = top;
      if (k === 0) {
        if (state[i] === 2) { stack.pop(); continue; }
        state[i] = 1;
      }
      const ins = g.node[i]!.input;
      if (k < ins.length) {
        top[1]++;
        const p = producer.get(ins[k]!);
        if (p === undefined || state[p] === 2) continue;
        if (state[p] === 1) throw new Error(`graph surgery made a cycle at ${g.node[p]!.name}`);
        stack.push([p, 0]);
        continue;
      }
      state[i] = 2;
      out.push(g.node[i]!);
      stack.pop();
    }
  };
  for (let i = 0; i < g.node.length; i++) if (state[i] !== 2) visit(i);
  g.node = out;
}

/**
 * onnxruntime's Skip(Simplified)LayerNormalization whose residual sum (output 3) is a cut: the
 * same norm read from that sum (LayerNormalization / SimplifiedLayerNormalization), so the part of
 * the graph from the cut on does not need the two addends from before it. Other nodes unchanged.
 */
function unfuseSkipNorm(n: NodeProto, cuts: Map<string, unknown>): NodeProto {
  const simplified = n.opType === 'SkipSimplifiedLayerNormalization';
  if (n.domain !== 'com.microsoft' || (!simplified && n.opType !== 'SkipLayerNormalization') || !n.output[3] || !cuts.has(n.output[3])) return n;
  const eps = n.attribute.filter((a) => a.name === 'epsilon');
  return create(NodeProtoSchema, {
    name: `${n.name}_from_sum`, opType: simplified ? 'SimplifiedLayerNormalization' : 'LayerNormalization', domain: '',
    input: simplified ? [n.output[3], n.input[2]!] : [n.output[3], n.input[2]!, ...(n.input[3] ? [n.input[3]] : [])],
    output: [n.output[0]!],
    attribute: [...eps, create(AttributeProtoSchema, { name: 'axis', type: AttributeType.INT, i: -1n })],
  });
}
