import * as fs from 'node:fs';
import * as path from 'node:path';
import { OptinError } from '../engine/errors';
import { readScores } from '../engine/plan/files';
import { runSweep, type SweepReport } from '../engine/worker/sweep';
import { writeFileAtomic } from '../engine/util/atomic';
import { pct } from '../shared/format';
import { checkFlags, parseArgs } from './args';
import { DATA_FLAGS, MODE_FLAGS, dataOptions, epFlag, modeOptions, multipleOfFlag, str, withEngine, jobEvents, benchFlags } from './common';
import { table } from './format';

const USAGE = `usage: optin sweep <model.onnx> (--budgets 0.9,0.8,... | --latency 0.9,0.7,...) [--data PATH] [--eval <labelled data>] [--multiple-of N]
         [--scores scores.json] [--out-dir DIR] [--out frontier.json] [--csv frontier.csv] [--bench-batch B] [--bench-seq-len S] [--bench-runs N] [--no-compare] [--ep E] [--json]`;

function targetsOf(v: string | true | undefined, flag: string): number[] {
  if (typeof v !== 'string') throw new OptinError('usage', USAGE);
  const xs = v.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (!xs.length || xs.some((x) => !(x > 0 && x <= 1))) throw new OptinError('usage', `--${flag} "${v}": every value must be in (0, 1], comma-separated (e.g. 0.9,0.7,0.5)`);
  return xs;
}

