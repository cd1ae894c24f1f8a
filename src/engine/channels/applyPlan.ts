import type { OnnxModel } from '../onnx/model';
import type { CalibrationBatch } from '../data/calibration';
import { chunks } from '../data/batches';
import { sessionFor, toOrt } from '../optin/teacher';
import { describeSession, runSession } from '../runtime/session';
import type { EpChoice } from '../runtime/providers';
import { OptinError } from '../errors';
import type { Verification } from '../prune/verify';
import type { PlanFile } from '../plan/schema';
import { argmaxRows } from '../eval/evaluate';
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
  const a = await sessionFor(model, masked, `${model.path} (masked)`, ep);
  const b = await sessionFor(pruned, pruned.proto, `${out} (pruned)`, ep);
  let diff = 0, scale = 0, same = 0, compared = 0;
  try {
    for (const c of chunks(batch.feeds, batch.batch, Math.min(batch.batch, 16))) {
      const feeds = toOrt(c.feeds);
      const rows = Object.values(feeds)[0]!.dims[0]!;
      const ref = await runSession(a.session, { ...feeds, ...channelMaskFeeds(cs, keep, rows) }, `${model.path} (masked run)`);
      const got = await runSession(b.session, feeds, `${out} (pruned run)`);
      for (const name of cs.outputs) {
        const x = ref[name]!, y = got[name];
        if (!y) throw new OptinError('runtime', `${out}: output "${name}" is missing from the pruned model`);
        if (x.dims.join() !== y.dims.join()) throw new OptinError('runtime', `${out}: output "${name}" has shape [${y.dims}], masked original [${x.dims}]`);
        const xd = x.data as Float32Array, yd = y.data as Float32Array;
        for (let i = 0; i < xd.length; i++) { scale = Math.max(scale, Math.abs(xd[i]!)); diff = Math.max(diff, Math.abs(xd[i]! - yd[i]!)); }
        if (Number.isNaN(diff)) diff = Infinity;
      }
      const x = ref[cs.outputs[0]!]!, y = got[cs.outputs[0]!]!;
      if (x.dims.length === 2 && x.dims[1]! > 1) {
        const p = argmaxRows(x.data as Float32Array, x.dims[0]!, x.dims[1]!), q = argmaxRows(y.data as Float32Array, y.dims[0]!, y.dims[1]!);
        same += p.filter((v, i) => v === q[i]).length;
        compared += p.length;
      }
    }
  } finally {
    await a.session.release();
    await b.session.release();
  }
  const tolerance = 1e-4 * Math.max(scale, 1e-6);
  if (!(diff <= tolerance)) {
    throw new OptinError('runtime', `${out}: verification failed: outputs differ from the masked original by ${diff.toExponential(3)} (tolerance ${tolerance.toExponential(3)} = 1e-4 of output scale ${scale.toPrecision(4)})`);
  }
  const macs = await recountChannelMacs(pruned, plan.model.channels!.terms.map((t) => t.node), cs.inputSize);
  if (Math.abs(macs - plan.macs.kept) > 1e-6 * Math.max(1, plan.macs.kept)) {
    throw new OptinError('runtime', `${out}: verification failed: the pruned graph has ${macs} MACs in its pruned convolutions/projections, the plan says ${plan.macs.kept}`);
  }
  return { pruned, verification: { maxAbsDiff: diff, outputScale: scale, tolerance, macs, ...(compared ? { argmaxAgreement: same / compared } : {}), provider: describeSession(a) } };
}
