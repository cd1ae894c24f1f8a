import { OptinError } from '../engine/errors';
import { checkFlags, intFlag, parseArgs } from './args';
import { formatInspect, inspectJson } from './format';
import { newEngine } from './common';

/** `optin inspect <model.onnx> [--seq-len N] [--json]` (the analysis runs in the engine process). */
export async function runInspect(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['seq-len']);
  checkFlags(args, ['seq-len', 'json'], 'inspect');
  if (args.positional.length !== 1) throw new OptinError('usage', 'usage: optin inspect <model.onnx> [--seq-len N] [--json]');
  const engine = newEngine();
  try {
    const report = await engine.inspect(args.positional[0]!, intFlag(args, 'seq-len'));
    process.stdout.write(args.flags.has('json') ? JSON.stringify(inspectJson(report), null, 2) + '\n' : formatInspect(report) + '\n');
    return 0;
  } finally {
    await engine.dispose();
  }
}
