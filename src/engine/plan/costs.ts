import { keptHeadMacs, macGeometry, unitMacs } from '../flops';
import type { LayerGeometry } from './schema';

/**
 * What the mask search spends: the cost of keeping k heads (or k neurons) of layer l, 0 at k = 0
 * and non-decreasing in k. MACs are linear in k; measured latency is not.
 */
export interface CostModel {
  unit: 'macs' | 'ms';
  head(l: number, k: number): number;
  neuron(l: number, k: number): number;
  /** Set when every neuron of every layer costs exactly this (MACs): the search then counts neurons exactly. */
  perNeuron?: number;
}

/**
 * The paper's MAC model (docs/method.md §3) at a sequence length; layers with a measured shape
 * (staged models) use their own width, positions and keys per query instead.
 */
export function macCosts(layers: LayerGeometry[], hidden: number, seqLen: number): CostModel {
  const unit = layers.map((g) => unitMacs(macGeometry(g.shape, seqLen, hidden), g.headSize, g.vHeadSize, !!g.gated, g.group, g.sharedKv));
  const nm = unit.map((u) => u.neuron);
  const uniform = nm.every((x) => x === nm[0]);
  return { unit: 'macs', head: (l, k) => keptHeadMacs(unit[l]!, k), neuron: (l, k) => k * nm[l]!, ...(uniform && nm.length ? { perNeuron: nm[0]! } : {}) };
}
