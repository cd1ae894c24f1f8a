import { OptinError } from '../engine/errors';
import { calibration, fixedMs } from '../engine/latency/table';
import { writeFileAtomic } from '../engine/util/atomic';
import { checkFlags, intFlag, parseArgs } from './args';
import { epFlag, str, withEngine } from './common';
import { table } from './format';

const USAGE = 'usage: optin latency <model.onnx> [--batch B] [--seq-len S] [--runs N] [--threads T] [--ep E] [--decode] [--fresh] [--out table.json] [--json]';

/** `optin latency`: the model's per-layer latency table (measured, or from the cache). */
export async function runLatency(argv: string[]): Promise<number> {
  const valued = ['batch', 'seq-len', 'runs', 'threads', 'ep', 'out'];
  const args = parseArgs(argv, valued);
  checkFlags(args, [...valued, 'fresh', 'json', 'quiet', 'decode'], 'latency');
  if (args.positional.length !== 1) throw new OptinError('usage', USAGE);
  const [batch, seqLen, runs, threads] = ['batch', 'seq-len', 'runs', 'threads'].map((k) => intFlag(args, k));
  const quiet = args.flags.has('json') || args.flags.has('quiet');
  return withEngine(async (engine, signal) => {
    const r = await engine.latency(args.positional[0]!, {
      ep: epFlag(args), ...(batch ? { batch } : {}), ...(seqLen ? { seqLen } : {}), ...(runs ? { runs } : {}), ...(threads ? { threads } : {}),
      ...(args.flags.has('fresh') ? { fresh: true } : {}), ...(args.flags.has('decode') ? { decode: true } : {}),
    }, (s) => { if (!quiet) process.stderr.write(`${s}...\n`); }, signal);
    const out = str(args, 'out');
    if (out) writeFileAtomic(out, JSON.stringify(r.table, null, 1) + '\n');
    if (args.flags.has('json')) {
      process.stdout.write(JSON.stringify(r) + '\n');
      return 0;
    }
    const t = r.table;
    const lines = [`${t.provider}, ${t.phase === 'decode' ? `one decode step, batch ${t.batch}, a cache of ${t.seqLen} tokens` : `batch ${t.batch} x ${t.seqLen} tokens`}, ${t.runs} interleaved runs per graph; dense model ${t.denseMs.toFixed(2)} ms median (smallest plan ${t.floor.ms.toFixed(2)} ms), ${fixedMs(t).toFixed(2)} ms of it outside the prunable sublayers; subgraph times scaled by ${calibration(t).scale.toFixed(3)} to whole-model time`];
    const rows = [['layer', 'heads kept: ms', 'neurons kept: ms', 'timed on']];
    t.layers.forEach((l, i) => rows.push([String(i), l.heads.kept.map((k, j) => `${k}:${l.heads.ms[j]!.toFixed(2)}`).join(' '), l.neurons.kept.map((k, j) => `${k}:${l.neurons.ms[j]!.toFixed(2)}`).join(' '), `layer ${l.measuredOn}`]));
    lines.push(table(rows), `${r.cached ? 'read from the cache' : 'measured and cached'}: ${r.file}${out ? `; wrote ${out}` : ''}`);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  });
}