/** The frontier as CSV: one row for the dense model, one per target. */
export function sweepCsv(r: SweepReport): string {
  const rows = [['target', 'macs_ratio', 'params_ratio', 'accuracy', 'miou', 'agreement', 'median_ms', 'p10_ms', 'p90_ms', 'speedup', 'predicted_latency_ratio', 'max_abs_diff', 'output', 'l1_accuracy', 'l1_miou', 'l1_agreement']];
  rows.push(['dense', '1', '1', r.dense.accuracy?.toString() ?? '', r.dense.miou?.toString() ?? '', '1', r.dense.medianMs.toFixed(3), r.dense.p10Ms.toFixed(3), r.dense.p90Ms.toFixed(3), '1', '', '0', r.model, '', '', '']);
  for (const p of r.points) {
    const b = p.baseline;
    rows.push([String(p.target), p.macsRatio.toFixed(4), p.paramsRatio.toFixed(4), p.accuracy?.toString() ?? '', p.miou?.toString() ?? '', p.agreement.toString(), p.medianMs.toFixed(3), p.p10Ms.toFixed(3), p.p90Ms.toFixed(3), p.speedup.toFixed(3), p.predictedRatio?.toFixed(4) ?? '', p.maxAbsDiff.toExponential(2), p.output, b?.accuracy?.toString() ?? '', b?.miou?.toString() ?? '', b?.agreement.toString() ?? '']);
  }
  return rows.map((r) => r.map((c) => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(',')).join('\n') + '\n';
}

/** The frontier as a text table. */
export function formatSweep(r: SweepReport): string {
  const e = r.evaluation;
  const seg = r.dense.miou !== undefined;
  const metric = seg ? 'mIoU' : e.labelled ? 'accuracy' : 'agreement';
  const base = r.points.some((p) => p.baseline);
  const head = [r.kind === 'latency' ? 'latency target' : 'budget', 'MACs kept', metric, ...(seg ? ['pixel accuracy'] : []), ...(base ? [`L1 + same repair: ${metric}`] : []), 'median ms (p10-p90)', 'speedup', ...(r.kind === 'latency' ? ['predicted'] : [])];
  const value = (x: { accuracy?: number; miou?: number }, agreement: number): string[] => (seg ? [pct(x.miou ?? 0), pct(x.accuracy ?? 0)] : [pct(e.labelled ? x.accuracy ?? 0 : agreement)]);
  const rows = [head, ['dense', '100%', ...value(r.dense, 1), ...(base ? [''] : []), `${r.dense.medianMs.toFixed(2)} (${r.dense.p10Ms.toFixed(2)}-${r.dense.p90Ms.toFixed(2)})`, '1.00x', ...(r.kind === 'latency' ? [''] : [])]];
  for (const p of r.points) {
    rows.push([String(p.target), pct(p.macsRatio, 1), ...value(p, p.agreement), ...(base ? [p.baseline ? value(p.baseline, p.baseline.agreement)[0]! : ''] : []), `${p.medianMs.toFixed(2)} (${p.p10Ms.toFixed(2)}-${p.p90Ms.toFixed(2)})`, `${p.speedup.toFixed(2)}x`, ...(r.kind === 'latency' ? [pct(p.predictedRatio ?? 0, 1)] : [])]);
  }
  return [
    `${path.basename(r.model)}: OPTIN ${r.scores.mode} scores from ${r.scores.calibration.examples} examples; ${metric} on ${e.examples} ${e.heldOut ? 'held-out ' : ''}examples of ${path.basename(e.data)}${e.labelled ? '' : ' (agreement with the original model\'s predictions)'}`,
    `timed at ${r.bench.shape} on ${r.bench.provider} (${r.bench.threads} threads), ${r.bench.runs} interleaved runs per model after warm-up; medians (p10-p90)`,
    '',
    table(rows),
    ...r.points.filter((p) => p.warning).map((p, i) => `${i ? '' : '\n'}warning at ${p.target}: ${p.warning}`),
  ].join('\n');
}

/** `optin sweep`: one scoring run, then apply + verify + evaluate + time every budget. */
export async function runSweepCommand(argv: string[]): Promise<number> {
  const valued = [...DATA_FLAGS, ...MODE_FLAGS, 'budgets', 'latency', 'multiple-of', 'scores', 'eval', 'out-dir', 'out', 'csv', 'bench-batch', 'bench-seq-len', 'bench-runs', 'ep'];
  const args = parseArgs(argv, valued);
  checkFlags(args, [...valued, 'no-compare', 'json', 'quiet'], 'sweep');
  if (args.positional.length !== 1) throw new OptinError('usage', USAGE);
  if (args.flags.has('budgets') === args.flags.has('latency')) throw new OptinError('usage', 'give --budgets (fractions of MACs) or --latency (fractions of the dense latency), one of them');
  const kind = args.flags.has('latency') ? 'latency' : 'macs';
  const targets = targetsOf(args.flags.get(kind === 'latency' ? 'latency' : 'budgets'), kind === 'latency' ? 'latency' : 'budgets');
  const model = args.positional[0]!;
  const outDir = path.resolve(str(args, 'out-dir') ?? path.join(path.dirname(path.resolve(model)), `${path.basename(model).replace(/\.onnx$/i, '')}.optin-sweep`));
  const created = !fs.existsSync(outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const data = dataOptions(args);
  const evalPath = str(args, 'eval');
  const ev = jobEvents(args);
  const bar = ev.bar;
  return withEngine(async (engine, signal) => {
    try {
      const r = await runSweep(engine, {
        model, targets, kind, multipleOf: multipleOfFlag(args), data, ep: epFlag(args), scoring: modeOptions(args), outDir,
        ...(str(args, 'scores') ? { scores: readScores(str(args, 'scores')!) } : {}),
        ...(evalPath ? { evalData: { ...data, data: evalPath, samples: Number.MAX_SAFE_INTEGER } } : {}),
        bench: benchFlags(args), ...(args.flags.has('no-compare') ? { compare: false } : {}),
      }, {
        progress: ev.progress, step: ev.step,
      }, signal);
      bar?.done();
      const { plans: _plans, ...report } = r;
      const out = str(args, 'out') ?? path.join(outDir, 'frontier.json');
      writeFileAtomic(out, JSON.stringify(report, null, 1) + '\n');
      const csv = str(args, 'csv');
      if (csv) writeFileAtomic(csv, sweepCsv(r));
      process.stdout.write(args.flags.has('json') ? JSON.stringify(report) + '\n' : `${formatSweep(r)}\n\nwrote ${out}${csv ? ` and ${csv}` : ''}; pruned models in ${outDir}\n`);
      return 0;
    } catch (e) {
      if (created && fs.readdirSync(outDir).length === 0) fs.rmdirSync(outDir);
      throw e;
    } finally {
      bar?.done();
    }
  }, [path.join(outDir, 'x.onnx')]);
}
