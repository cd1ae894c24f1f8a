import { create } from '@bufbuild/protobuf';
import { AttributeProtoSchema, AttributeType, StringStringEntryProtoSchema, type ModelProto, type NodeProto } from '../onnx/schema';
import type { OnnxModel } from '../onnx/model';
import { GraphIndex, attrInt, attrInts } from '../onnx/graph';
import { SCORE_OPS, findScoresMatMul } from '../structure/attention';
import { GraphBuilder, valueInfo } from '../graph/builder';
import { defaultOpset, removeDeadNodes, rewire, shallowCopyModel, topoSort } from '../graph/surgery';
import { residualAfter } from '../structure/detect';
import type { AttentionBlock, EncoderLayer, FfnBlock, Linear, ModelStructure } from '../structure/types';
import { OptinError } from '../errors';
import { TensorStore, headColumns, scaleAlong, take } from '../graph/tensors';
import { cutNBits, nbitsWeight } from '../graph/nbits';
import { headCount } from '../structure/layer';
import { modelInputs } from '../structure/inputs';
import { keptEntries } from '../groups/entries';
import type { ChannelGroup, Cut, UnitSite } from '../groups/types';

/** Which heads and neurons survive, per layer (sorted indices), with optional tuning scales. */
export interface KeepSet {
  heads: number[][];
  neurons: number[][];
  /** Scale per kept head / kept neuron (same order as the indices), folded into W_O / W2 rows. */
  scales?: { heads: number[][]; neurons: number[][] };
}

/** Options for {@link applyKeep}. */
export interface ApplyOptions {
  /** Key/value pairs added to the model's metadata_props. */
  metadata?: Record<string, string>;
}

class Pruner {
  readonly proto: ModelProto;
  private readonly ix: GraphIndex;
  private readonly b: GraphBuilder;
  private readonly store: TensorStore;
  private readonly nodes = new Map<string, NodeProto>();

  constructor(private readonly model: OnnxModel) {
    this.proto = shallowCopyModel(model.proto);
    const g = this.proto.graph!;
    this.ix = new GraphIndex(g, model.ext);
    this.b = new GraphBuilder(g, defaultOpset(this.proto));
    this.store = new TensorStore(this.ix);
    for (const n of g.node) this.nodes.set(n.name || n.output[0]!, n);
  }

  private node(id: string): NodeProto {
    const n = this.nodes.get(id);
    if (!n) throw new OptinError('unsupported', `${this.model.path}: node "${id}" from the structure is missing`);
    return n;
  }

  private replaceInput(n: NodeProto, from: string, to: string): void {
    n.input = n.input.map((i) => (i === from ? to : i));
  }

  /** A bias input of a `MatMulNBits` node: cut with its weight's rows. */
  private isHeldBias(s: { tensor: string; node: string }): boolean {
    const n = this.node(s.node);
    return n.opType === 'MatMulNBits' && n.input[5] === s.tensor;
  }

  private matmulOut(lin: Linear): string {
    return this.node(lin.node).output[0]!;
  }

  /**
   * Keep indices `idx` along `axis` of the weight `tensor` that node `id` reads; a `MatMulNBits`
   * weight (read as [out, in]) is cut in its packed form, with its bias when the node holds one.
   */
  private cutWeight(id: string, tensor: string, axis: number, idx: number[]): void {
    const n = this.node(id);
    const q = nbitsWeight(n);
    if (q && n.input[1] === tensor) {
      cutNBits(this.ix, this.store, q, axis === 0 ? 'out' : 'in', idx, (name, v) => this.setAttr(n, name, v));
      return;
    }
    this.replaceInput(n, tensor, this.store.write(tensor, take(this.store.read(tensor), axis, idx)));
  }

  /** Keep only input features `rows` of a projection, scaling each kept row group when asked. */
  sliceIn(lin: Linear & { einsum?: boolean }, rows: number[], groups?: { size: number; scales: number[] }): void {
    if (lin.op === 'MatMulNBits') {
      if (groups) throw new OptinError('unsupported', `${this.model.path}: ${lin.node} holds block-quantized weights; tuning scales cannot be folded into them (run without --tune)`);
      return this.cutWeight(lin.node, lin.weight, 1, rows);
    }
    const w = this.store.read(lin.weight);
    let cut;
    if (lin.einsum) {
      const heads = rows.filter((_, i) => i % w.dims[1]! === 0).map((r) => r / w.dims[1]!);
      cut = take(w, 0, heads);
      if (groups) scaleAlong(cut, 0, groups.scales);
    } else {
      const axis = lin.transposed ? 1 : 0;
      cut = take(w, axis, rows);
      if (groups) scaleAlong(cut, axis, rows.map((_, i) => groups.scales[Math.floor(i / groups.size)]!));
    }
    this.replaceInput(this.node(lin.node), lin.weight, this.store.write(lin.weight, cut));
  }

