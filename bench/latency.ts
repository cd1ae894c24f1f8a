/**
 * Latency targets, predicted vs measured (npm run bench:latency [-- --runs 40]): for the SST-2 BERT
 * and the digits ViT, a fresh per-layer latency table, exact OPTIN scores, plans at 0.7 / 0.5 / 0.35
 * of the dense latency, the pruned models written and verified, then the dense model and the three
 * pruned ones timed interleaved in one run (batch 32, text at 48 tokens). Prints each target, the
 * table's prediction and the measured ratio (pruned / dense median of that run) with p10-p90.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { withMeasuredTokens } from '../src/engine/structure/measure';
import { latencyTableFor } from '../src/engine/latency/cache';
import { makeLatencyPlan } from '../src/engine/plan/files';
import { applyPlan } from '../src/engine/prune/applyPlan';
import { benchModels } from '../src/engine/eval/bench';
import { runScoreJob } from '../src/engine/worker/jobs';
import type { PlanFile } from '../src/engine/plan/schema';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };
const fx = (p: string): string => path.join(root, 'test/fixtures', p);
const cases = [
  { name: 'SST-2 BERT', model: fx('models/bert-sst2/model-opset17.onnx'), data: { data: fx('data/sst2/train.tsv'), samples: 32 } },
  { name: 'digits ViT', model: fx('models/vit-digits/model-opset17.onnx'), data: { data: fx('data/digits/train'), samples: 32 } },
];
const targets = [0.7, 0.5, 0.35];

async function main(): Promise<void> {
  const runs = Number(arg('runs', '40'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-bench-latency-'));
  for (const c of cases) {
    const model = loadModel(c.model);
    const st = await withMeasuredTokens(model, detectStructure(model));
    const t0 = performance.now();
    const { table } = await latencyTableFor(model, st, { ep: 'cpu', batch: 32, seqLen: 48, fresh: true });
    const tableSec = (performance.now() - t0) / 1000;
    const scores = await runScoreJob({ model: c.model, data: c.data, ep: 'cpu', mode: 'exact' }, () => undefined, new AbortController().signal);
    const outs: string[] = [];
    const plans: PlanFile[] = [];
    for (const t of targets) {
      const plan = makeLatencyPlan(scores, table, t);
      const out = path.join(dir, `${path.basename(path.dirname(c.model))}-latency-${t}.onnx`);
      await applyPlan({ model: c.model, plan, data: c.data, out });
      outs.push(out);
      plans.push(plan);
    }
    const r = await benchModels([c.model, ...outs], { batch: 32, seqLen: 48, runs });
    console.log(`\n${c.name}: table measured in ${tableSec.toFixed(1)} s on ${table.provider} (batch ${table.batch} x ${table.seqLen}); ${runs} interleaved runs of the dense and pruned models:`);
    const d = r.models[0]!;
    console.log(`  dense                 median ${d.medianMs.toFixed(2)} ms (p10 ${d.p10Ms.toFixed(2)}, p90 ${d.p90Ms.toFixed(2)})`);
    targets.forEach((t, i) => {
      const m = r.models[i + 1]!, p = plans[i]!.latency!;
      const measured = m.medianMs / d.medianMs;
      console.log(`  target ${t.toFixed(2)}          median ${m.medianMs.toFixed(2)} ms (p10 ${m.p10Ms.toFixed(2)}, p90 ${m.p90Ms.toFixed(2)}): predicted ${(p.predictedMs / p.denseMs).toFixed(3)}, measured ${measured.toFixed(3)} of dense (${(100 * (measured / t - 1)).toFixed(1)}% off target), MACs kept ${plans[i]!.macs.ratio.toFixed(3)}`);
    });
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e instanceof Error ? e.message : String(e)); process.exit(1); });
