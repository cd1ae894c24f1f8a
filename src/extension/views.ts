import type { PlanFile, ScoresFile } from '../engine/plan/schema';
import type { PlanView } from '../shared/protocol';
import { importanceRanks } from '../shared/ranks';
import { planWarnings } from '../engine/plan/warnings';

/** Parameters of the prunable projections (weights + biases) for kept heads/neurons per layer. */
function prunableParams(plan: PlanFile, heads: number[], neurons: number[]): number {
  const D = plan.model.hidden;
  return plan.model.layers.reduce((a, g, l) => a + heads[l]! * ((2 * g.headSize + g.vHeadSize) * (D + 1) + g.vHeadSize * D) + neurons[l]! * (2 * D + 1), 0);
}

/** The panel's view of a plan. */
export function planView(plan: PlanFile): PlanView {
  return {
    budget: plan.budget,
    keepHeads: plan.keep.heads,
    keepNeurons: plan.keep.neurons,
    macs: { seqLen: plan.macs.seqLen, baseline: plan.macs.baseline, kept: plan.macs.kept },
    parameters: {
      before: prunableParams(plan, plan.model.layers.map((g) => g.heads), plan.model.layers.map((g) => g.ffn)),
      after: prunableParams(plan, plan.layers.map((l) => l.heads), plan.layers.map((l) => l.neurons)),
    },
    warnings: planWarnings(plan),
  };
}

/** Scores as CSV: layer, kind, index, score, rank, kept (under the plan when given). */
export function scoresCsv(scores: ScoresFile, plan?: PlanFile): string {
  const lines = ['layer,kind,index,score,rank,kept'];
  const hr = importanceRanks(scores.heads), nr = importanceRanks(scores.neurons);
  const kept = (set: number[][] | undefined, l: number, i: number): string => (set ? (set[l]!.includes(i) ? '1' : '0') : '');
  scores.heads.forEach((row, l) => row.forEach((s, h) => lines.push(`${l},head,${h},${s},${hr[l]![h]},${kept(plan?.keep.heads, l, h)}`)));
  scores.neurons.forEach((row, l) => row.forEach((s, j) => lines.push(`${l},neuron,${j},${s},${nr[l]![j]},${kept(plan?.keep.neurons, l, j)}`)));
  return lines.join('\n') + '\n';
}