  /** Replace a sublayer that keeps nothing by its output bias (zeros shaped like the residual). */
  dropSublayer(lin: Linear, where: string): void {
    const r = residualAfter(this.ix, lin);
    if (!r) throw new OptinError('unsupported', `${where}: cannot remove the whole sublayer: no residual connection found after ${lin.node}`);
    if (this.b.opset < 9) throw new OptinError('unsupported', `${where}: removing a whole sublayer needs opset >= 9 (model has ${this.b.opset})`);
    const zeros = this.b.node('ConstantOfShape', [this.b.node('Shape', [r.skip], {}, 'residual_shape')], {}, 'zeros');
    const mm = this.matmulOut(lin);
    const includesBias = lin.bias !== undefined && (lin.op !== 'MatMul' || lin.output !== mm);
    const value = includesBias ? this.b.node('Add', [zeros, lin.bias!], {}, 'bias_only') : zeros;
    rewire(this.proto.graph!, r.value, value);
  }

  /**
   * A removed attention's key/value cache: each present output becomes its past with zeros for the
   * new positions (no attention reads it any more), so the K and V projections are no longer computed;
   * the cache keeps its shape, so the model's signature is unchanged. Only for the optimum layout
   * (present = Concat(past, new) along the sequence axis 2) with an input_ids input; otherwise the
   * projections stay, feeding the present output as before.
   */
  private idleCache(a: AttentionBlock): void {
    const inputs = modelInputs(this.ix);
    const ids = inputs.find((i) => i.role === 'input_ids');
    const cache = a.cache ?? [];
    if (!ids || this.b.opset < 9) return;
    for (let i = 0; i + 1 < cache.length; i += 2) {
      const past = cache[i]!, present = cache[i + 1]!;
      const cat = this.ix.producer.get(present);
      const rank = inputs.find((x) => x.name === past)?.shape.length;
      if (cat?.opType !== 'Concat' || cat.input.length !== 2 || cat.input[0] !== past || rank !== 4 || (attrInt(cat, 'axis', 0) + 4) % 4 !== 2) continue;
      const dims = this.b.node('Shape', [past], {}, 'idle_cache_shape');
      const tokens = this.b.slice1d(this.b.node('Shape', [ids.name], {}, 'new_tokens'), 1, 2);
      const shape = this.b.node('Concat', [this.b.slice1d(dims, 0, 2), tokens, this.b.slice1d(dims, 3, 4)], { axis: 0 }, 'idle_cache_new');
      cat.input[1] = this.b.node('ConstantOfShape', [shape], {}, 'idle_cache_zeros');
    }
  }

  setAttr(n: NodeProto, name: string, v: number | number[]): void {
    const a = n.attribute.find((x) => x.name === name);
    const next = Array.isArray(v)
      ? create(AttributeProtoSchema, { name, type: AttributeType.INTS, ints: v.map(BigInt) })
      : create(AttributeProtoSchema, { name, type: AttributeType.INT, i: BigInt(v) });
    if (a) n.attribute[n.attribute.indexOf(a)] = next;
    else n.attribute.push(next);
  }

  attention(a: AttentionBlock, keep: number[], scales: number[] | undefined, where: string): void {
    const H = a.heads, dv = a.vHeadSize, k = keep.length;
    if (k === H && !scales) return;
    if (k === 0) {
      this.dropSublayer(a.output, `${where} attention`);
      return this.idleCache(a);
    }
    if (k < H) {
      const unit = a.unit;
      if (!unit?.sites) throw new OptinError('unsupported', `${where} attention: its heads were not analysed on this model's measured shapes; analyse the model again (optin inspect) and cut with that structure`);
      this.cutUnit(unit, unit.sites, a.output.node, keep);
      if (a.folded) this.foldedTerms(a, keep);
      for (const name of a.cache ?? []) this.cacheHeads(name, k);
    }
    this.sliceIn(a.output, headColumns(keep, dv), scales ? { size: dv, scales } : undefined);
  }

