import { keptHeadMacs, unitMacs } from '../flops';
import type { PlanFile } from './schema';

/** A layer keeping less than this share of its MACs is called out. */
export const GUTTED_LAYER = 0.2;

/**
 * Layers a plan removes most of, in words, e.g. "layer 3 keeps 0 of 4 heads and 1 of 256 neurons
 * (1% of its MACs)": such plans often cost more accuracy than the MAC count suggests.
 */
export function planWarnings(plan: PlanFile): string[] {
  const s = plan.macs.seqLen, D = plan.model.hidden;
  return plan.model.layers.flatMap((g, l) => {
    const k = plan.layers[l]!;
    const u = unitMacs({ queries: s, keys: s, tokens: s, hidden: D }, g.headSize, g.vHeadSize, !!g.gated, g.group, g.sharedKv);
    const share = (keptHeadMacs(u, k.heads) + k.neurons * u.neuron) / (keptHeadMacs(u, g.heads) + g.ffn * u.neuron);
    return share < GUTTED_LAYER ? [`layer ${l} keeps ${k.heads} of ${g.heads} heads and ${k.neurons} of ${g.ffn} neurons (${Math.round(100 * share)}% of its MACs); expect a larger accuracy cost there`] : [];
  });
}
