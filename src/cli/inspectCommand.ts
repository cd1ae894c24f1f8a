import { OptinError } from '../engine/errors';
import { checkFlags, intFlag, parseArgs } from './args';
import { formatInspect, inspectJson } from './format';
import { newEngine, str } from './common';
import { parseInputSize } from '../engine/data/inputSize';

/** `optin inspect <model.onnx> [--seq-len N] [--input-size HxW] [--json]` (the analysis runs in the engine process). */
export async function runInspect(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['seq-len', 'input-size']);
  checkFlags(args, ['seq-len', 'input-size', 'json'], 'inspect');
  if (args.positional.length !== 1) throw new OptinError('usage', 'usage: optin inspect <model.onnx> [--seq-len N] [--input-size HxW] [--json]');
  const size = str(args, 'input-size');
  const engine = newEngine();
  try {
    const report = await engine.inspect(args.positional[0]!, intFlag(args, 'seq-len'), size ? parseInputSize(size) : undefined);
    process.stdout.write(args.flags.has('json') ? JSON.stringify(inspectJson(report), null, 2) + '\n' : formatInspect(report) + '\n');
    return 0;
  } finally {
    await engine.dispose();
  }
}