  /**
   * Cut a unit group's kept units from every weight and bias it holds but those `reader` reads (the
   * output projection's rows, cut with the tuning scales), and scale the constants holding its extent;
   * segments of one tensor (packed query, key and value) are cut at once.
   */
  private cutUnit(unit: ChannelGroup, sites: UnitSite[], reader: string, keep: number[]): void {
    const byInput = new Map<string, Cut[]>();
    for (const c of unit.cuts) if (c.node !== reader && !this.isHeldBias(c)) byInput.set(`${c.node}#${c.input}`, [...(byInput.get(`${c.node}#${c.input}`) ?? []), c]);
    for (const list of byInput.values()) {
      const idx = [...list].sort((x, y) => (x.offset ?? 0) - (y.offset ?? 0)).flatMap((c) => keptEntries(c, unit.width, keep));
      this.cutWeight(list[0]!.node, list[0]!.tensor, list[0]!.axis, idx);
    }
    this.scaleSites(sites, unit.width, keep.length);
  }

  /**
   * The constants that hold a unit group's extent (shape entries, Split sizes, Slice bounds, the
   * literal a dim is multiplied by) scale from `width` to `kept` units; each reading node gets its own
   * copy, with the original's integer type and dims.
   */
  private scaleSites(sites: UnitSite[], width: number, kept: number): void {
    const by = new Map<string, UnitSite[]>();
    for (const s of sites) {
      const key = `${s.node}#${s.input}#${s.attribute ?? ''}`;
      by.set(key, [...(by.get(key) ?? []), s]);
    }
    for (const list of by.values()) {
      const n = this.node(list[0]!.node), at = list[0]!.input, name = list[0]!.attribute;
      const length = list[0]!.length;
      if (length !== undefined) {
        // Read at run time from a value the cut leaves alone: the kept extent is spliced in as literals.
        const parts: string[] = [];
        let from = 0;
        for (const s of [...list].sort((x, y) => x.index - y.index)) {
          if (s.index > from) parts.push(this.b.slice1d(n.input[at]!, from, s.index));
          const literal = this.b.ints([(s.value / width) * kept]);
          // `times` is a scalar or one entry: the product has the literal's one entry.
          parts.push(s.times ? this.b.node('Mul', [s.times, literal], {}, 'unit_extent') : literal);
          from = s.index + 1;
        }
        if (from < length) parts.push(this.b.slice1d(n.input[at]!, from, length));
        n.input[at] = this.b.node('Concat', parts, { axis: 0 }, 'unit_extent');
        continue;
      }
      if (name) {
        const ints = attrInts(n, name);
        if (!ints) {
          this.setAttr(n, name, (list[0]!.value / width) * kept);
          continue;
        }
        for (const s of list) ints[s.index] = (s.value / width) * kept;
        this.setAttr(n, name, ints);
        continue;
      }
      const old = this.ix.constant(n.input[at]!)!;
      const values = [...this.ix.constInts(n.input[at]!)!];
      for (const s of list) values[s.index] = (s.value / width) * kept;
      n.input[at] = this.b.ints(values, old.dims.map(Number), 'unit_extent', old.dataType);
    }
  }

  /** A key/value-cache graph input or output [batch, heads, length, size] keeps `k` heads. */
  private cacheHeads(name: string, k: number): void {
    const g = this.proto.graph!;
    const v = [...g.input, ...g.output].find((x) => x.name === name);
    const dim = v?.type?.value.case === 'tensorType' ? v.type.value.value.shape?.dim[1] : undefined;
    if (dim?.value.case === 'dimValue') dim.value = { case: 'dimValue', value: BigInt(k) };
  }

  /**
   * Heads folded into the batch axis: run-time terms added to the scores ([batch*heads, q, k]:
   * nn.MultiheadAttention's key-padding mask, expanded per head) are the same for every head, so
   * not the unit's; each keeps the kept heads' rows.
   */
  private foldedTerms(a: AttentionBlock, keep: number[]): void {
    const softmax = this.nodes.get(a.core);
    if (softmax?.opType !== 'Softmax') return;
    let v = softmax.input[0]!;
    for (let depth = 0; depth < 12; depth++) {
      const p = this.ix.producer.get(v);
      if (p?.opType === 'Reshape') {
        v = p.input[0]!;
        continue;
      }
      if (!p || !SCORE_OPS.has(p.opType)) return;
      let next: string | undefined;
      for (const i of p.input) {
        if (!i || this.ix.constant(i)) continue;
        if (!next && findScoresMatMul(this.ix, i, 0, true)) next = i;
        else this.foldedHeadTerm(p, i, a.heads, keep);
      }
      if (!next) return;
      v = next;
    }
  }

