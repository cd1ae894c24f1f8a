#!/usr/bin/env node
import { isOptinError, OptinError } from '../engine/errors';
import { runInspect } from './inspectCommand';
import { runScore } from './scoreCommand';
import { runPlan } from './planCommand';

const USAGE = `usage: optin <command> [options]

commands:
  inspect <model.onnx> [--seq-len N] [--json]   detected transformer structure and MACs
  score <model.onnx> [--data PATH] [--tokenizer DIR] [--samples N] [--ep E] --out scores.json
                                                OPTIN importance of every head and FFN neuron
  plan <scores.json> --budget C --out plan.json  heads/neurons to keep at a MAC budget (C in (0,1])

Exit codes: 0 ok, 1 internal error, 2 refused input (reason on stderr).`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'inspect':
      return runInspect(rest);
    case 'score':
      return runScore(rest);
    case 'plan':
      return runPlan(rest);
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
      process.exitCode = 2;
    } else {
      process.stderr.write(`optin: internal error: ${e instanceof Error ? (process.env.OPTIN_DEBUG ? e.stack : e.message) : String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
