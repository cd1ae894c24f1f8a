import * as path from 'node:path';
import { EngineClient } from '../engine/worker/client';
import { OptinError } from '../engine/errors';
import { checkFlags, intFlag, parseArgs } from './args';
import { formatInspect, inspectJson } from './format';

/** `optin inspect <model.onnx> [--seq-len N] [--json]` (the analysis runs in the engine worker). */
export async function runInspect(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['seq-len']);
  checkFlags(args, ['seq-len', 'json'], 'inspect');
  if (args.positional.length !== 1) throw new OptinError('usage', 'usage: optin inspect <model.onnx> [--seq-len N] [--json]');
  const engine = new EngineClient(path.join(__dirname, 'engineWorker.js'));
  try {
    const report = await engine.inspect(args.positional[0]!, intFlag(args, 'seq-len'));
    process.stdout.write(args.flags.has('json') ? JSON.stringify(inspectJson(report), null, 2) + '\n' : formatInspect(report) + '\n');
    return 0;
  } finally {
    await engine.dispose();
  }
}
