import type { OnnxModel } from '../onnx/model';
import type { CalibrationBatch } from '../data/calibration';
import type { EpChoice } from '../runtime/providers';
import { OptinError } from '../errors';
import { compareWithMasked, withinTolerance, type Verification } from '../verify/verify';
import type { PlanFile } from '../plan/schema';
import { applyChannelKeep } from './apply';
import { channelMaskFeeds, instrumentChannels } from './instrument';
import { recountChannelMacs } from './macs';
import type { ChannelStructure } from './structure';

/**
 * Cut a channel plan (on `model`, which may carry compensated biases) and prove it: the pruned model's outputs equal the original's with the same
 * channels masked (within 1e-4 of the output scale) on the calibration batch, and its MACs,
 * recounted from the pruned graph, equal the plan's.
 * @throws OptinError('runtime') with the numbers when either check fails
 */
export async function cutAndVerifyChannels(model: OnnxModel, cs: ChannelStructure, plan: PlanFile, batch: CalibrationBatch, ep: EpChoice, out: string, metadata: Record<string, string>): Promise<{ pruned: OnnxModel; verification: Verification }> {
  const keep = plan.keep.neurons;
  const pruned = { ...applyChannelKeep(model, cs, keep, metadata), path: out };
  const masked = instrumentChannels(model, cs, cs.groups.map((_, l) => l), []);
  const { diff, scale, agreement, provider } = await compareWithMasked({
    original: model, masked, pruned, batch, ep, outputs: cs.outputs, chunk: Math.min(batch.batch, 16), rows: batch.batch,
    masks: (rows) => channelMaskFeeds(cs, keep, rows),
  });
  const tolerance = withinTolerance(out, diff, scale);
  const macs = await recountChannelMacs(pruned, plan.model.channels!.terms.map((t) => t.node), cs.inputSize);
  if (Math.abs(macs - plan.macs.kept) > 1e-6 * Math.max(1, plan.macs.kept)) {
    throw new OptinError('runtime', `${out}: verification failed: the pruned graph has ${macs} MACs in its pruned convolutions/projections, the plan says ${plan.macs.kept}`);
  }
  return { pruned, verification: { maxAbsDiff: diff, outputScale: scale, tolerance, macs, ...(agreement !== undefined ? { argmaxAgreement: agreement } : {}), provider } };
}
