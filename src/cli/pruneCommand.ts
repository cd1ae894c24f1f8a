import { OptinError } from '../engine/errors';
import { readScores } from '../engine/plan/files';
import { runPrune } from '../engine/worker/pipeline';
import { checkFlags, parseArgs } from './args';
import { DATA_FLAGS, MODE_FLAGS, targetFlag, multipleOfFlag, dataOptions, epFlag, modeOptions, str, withEngine, jobEvents, benchFlags, repairFlags, allocationFlag } from './common';
import { formatPrune } from './report';
import { defaultOutput } from '../engine/prune/output';

const USAGE = `usage: optin prune <model.onnx> (--budget C | --latency C [--decode]) [--multiple-of N] [--data PATH] [--tokenizer DIR] [--samples N] [--tune | --refit | --no-tune] [--allocation uniform|global]
         [--mode exact|fast|auto] [--neuron-examples N] [--horizon H] [--time-budget MIN] [--ranking optin|magnitude|wanda|l1] [--scores scores.json] [--eval <labelled data>] [--out PATH]
         [--no-compare] [--no-bench] [--bench-batch B] [--bench-seq-len S] [--ep E] [--json]`;

/** `optin prune`: score, plan, apply, verify, evaluate and benchmark in one go. */
export async function runPruneCommand(argv: string[]): Promise<number> {
  const valued = [...DATA_FLAGS, ...MODE_FLAGS, 'budget', 'latency', 'multiple-of', 'ranking', 'scores', 'eval', 'out', 'bench-batch', 'bench-seq-len', 'bench-runs', 'ep', 'allocation'];
  const args = parseArgs(argv, valued);
  checkFlags(args, [...valued, 'tune', 'refit', 'no-tune', 'no-compare', 'no-bench', 'no-eval', 'json', 'quiet', 'decode'], 'prune');
  if (args.positional.length !== 1) throw new OptinError('usage', USAGE);
  const target = targetFlag(args);
  if (args.flags.has('decode') && target.kind !== 'latency') throw new OptinError('usage', '--decode sets what a latency target times (one decode step with the key/value cache); give it with --latency C');
  const ranking = (str(args, 'ranking') ?? 'optin') as 'optin' | 'magnitude' | 'wanda' | 'l1';
  if (!['optin', 'magnitude', 'wanda', 'l1'].includes(ranking)) throw new OptinError('usage', '--ranking must be optin, magnitude, wanda (activation-weighted magnitude, transformers) or l1 (L1-norm filters, channel groups only)');
  const data = dataOptions(args);
  const evalPath = str(args, 'eval');
  const ev = jobEvents(args);
  const bar = ev.bar;
  return withEngine(async (engine, signal) => {
    try {
      const r = await runPrune(engine, {
        model: args.positional[0]!, budget: target.kind === 'macs' ? target.value : 1, ...(target.kind === 'latency' ? { latency: target.value, ...(args.flags.has('decode') ? { decode: true } : {}) } : {}), multipleOf: multipleOfFlag(args), data, ep: epFlag(args), ranking, scoring: modeOptions(args),
        ...(str(args, 'scores') ? { scores: readScores(str(args, 'scores')!) } : {}),
        ...repairFlags(args), ...(allocationFlag(args) ? { allocation: allocationFlag(args)! } : {}),
        ...(str(args, 'out') ? { out: str(args, 'out')! } : {}),
        ...(evalPath ? { evalData: { ...data, data: evalPath, samples: Number.MAX_SAFE_INTEGER } } : args.flags.has('no-eval') ? {} : { evalBesideData: true }),
        bench: args.flags.has('no-bench') ? false : benchFlags(args), ...(args.flags.has('no-compare') ? { compare: false } : {}),
      }, {
        progress: ev.progress, step: ev.step, note: (m) => process.stderr.write(`optin: note: ${m}\n`),
      }, signal);
      if (r.notEvaluated) process.stderr.write(`optin: warning: ${r.apply.output} was written and verified but not evaluated: ${r.notEvaluated}; pass --eval with labelled data, or --no-eval\n`);
      bar?.done();
      process.stdout.write(args.flags.has('json') ? JSON.stringify({ ...r, scores: undefined, plan: { budget: r.plan.budget, macs: r.plan.macs, ...(r.plan.latency ? { latency: r.plan.latency } : {}), keep: r.plan.keep } }) + '\n' : formatPrune(r) + '\n');
      if (r.warning) process.stderr.write(`optin: warning: ${r.warning}\n`);
      return 0;
    } finally {
      bar?.done();
    }
  }, [str(args, 'out') ?? defaultOutput(args.positional[0]!, target.value, target.kind)]);
}
