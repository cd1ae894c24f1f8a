import * as path from 'node:path';
import { OptinError } from '../engine/errors';
import { checkFlags, intFlag, parseArgs } from './args';
import { epFlag, str, withEngine } from './common';
import { parseInputSize } from '../engine/data/inputSize';

const USAGE = 'usage: optin bench <a.onnx> <b.onnx> [...] [--batch B] [--seq-len S] [--runs N] [--threads T] [--input-size HxW] [--ep E] [--json]';

/** `optin bench`: median latency of models, runs interleaved in one process, and the ratios. */
export async function runBench(argv: string[]): Promise<number> {
  const valued = ['batch', 'seq-len', 'runs', 'threads', 'ep', 'input-size'];
  const args = parseArgs(argv, valued);
  checkFlags(args, [...valued, 'json'], 'bench');
  if (args.positional.length < 1) throw new OptinError('usage', USAGE);
  const [batch, seqLen, runs, threads] = ['batch', 'seq-len', 'runs', 'threads'].map((k) => intFlag(args, k));
  return withEngine(async (engine, signal) => {
    const r = await engine.bench(args.positional, {
      ep: epFlag(args), ...(batch ? { batch } : {}), ...(seqLen ? { seqLen } : {}), ...(runs ? { runs } : {}), ...(threads ? { threads } : {}),
      ...(str(args, 'input-size') ? { inputSize: parseInputSize(str(args, 'input-size')!) } : {}),
    }, signal);
    if (args.flags.has('json')) process.stdout.write(JSON.stringify(r) + '\n');
    else {
      process.stdout.write(`${r.shape}, ${r.runs} interleaved runs each after warm-up, ${r.provider}, ${r.threads} threads\n`);
      r.models.forEach((m, i) => process.stdout.write(`${path.basename(m.model).padEnd(40)} median ${m.medianMs.toFixed(2)} ms (p10 ${m.p10Ms.toFixed(2)}, p90 ${m.p90Ms.toFixed(2)})${i ? `  speedup ${r.speedup[i]!.toFixed(2)}x` : ''}\n`));
      if (r.decode) {
        process.stdout.write(`decode: one new token per row after a cache of ${r.decode.context} tokens, batch ${r.batch}\n`);
        r.decode.models.forEach((d, i) => process.stdout.write(`${path.basename(r.models[i]!.model).padEnd(40)} median ${d.medianMs.toFixed(2)} ms per step, ${d.tokensPerSecond.toFixed(0)} tokens/s${i ? `  speedup ${r.decode!.speedup[i]!.toFixed(2)}x` : ''}\n`));
      }
    }
    return 0;
  });
}
