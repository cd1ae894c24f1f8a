#!/usr/bin/env node
import { isOptinError, OptinError } from '../engine/errors';
import { runInspect } from './inspectCommand';
import { runScore } from './scoreCommand';
import { runPlan } from './planCommand';
import { runApply } from './applyCommand';
import { runEval } from './evalCommand';
import { runBench } from './benchCommand';
import { runPruneCommand } from './pruneCommand';
import { runLatency } from './latencyCommand';
import { runSweepCommand } from './sweepCommand';

const USAGE = `usage: optin <command> [options]

commands:
  inspect <model.onnx> [--seq-len N] [--input-size HxW] [--json]
                                                detected structure and MACs (--input-size: for dynamic image height/width)
  score <model.onnx> [--data PATH] [--tokenizer DIR] [--samples N] [--ep E] --out scores.json
                                                OPTIN importance of every head and FFN neuron
  plan <scores.json> --budget C [--multiple-of N] [--allocation uniform|global] --out plan.json
                                                heads/neurons to keep at a MAC budget (C in (0,1]); N: kept neurons per layer a multiple of N;
                                                channel groups share the budget uniformly, or by one global ranking
  plan <scores.json> --latency C --table table.json --out plan.json
                                                the same under a latency target (C = fraction of the dense latency)
  latency <model.onnx> [--batch B] [--seq-len S] [--ep E] [--out table.json]
                                                per-layer latency table (heads and neurons at several widths; cached)
  apply <model.onnx> --plan plan.json [--tune | --no-tune] [--data PATH] [--out PATH]
                                                write the physically pruned model, verified (channel groups repaired unless --no-tune)
  prune <model.onnx> (--budget C | --latency C) [--multiple-of N] [--data PATH] [--tune | --no-tune] [--eval PATH | --no-eval] [--ranking optin|magnitude|wanda|l1] [--out PATH]
                                                score + plan + apply + verify + eval + bench, with a report (without --eval: evaluated on the
                                                test split beside --data, else on held-out --data examples; CNNs: beside the L1 baseline)
  sweep <model.onnx> (--budgets 0.9,0.8,... | --latency 0.9,0.7,...) [--data PATH] [--eval PATH] [--csv F]
                                                the speed/accuracy frontier: one scoring run, every budget applied, verified, evaluated, timed
  eval <model.onnx> --data PATH [--reference model.onnx]
                                                accuracy on labelled data, agreement with a reference
  bench <a.onnx> <b.onnx> [--batch B] [--seq-len S] [--input-size HxW]
                                                interleaved median latency and speedup

Exit codes: 0 ok, 1 internal error or the engine process crashed, 2 refused input (reason on stderr).`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'inspect':
      return runInspect(rest);
    case 'score':
      return runScore(rest);
    case 'plan':
      return runPlan(rest);
    case 'apply':
      return runApply(rest);
    case 'prune':
      return runPruneCommand(rest);
    case 'eval':
      return runEval(rest);
    case 'bench':
      return runBench(rest);
    case 'latency':
      return runLatency(rest);
    case 'sweep':
      return runSweepCommand(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE + '\n');
      return cmd === undefined ? 2 : 0;
    case '--version':
      process.stdout.write(`${process.env.OPTIN_VERSION ?? '0.1.0'}\n`);
      return 0;
    default:
      throw new OptinError('usage', `unknown command "${cmd}"; run "optin --help"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    if (isOptinError(e)) {
      process.stderr.write(`optin: ${e.message}\n`);
      process.exitCode = e.code === 'crashed' ? 1 : 2;
    } else {
      process.stderr.write(`optin: internal error: ${e instanceof Error ? (process.env.OPTIN_DEBUG ? e.stack : e.message) : String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
