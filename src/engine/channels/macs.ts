import type { NodeProto } from '../onnx/schema';
import type { OnnxModel } from '../onnx/model';
import { OptinError } from '../errors';
import { measureShapes } from '../groups/shapes';
import type { InputSize } from '../data/types';
import { attrInt, GraphIndex } from '../onnx/graph';
import { tensorShape } from '../onnx/tensor';
import type { MeasuredShapes } from '../groups/shapes';
import type { ChannelGroup } from '../groups/types';

/**
 * One factor of a {@link MacTerm}: a fixed channel count, a group's kept width, or (a consumer of a
 * Concat) the sum of several groups' kept widths and a fixed count.
 */
export type MacFactor = number | { group: number } | { groups: number[]; fixed: number };

/**
 * MACs of one Conv/MatMul/Gemm as a product: perUnit x every factor (input channels of a consumer,
 * output channels of a producer, the one width of a depthwise conv). Summing terms gives exact MACs
 * for any kept widths, including convolutions that read one group and produce another; each group
 * appears in at most one factor of a term (a GLU's producer lists its group once per half), so a term
 * is linear in every group's width.
 */
export interface MacTerm {
  node: string;
  perUnit: number;
  factors: MacFactor[];
}

/** The groups a factor's width depends on. */
export function factorGroups(f: MacFactor): number[] {
  return typeof f === 'number' ? [] : 'group' in f ? [f.group] : f.groups;
}

/** A factor's value at the given widths. */
function factorValue(f: MacFactor, widths: number[]): number {
  return typeof f === 'number' ? f : 'group' in f ? widths[f.group]! : f.groups.reduce((a, g) => a + widths[g]!, f.fixed);
}

/** The terms that depend on group l's width. */
export function termsOf(terms: MacTerm[], l: number): MacTerm[] {
  return terms.filter((t) => t.factors.some((f) => factorGroups(f).includes(l)));
}

const prod = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);

/** MACs per example of a Conv, MatMul or Gemm with a constant weight, from measured shapes and the weight's dims. */
export function nodeMacs(ix: GraphIndex, shapes: MeasuredShapes, n: NodeProto): { macs: number; inCh: number; outCh: number; depthwise: boolean } | undefined {
  const w = n.input[1] ? ix.constant(n.input[1]) : undefined;
  const out = shapes.get(n.output[0]!);
  if (!w || !out) return undefined;
  const wd = tensorShape(w);
  if (n.opType === 'Conv') {
    const group = attrInt(n, 'group', 1);
    const depthwise = group > 1 && wd[1] === 1 && wd[0] === group;
    return { macs: prod(out.slice(2)) * wd[0]! * prod(wd.slice(1)), inCh: wd[1]! * group, outCh: wd[0]!, depthwise };
  }
  if (n.opType === 'MatMul' || n.opType === 'Gemm') {
    const transB = n.opType === 'Gemm' && attrInt(n, 'transB', 0) === 1;
    const [K, N] = transB ? [wd[1]!, wd[0]!] : [wd[0]!, wd[1]!];
    return { macs: (prod(out.slice(0, -1)) / shapes.batch) * K * N, inCh: K, outCh: N, depthwise: false };
  }
  return undefined;
}

/** The MAC terms of every node a group touches (producers, consumers, depthwise convs). */
export function macTerms(ix: GraphIndex, shapes: MeasuredShapes, groups: ChannelGroup[]): MacTerm[] {
  const byName = new Map(ix.graph.node.map((n) => [n.name || n.output[0]!, n]));
  const role = new Map<string, { in: number[]; out?: number; parts?: number; dw?: number }>();
  const at = (name: string): { in: number[]; out?: number; parts?: number; dw?: number } => role.get(name) ?? (role.set(name, { in: [] }), role.get(name)!);
  groups.forEach((g, l) => {
    for (const p of g.producers) Object.assign(at(p), { out: l, parts: Math.max(1, g.cuts.filter((c) => c.node === p && c.input === 1).length) });
    for (const c of g.consumers) at(c).in.push(l);
    for (const d of g.depthwise) at(d).dw = l;
  });
  const terms: MacTerm[] = [];
  for (const [name, r] of role) {
    const m = nodeMacs(ix, shapes, byName.get(name)!)!;
    if (r.dw !== undefined) {
      terms.push({ node: name, perUnit: m.macs / m.outCh, factors: [{ group: r.dw }] });
      continue;
    }
    const inWidth = r.in.reduce((a, l) => a + groups[l]!.width, 0);
    const input: MacFactor = !r.in.length ? m.inCh : r.in.length === 1 && inWidth === m.inCh ? { group: r.in[0]! } : { groups: r.in, fixed: m.inCh - inWidth };
    const parts = r.parts ?? 1;
    const output: MacFactor = r.out === undefined ? m.outCh : parts === 1 ? { group: r.out } : { groups: new Array<number>(parts).fill(r.out), fixed: m.outCh - parts * groups[r.out]!.width };
    terms.push({ node: name, perUnit: m.macs / (m.inCh * m.outCh), factors: [input, output] });
  }
  return terms;
}

/** Extra MACs of growing group l by n channels at the kept widths `kept` (its terms are linear in its own width). */
export function growthMacs(terms: MacTerm[], l: number, n: number, kept: number[]): number {
  const copies = (f: MacFactor): number => factorGroups(f).filter((g) => g === l).length;
  return terms.reduce((a, t) => a + t.perUnit * n * t.factors.reduce<number>((p, f) => p * (copies(f) || factorValue(f, kept)), 1), 0);
}

/** MACs of the terms at the given kept width of every group. */
export function termsMacs(terms: MacTerm[], widths: number[]): number {
  return terms.reduce((a, t) => a + t.perUnit * t.factors.reduce<number>((p, f) => p * factorValue(f, widths), 1), 0);
}

/** Each group's share of the MACs at the given widths (a term that carries two groups is split between them). */
export function groupMacs(terms: MacTerm[], widths: number[]): number[] {
  const per = widths.map(() => 0);
  for (const t of terms) {
    const gs = t.factors.flatMap(factorGroups);
    const m = termsMacs([t], widths);
    for (const g of gs) per[g]! += m / gs.length;
  }
  return per;
}

/** MACs of the nodes the plan's terms name, recounted from the pruned graph on its own measured shapes. */
export async function recountChannelMacs(pruned: OnnxModel, nodes: string[], size?: InputSize, measured?: MeasuredShapes): Promise<number> {
  const shapes = measured ?? await measureShapes(pruned, size);
  const ix = new GraphIndex(pruned.proto.graph!, pruned.ext);
  const byName = new Map(ix.graph.node.map((n) => [n.name || n.output[0]!, n]));
  return nodes.reduce((a, name) => {
    const n = byName.get(name);
    if (!n) throw new OptinError('runtime', `${pruned.path}: node "${name}" is missing from the pruned graph`);
    return a + nodeMacs(ix, shapes, n)!.macs;
  }, 0);
}
