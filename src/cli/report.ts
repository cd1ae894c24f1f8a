import { formatBudget, pct } from '../shared/format';
import * as path from 'node:path';
import type { ApplyReport } from '../engine/prune/applyPlan';
import type { Comparison, PruneReport } from '../engine/worker/pipeline';
import { bytes, si, table } from './format';

/** Kept elements, MACs, parameters, size and verification of an applied plan. */
export function formatApply(a: ApplyReport): string {
  const rows = a.groups ? [['group', 'channels']] : [['layer', 'heads', a.layerNames ? 'neurons/channels' : 'neurons']];
  if (a.groups) a.groups.forEach((g, i) => rows.push([g, `${a.kept.neurons[i]}/${a.total.neurons[i]}`]));
  else a.kept.heads.forEach((h, i) => rows.push([a.layerNames?.[i] ?? String(i), a.total.heads[i] ? `${h}/${a.total.heads[i]}` : '-', `${a.kept.neurons[i]}/${a.total.neurons[i]}`]));
  const pct = (x: number, y: number): string => `${((100 * x) / y).toFixed(1)}%`;
  const v = a.verification;
  const lines = [
    table(rows),
    '',
    `MACs        ${si(a.macs.before)} -> ${si(a.macs.after)} (${pct(a.macs.after, a.macs.before)} kept, ${a.groups ? 'per example, of the pruned convolutions/projections' : a.layerNames ? 'per example, heads, neurons and the channel groups\' convolutions' : a.macs.perExample ? 'per example, at each layer\'s measured geometry' : `sequence length ${a.macs.seqLen.toFixed(1)}`}; recounted from the pruned graph)`,
    `parameters  ${si(a.parameters.before)} -> ${si(a.parameters.after)} (${pct(a.parameters.after, a.parameters.before)})`,
    `file size   ${bytes(a.fileBytes.before)} -> ${bytes(a.fileBytes.after)}`,
    `verified    max |pruned - masked original| = ${v.maxAbsDiff.toExponential(2)} (tolerance ${v.tolerance.toExponential(2)})${v.argmaxAgreement !== undefined ? `, same prediction on ${pct(v.argmaxAgreement, 1)} of the calibration batch` : ''}; on ${v.provider}`,
  ];
  if (v.decodeStep) lines.push(`decode step max |pruned - masked original| = ${v.decodeStep.maxAbsDiff.toExponential(2)}, vs its own full run ${v.decodeStep.selfMaxAbsDiff.toExponential(2)} (one step with the key/value cache after a prefill)`);
  if (a.cache && a.cache.after.join() !== a.cache.before.join()) lines.push(`cache       key/value heads per layer ${a.cache.before.join('/')} -> ${a.cache.after.join('/')}: the cache inputs and outputs change shape (a runtime must allocate the smaller cache)`);
  if (a.tuning) {
    const used = a.tuning.filter((t) => !t.rejected);
    const gain = used.reduce((s, t) => s + t.before, 0) > 0 ? 1 - used.reduce((s, t) => s + t.after, 0) / used.reduce((s, t) => s + t.before, 0) : 0;
    lines.push(`tuned       ${used.length}/${a.tuning.length} sublayers rescaled (reconstruction error -${(100 * gain).toFixed(1)}%)${a.tuning.some((t) => t.rejected) ? `; rejected: ${a.tuning.filter((t) => t.rejected).map((t) => `layer ${t.layer} ${t.part} (${t.rejected})`).join(', ')}` : ''}`);
  }
  if (a.refit) {
    const used = a.refit.filter((t) => !t.rejected);
    const sum = (k: 'before' | 'after'): number => used.reduce((s, t) => s + t[k], 0);
    lines.push(`refitted    ${used.length}/${a.refit.length} sublayers: kept rows of the output projections / second FFN matrices solved by least squares to the dense outputs (reconstruction error -${(100 * (sum('before') > 0 ? 1 - sum('after') / sum('before') : 0)).toFixed(1)}%)`);
  }
  if (a.reconstruction) {
    const used = a.reconstruction.filter((t) => !t.rejected);
    const sum = (k: 'before' | 'after'): number => used.reduce((s, t) => s + t[k], 0);
    const stats = used.filter((t) => t.method === 'statistics').length;
    lines.push(`repaired    ${used.length}/${a.reconstruction.length} consumers of cut channels: ${used.length - stats} refitted by least squares${stats ? `, ${stats} by their output statistics (too large for least squares here)` : ''} to the dense outputs (reconstruction error -${(100 * (sum('before') > 0 ? 1 - sum('after') / sum('before') : 0)).toFixed(1)}%)`);
  }
  lines.push(`wrote       ${a.files.join(', ')}`);
  return lines.join('\n');
}

/** Predicted vs measured latency of a `--latency` prune. */
export function formatLatency(l: NonNullable<PruneReport['latency']>): string {
  const measured = l.measuredRatio !== undefined ? `, measured ${pct(l.measuredRatio, 1)} (${l.measuredMs!.toFixed(2)} of ${l.measuredDenseMs!.toFixed(2)} ms, same run)` : ' (not measured: --no-bench)';
  return `latency     target ${pct(l.target, 1)} of dense${l.phase === 'decode' ? ' decode-step' : ''}: predicted ${pct(l.predictedRatio, 1)} (${l.predictedMs.toFixed(2)} of ${l.tableDenseMs.toFixed(2)} ms)${measured}; table ${l.cached ? 'from the cache' : 'measured now'}: ${l.tableFile}`;
}