  /**
   * A run-time term added to scores whose heads are folded into the batch axis ([batch*heads, q, k]:
   * nn.MultiheadAttention's key-padding mask, expanded per head) keeps the kept heads' rows:
   * viewed as [batch, heads, ...], gathered, folded back.
   */
  private foldedHeadTerm(n: NodeProto, value: string, H: number, keep: number[]): void {
    const b = this.b;
    const rest = b.slice1d(b.node('Shape', [value], {}, 'term_shape'), 1, 1 << 30, 'term_rest');
    const perHead = b.node('Reshape', [value, b.node('Concat', [b.ints([-1, H]), rest], { axis: 0 }, 'term_heads_shape')], {}, 'term_heads');
    const kept = b.node('Gather', [perHead, b.ints(keep)], { axis: 1 }, 'term_kept');
    this.replaceInput(n, value, b.node('Reshape', [kept, b.node('Concat', [b.ints([-1]), rest], { axis: 0 }, 'term_folded_shape')], {}, 'term_folded'));
  }

  ffn(f: FfnBlock, keep: number[], scales: number[] | undefined, where: string): void {
    const I = f.width, k = keep.length;
    if (k === I && !scales) return;
    if (k === 0) return this.dropSublayer(f.down, `${where} FFN`);
    if (k < I) {
      if (!f.unit?.sites) throw new OptinError('unsupported', `${where} FFN: its neurons were not analysed on this model's measured shapes; analyse the model again (optin inspect) and cut with that structure`);
      this.cutUnit(f.unit, f.unit.sites, f.down.node, keep);
    }
    this.sliceIn(f.down, keep, scales ? { size: 1, scales } : undefined);
  }

  layer(l: EncoderLayer, keep: KeepSet): void {
    const where = `${this.model.path} layer ${l.index}`;
    if (l.attention) this.attention(l.attention, keep.heads[l.index]!, keep.scales?.heads[l.index], where);
    if (l.ffn) this.ffn(l.ffn, keep.neurons[l.index]!, keep.scales?.neurons[l.index], where);
  }

  finish(metadata: Record<string, string>): ModelProto {
    const g = this.proto.graph!;
    g.valueInfo = [];
    removeDeadNodes(g);
    topoSort(g);
    if (Number(this.proto.irVersion) < 4) {
      const listed = new Set(g.input.map((i) => i.name));
      for (const t of g.initializer) if (!listed.has(t.name)) g.input.push(valueInfo(t.name, t.dims.map(Number), t.dataType));
    }
    for (const [key, value] of Object.entries(metadata)) {
      this.proto.metadataProps = this.proto.metadataProps.filter((p) => p.key !== key);
      this.proto.metadataProps.push(create(StringStringEntryProtoSchema, { key, value }));
    }
    return this.proto;
  }
}

/** Refuse keep sets that do not fit the model (layer count, index ranges, order) or keep no head. */
export function checkKeep(st: ModelStructure, keep: KeepSet, where: string): void {
  if (keep.heads.length !== st.layers.length || keep.neurons.length !== st.layers.length) {
    throw new OptinError('data', `${where}: the plan has ${keep.heads.length} layers, the model ${st.layers.length}`);
  }
  st.layers.forEach((l, i) => {
    const bad = (idx: number[], n: number): boolean => idx.some((x, j) => !Number.isInteger(x) || x < 0 || x >= n || (j > 0 && x <= idx[j - 1]!));
    if (bad(keep.heads[i]!, headCount(l))) throw new OptinError('data', `${where}: layer ${i} head indices must be sorted, unique and < ${headCount(l)}`);
    if (bad(keep.neurons[i]!, l.ffn?.width ?? 0)) throw new OptinError('data', `${where}: layer ${i} neuron indices must be sorted, unique and < ${l.ffn?.width ?? 0}`);
  });
  if (keep.heads.every((h) => h.length === 0)) throw new OptinError('usage', `${where}: the plan keeps no attention head at all; nothing valid to write`);
}

/**
 * Physically remove pruned heads and neurons: slices Q/K/V columns and biases, output-projection
 * rows, FFN columns/rows, fused-attention weights and attributes, and every reshape on the way;
 * a sublayer that keeps nothing becomes its output bias. Returns a new in-memory model; the input
 * model object and file are left untouched.
 * @throws OptinError('data'|'usage'|'unsupported') naming the layer and what was expected.
 */
export function applyKeep(model: OnnxModel, st: ModelStructure, keep: KeepSet, opts: ApplyOptions = {}): ModelProto {
  checkKeep(st, keep, model.path);
  const p = new Pruner(model);
  for (const l of st.layers) p.layer(l, keep);
  return p.finish(opts.metadata ?? {});
}
