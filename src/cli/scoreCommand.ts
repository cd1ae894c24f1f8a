import * as path from 'node:path';
import { OptinError } from '../engine/errors';
import { EngineClient } from '../engine/worker/client';
import { writeFileAtomic } from '../engine/util/atomic';
import type { EpChoice } from '../engine/runtime/providers';
import { checkFlags, intFlag, parseArgs } from './args';
import { ProgressBar } from './progress';

const EPS: EpChoice[] = ['auto', 'cpu', 'cuda', 'dml', 'coreml'];
const USAGE = 'usage: optin score <model.onnx> [--data PATH] [--tokenizer DIR] [--samples N] [--max-length N] [--mode exact] [--ep auto|cpu|cuda|dml|coreml] [--seq-len N] [--features auto|ffn-output|attention-input] --out scores.json';

/** `optin score`: OPTIN importance of every head and FFN neuron, written as JSON. */
export async function runScore(argv: string[]): Promise<number> {
  const valued = ['data', 'tokenizer', 'samples', 'max-length', 'mode', 'ep', 'seq-len', 'out', 'preprocessor', 'features'];
  const args = parseArgs(argv, valued);
  checkFlags(args, [...valued, 'quiet'], 'score');
  if (args.positional.length !== 1) throw new OptinError('usage', USAGE);
  const out = args.flags.get('out');
  if (typeof out !== 'string') throw new OptinError('usage', `--out is required; ${USAGE}`);
  const mode = (args.flags.get('mode') ?? 'exact') as string;
  if (mode !== 'exact') throw new OptinError('usage', `--mode ${mode} is not available yet; this version computes exact scores (--mode exact)`);
  const ep = (args.flags.get('ep') ?? 'cpu') as EpChoice;
  if (!EPS.includes(ep)) throw new OptinError('usage', `--ep must be one of ${EPS.join(', ')}`);
  const str = (k: string): string | undefined => { const v = args.flags.get(k); return typeof v === 'string' ? v : undefined; };
  const features = (args.flags.get('features') ?? 'auto') as 'auto' | 'ffn-output' | 'attention-input';
  if (!['auto', 'ffn-output', 'attention-input'].includes(features)) throw new OptinError('usage', '--features must be auto, ffn-output or attention-input');
  const samples = intFlag(args, 'samples');
  const maxLength = intFlag(args, 'max-length');
  const seqLen = intFlag(args, 'seq-len');
  const engine = new EngineClient(path.join(__dirname, 'engineWorker.js'));
  const ac = new AbortController();
  const onSigint = (): void => { process.stderr.write('\ncancelling...\n'); ac.abort(); };
  process.once('SIGINT', onSigint);
  const bar = args.flags.has('quiet') ? undefined : new ProgressBar();
  try {
    const scores = await engine.score({
      model: args.positional[0]!,
      data: { ...(str('data') ? { data: str('data')! } : {}), ...(str('tokenizer') ? { tokenizer: str('tokenizer')! } : {}), ...(samples ? { samples } : {}), ...(maxLength ? { maxLength } : {}), ...(str('preprocessor') ? { preprocessor: str('preprocessor')! } : {}) },
      ep, mode: 'exact', features, ...(seqLen ? { seqLen } : {}),
    }, (p, warning) => {
      if (warning) process.stderr.write(`optin: warning: ${warning}\n`);
      bar?.update(p);
    }, ac.signal);
    bar?.done();
    writeFileAtomic(out, JSON.stringify(scores) + '\n');
    const n = scores.heads.flat().length + scores.neurons.flat().length;
    process.stderr.write(`scored ${n} elements of ${scores.model.layers.length} layers in ${scores.seconds.toFixed(1)} s on ${scores.provider}; wrote ${out}\n`);
    return 0;
  } catch (e) {
    bar?.done();
    if (e instanceof OptinError && e.code === 'cancelled') {
      process.stderr.write('optin: cancelled; nothing was written\n');
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    await engine.dispose();
  }
}
