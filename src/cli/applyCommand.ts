import * as fs from 'node:fs';
import { OptinError } from '../engine/errors';
import type { PlanFile } from '../engine/plan/schema';
import { checkFlags, parseArgs } from './args';
import { DATA_FLAGS, dataOptions, epFlag, repairFlags, str, withEngine } from './common';
import { formatApply } from './report';
import { defaultOutput } from '../engine/prune/output';

const USAGE = 'usage: optin apply <model.onnx> --plan plan.json [--data PATH] [--tune | --refit | --no-tune] [--out PATH] [--ep E] [--json]';

function readPlan(file: string): PlanFile {
  let j: PlanFile;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8')) as PlanFile;
  } catch (e) {
    throw new OptinError('data', `cannot read plan ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (j.schema !== 'optin-plan') throw new OptinError('data', `${file} is not an OPTIN plan (schema "${String(j.schema)}")`);
  return j;
}

/** `optin apply`: write the physically pruned model of a plan, verified. */
export async function runApply(argv: string[]): Promise<number> {
  const valued = [...DATA_FLAGS, 'plan', 'out', 'ep'];
  const args = parseArgs(argv, valued);
  checkFlags(args, [...valued, 'tune', 'refit', 'no-tune', 'json'], 'apply');
  if (args.positional.length !== 1 || !str(args, 'plan')) throw new OptinError('usage', USAGE);
  const plan = readPlan(str(args, 'plan')!);
  const out = str(args, 'out') ?? defaultOutput(args.positional[0]!, plan.budget);
  return withEngine(async (engine, signal) => {
    await engine.preflight({ model: args.positional[0]!, data: dataOptions(args), out, ...(args.flags.has('refit') ? { repair: '--refit' as const } : args.flags.has('tune') ? { repair: '--tune' as const } : {}) });
    const r = await engine.apply({
      model: args.positional[0]!, plan, data: dataOptions(args), ep: epFlag(args), ...repairFlags(args), ...(str(args, 'out') ? { out: str(args, 'out')! } : {}),
    }, (s) => { if (!args.flags.has('json')) process.stderr.write(`${s}...\n`); }, signal);
    process.stdout.write(args.flags.has('json') ? JSON.stringify(r) + '\n' : formatApply(r) + '\n');
    return 0;
  }, [out]);
}