/** The `optin prune` report. */
export function formatPrune(r: PruneReport): string {
  const lines = [
    `${path.basename(r.apply.input)}: ${r.latency ? `latency target ${r.latency.target} (${formatBudget(r.plan.budget)} chosen)` : `budget ${r.plan.budget} (${formatBudget(r.plan.budget)})`}, ${r.scores.mode === 'magnitude' ? (r.scores.modeReason?.startsWith('L1') ? 'L1-norm filter ranking' : r.scores.modeReason?.startsWith('activation') ? 'activation-weighted magnitude ranking (Wanda)' : 'weight-magnitude ranking') : `OPTIN ${r.scores.mode} scores from ${r.scores.calibration.examples} calibration examples (${r.scores.seconds.toFixed(1)} s${r.scores.modeReason && r.scores.mode === 'fast' ? `; ${r.scores.modeReason}` : ''})`}${r.apply.tuning ? ', mask tuning' : ''}`,
    '',
    formatApply(r.apply),
    ...(r.plan.model.notes ?? []).map((n) => `note        ${n}`),
    ...(r.scores.calibration.of ? [`note        scores ${r.scores.modeReason}`] : []),
  ];
  if (r.bench) {
    const [a, b] = r.bench.models;
    lines.push(`speed       ${a!.medianMs.toFixed(2)} ms -> ${b!.medianMs.toFixed(2)} ms median of ${r.bench.runs} interleaved runs at ${r.bench.shape} (${r.bench.provider}, ${r.bench.threads} threads): ${r.bench.speedup[1]!.toFixed(2)}x measured, ${r.idealSpeedup.toFixed(2)}x ideal from MACs`);
    const d = r.bench.decode;
    if (d) lines.push(`decode      ${d.models[0]!.medianMs.toFixed(2)} ms -> ${d.models[1]!.medianMs.toFixed(2)} ms per step (${d.models[0]!.tokensPerSecond.toFixed(0)} -> ${d.models[1]!.tokensPerSecond.toFixed(0)} tokens/s, ${d.speedup[1]!.toFixed(2)}x) after a cache of ${d.context} tokens, same run`);
  }
  if (r.latency) lines.push(formatLatency(r.latency));
  if (r.apply.groups && !r.apply.reconstruction) lines.push('hint        channel groups lose much accuracy when cut without the repair: drop --no-tune (least-squares refit of every consumer; docs/cnn.md)');
  if (r.evaluation) {
    const e = r.evaluation;
    const agree = `predictions agree on ${pct(e.reference!.agreement)}`;
    const on = r.evaluatedOn ? (r.evaluatedOn.heldOut ? `held-out, ${path.basename(r.evaluatedOn.source)}` : `the calibration examples of ${path.basename(r.evaluatedOn.source)}`) : path.basename(e.data);
    if (e.language && e.reference?.language) lines.push(`perplexity  ${e.reference.language.perplexity.toFixed(2)} -> ${e.language.perplexity.toFixed(2)} (${formatRise(e.language.perplexity / e.reference.language.perplexity)}) on ${e.language.tokens} next tokens of ${e.examples} texts (${on}); next-token predictions agree on ${pct(e.reference.agreement)}`);
    else if (e.segmentation && e.reference?.segmentation) lines.push(`mIoU        ${pct(e.reference.segmentation.miou)} -> ${pct(e.segmentation.miou)}, pixel accuracy ${pct(e.reference.segmentation.pixelAccuracy)} -> ${pct(e.segmentation.pixelAccuracy)} on ${e.examples} images (${on}); pixel predictions agree on ${pct(e.reference.agreement)}`);
    else lines.push(e.accuracy !== undefined && e.reference?.accuracy !== undefined
      ? `accuracy    ${pct(e.reference.accuracy)} -> ${pct(e.accuracy)} on ${e.examples} examples (${on}); ${agree}`
      : `agreement   ${agree} of ${e.examples} unlabelled examples (${on})`);
  }
  for (const c of r.comparisons ?? []) lines.push(`${c.kind === 'l1' ? 'baseline   ' : 'no repair  '} ${comparisonLine(c)}`);
  if (r.warning) lines.push(`warning     ${r.warning}`);
  return lines.join('\n');
}

/** One comparison of the prune report: what the other model is and the same measure as the evaluation line. */
export function comparisonLine(c: Comparison): string {
  const e = c.evaluation;
  const what = c.kind === 'l1' ? 'L1-norm filters, uniform shares, same repair, same budget' : 'this plan cut without the repair';
  const measure = e.segmentation ? `mIoU ${pct(e.segmentation.miou)}` : e.accuracy !== undefined ? `accuracy ${pct(e.accuracy)}` : `predictions agree on ${pct(e.reference!.agreement)}`;
  return `${measure} (${what})`;
}

/** A ratio as a signed percentage change ("+4.2%"). */
function formatRise(ratio: number): string {
  const d = 100 * (ratio - 1);
  return `${d >= 0 ? '+' : ''}${d.toFixed(1)}%`;
}
