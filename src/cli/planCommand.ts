import { OptinError } from '../engine/errors';
import { makeLatencyPlan, makePlan, readLatencyTable, readScores } from '../engine/plan/files';
import { writeFileAtomic } from '../engine/util/atomic';
import { checkFlags, parseArgs } from './args';
import { si } from './format';
import { allocationFlag, multipleOfFlag, targetFlag } from './common';
import { groupName } from '../engine/plan/schema';

const USAGE = 'usage: optin plan <scores.json> (--budget C | --latency C --table table.json) [--multiple-of N] [--allocation uniform|global] [--seq-len S] --out plan.json   (C = fraction of MACs, or of the dense latency, kept, e.g. 0.6)';

/** `optin plan`: the OPTIN mask search at a MAC budget, from a saved scores file. */
export async function runPlan(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['budget', 'latency', 'table', 'out', 'seq-len', 'multiple-of', 'allocation']);
  checkFlags(args, ['budget', 'latency', 'table', 'out', 'seq-len', 'multiple-of', 'allocation', 'json'], 'plan');
  if (args.positional.length !== 1) throw new OptinError('usage', USAGE);
  const out = args.flags.get('out');
  if (typeof out !== 'string') throw new OptinError('usage', USAGE);
  const target = targetFlag(args);
  const tableFile = args.flags.get('table');
  if (target.kind === 'latency' && typeof tableFile !== 'string') throw new OptinError('usage', '--latency needs --table table.json (from "optin latency <model.onnx> --out table.json")');
  const budget = target.value;
  const sl = args.flags.get('seq-len');
  const seqLen = typeof sl === 'string' ? Number(sl) : undefined;
  if (seqLen !== undefined && !(seqLen > 0)) throw new OptinError('usage', `--seq-len must be positive`);
  const scores = readScores(args.positional[0]!);
  const plan = target.kind === 'latency' ? makeLatencyPlan(scores, readLatencyTable(tableFile as string), budget, seqLen, multipleOfFlag(args)) : makePlan(scores, budget, seqLen, multipleOfFlag(args), allocationFlag(args));
  writeFileAtomic(out, JSON.stringify(plan, null, 1) + '\n');
  if (args.flags.has('json')) process.stdout.write(JSON.stringify({ budget: plan.budget, macs: plan.macs, ...(plan.latency ? { latency: plan.latency } : {}), layers: plan.layers }) + '\n');
  else {
    if (plan.latency) process.stdout.write(`latency target ${plan.latency.target}: predicted ${plan.latency.predictedMs.toFixed(2)} of ${plan.latency.denseMs.toFixed(2)} ms (${(100 * plan.latency.predictedMs / plan.latency.denseMs).toFixed(1)}%) on ${plan.latency.provider}, batch ${plan.latency.batch} x ${plan.latency.seqLen}\n`);
    process.stdout.write(`budget ${plan.latency ? plan.budget.toFixed(3) : budget}: ${si(plan.macs.kept)} of ${si(plan.macs.baseline)} MACs kept (${(100 * plan.macs.ratio).toFixed(1)}%) ${plan.model.layers.some((g) => g.shape) || plan.model.hybrid ? 'per example' : `at sequence length ${plan.macs.seqLen.toFixed(1)}`}\n`);
    plan.layers.forEach((l, i) => {
      const group = groupName(plan.model, i);
      process.stdout.write(group ? `${group}: ${l.neurons}/${plan.model.layers[i]!.ffn} channels\n` : `layer ${i}: ${l.heads}/${plan.model.layers[i]!.heads} heads, ${l.neurons}/${plan.model.layers[i]!.ffn} neurons\n`);
    });
    process.stdout.write(`wrote ${out}\n`);
  }
  return 0;
}
