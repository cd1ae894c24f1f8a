import { OptinError } from '../engine/errors';
import { writeFileAtomic } from '../engine/util/atomic';
import { checkFlags, intFlag, parseArgs } from './args';
import { DATA_FLAGS, MODE_FLAGS, dataOptions, epFlag, modeOptions, str, withEngine } from './common';
import { ProgressBar } from './progress';
import { describeCpuNodes } from '../engine/runtime/fallback';

const USAGE = 'usage: optin score <model.onnx> [--data PATH] [--tokenizer DIR] [--samples N] [--max-length N] [--mode exact|fast|auto] [--neuron-examples N] [--horizon H] [--time-budget MIN] [--ranking optin|magnitude|wanda|l1] [--ep auto|cpu|cuda|dml|coreml] [--seq-len N] [--features auto|ffn-output|attention-input] --out scores.json';

/** `optin score`: OPTIN importance of every head and FFN neuron, written as JSON. */
export async function runScore(argv: string[]): Promise<number> {
  const valued = [...DATA_FLAGS, ...MODE_FLAGS, 'ep', 'seq-len', 'out', 'features', 'ranking'];
  const args = parseArgs(argv, valued);
  checkFlags(args, [...valued, 'quiet'], 'score');
  if (args.positional.length !== 1) throw new OptinError('usage', USAGE);
  const out = str(args, 'out');
  if (!out) throw new OptinError('usage', `--out is required; ${USAGE}`);
  const mode = modeOptions(args);
  const features = (str(args, 'features') ?? 'auto') as 'auto' | 'ffn-output' | 'attention-input';
  if (!['auto', 'ffn-output', 'attention-input'].includes(features)) throw new OptinError('usage', '--features must be auto, ffn-output or attention-input');
  const ranking = (str(args, 'ranking') ?? 'optin') as 'optin' | 'magnitude' | 'wanda' | 'l1';
  if (!['optin', 'magnitude', 'wanda', 'l1'].includes(ranking)) throw new OptinError('usage', '--ranking must be optin, magnitude, wanda (activation-weighted magnitude, transformers) or l1 (L1-norm filters, channel groups only)');
  const seqLen = intFlag(args, 'seq-len');
  const ep = epFlag(args);
  const bar = args.flags.has('quiet') ? undefined : new ProgressBar();
  return withEngine(async (engine, signal) => {
    try {
      await engine.preflight({ model: args.positional[0]!, data: dataOptions(args), files: [out] });
      const scores = await engine.score({ model: args.positional[0]!, data: dataOptions(args), ep, ...mode, ranking, features, ...(seqLen ? { seqLen } : {}) }, (p, warning) => {
        if (warning) process.stderr.write(`optin: warning: ${warning}\n`);
        bar?.update(p);
      }, signal);
      bar?.done();
      writeFileAtomic(out, JSON.stringify(scores) + '\n');
      const n = scores.heads.flat().length + scores.neurons.flat().length;
      if (scores.cpuNodes) process.stderr.write(`${describeCpuNodes(scores.cpuNodes, scores.provider.split(' ')[0]!)}\n`);
      process.stderr.write(`scored ${n} elements of ${scores.model.layers.length} layers in ${scores.seconds.toFixed(1)} s on ${scores.provider}${scores.inputsOnDevice ? ', shared inputs kept on the device' : ''}${bucketNote(scores)} (${scores.mode}${scores.modeReason ? `: ${scores.modeReason}` : ''}); wrote ${out}\n`);
      return 0;
    } finally {
      bar?.done();
    }
  }, [out]);
}

/** ", in 4 length buckets (212 of 400 padded tokens)" when the text batch was scored by length. */
function bucketNote(s: { calibration: { examples: number; seqLen: number; buckets?: Array<{ examples: number; seqLen: number }> } }): string {
  const b = s.calibration.buckets;
  if (!b) return '';
  return `, in ${b.length} length buckets (${b.reduce((a, x) => a + x.examples * x.seqLen, 0)} of ${s.calibration.examples * s.calibration.seqLen} padded tokens)`;
}
