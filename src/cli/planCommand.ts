import { OptinError } from '../engine/errors';
import { makePlan, readScores } from '../engine/plan/files';
import { writeFileAtomic } from '../engine/util/atomic';
import { checkFlags, parseArgs } from './args';
import { si } from './format';
import { multipleOfFlag } from './common';

const USAGE = 'usage: optin plan <scores.json> --budget C [--multiple-of N] [--seq-len S] --out plan.json   (C = fraction of MACs kept, e.g. 0.6)';

/** `optin plan`: the OPTIN mask search at a MAC budget, from a saved scores file. */
export async function runPlan(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['budget', 'out', 'seq-len', 'multiple-of']);
  checkFlags(args, ['budget', 'out', 'seq-len', 'multiple-of', 'json'], 'plan');
  if (args.positional.length !== 1) throw new OptinError('usage', USAGE);
  const b = args.flags.get('budget');
  const out = args.flags.get('out');
  if (typeof b !== 'string' || typeof out !== 'string') throw new OptinError('usage', USAGE);
  const budget = Number(b);
  if (!Number.isFinite(budget)) throw new OptinError('usage', `--budget "${b}" is not a number`);
  const sl = args.flags.get('seq-len');
  const seqLen = typeof sl === 'string' ? Number(sl) : undefined;
  if (seqLen !== undefined && !(seqLen > 0)) throw new OptinError('usage', `--seq-len must be positive`);
  const scores = readScores(args.positional[0]!);
  const plan = makePlan(scores, budget, seqLen, multipleOfFlag(args));
  writeFileAtomic(out, JSON.stringify(plan, null, 1) + '\n');
  if (args.flags.has('json')) process.stdout.write(JSON.stringify({ budget: plan.budget, macs: plan.macs, layers: plan.layers }) + '\n');
  else {
    process.stdout.write(`budget ${budget}: ${si(plan.macs.kept)} of ${si(plan.macs.baseline)} MACs kept (${(100 * plan.macs.ratio).toFixed(1)}%) at sequence length ${plan.macs.seqLen.toFixed(1)}\n`);
    plan.layers.forEach((l, i) => process.stdout.write(`layer ${i}: ${l.heads}/${plan.model.layers[i]!.heads} heads, ${l.neurons}/${plan.model.layers[i]!.ffn} neurons\n`));
    process.stdout.write(`wrote ${out}\n`);
  }
  return 0;
}
