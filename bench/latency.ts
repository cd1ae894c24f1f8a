/**
 * Latency targets, predicted vs measured (npm run bench:latency [-- --runs 40]): for the SST-2 BERT
 * and the digits ViT, a fresh per-layer latency table, exact OPTIN scores, plans at 0.7 / 0.5 / 0.35
 * of the dense latency, the pruned models written and verified, then the dense model and the three
 * pruned ones timed interleaved in one run (batch 32, text at 48 tokens). Prints each target, the
 * table's prediction and the measured ratio (pruned / dense median of that run) with p10-p90.
 * Then the same for decode steps: the llama-sst2 decoder exported with its key/value cache (random
 * weights from its skeleton), one new token for each of 8 rows after a cache of 64 tokens (its rotary table holds 96 positions).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { latencyTableFor } from '../src/engine/latency/cache';
import { makeLatencyPlan } from '../src/engine/plan/files';
import { applyPlan } from '../src/engine/prune/applyPlan';
import { benchModels } from '../src/engine/eval/bench';
import { runScoreJob } from '../src/engine/worker/jobs';
import type { PlanFile } from '../src/engine/plan/schema';
import { materialize } from '../test/fixtures/materialize';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };
const fx = (p: string): string => path.join(root, 'test/fixtures', p);
const cached = (): string => materialize(fx('models/llama-sst2/model-with-past.skeleton.onnx'));
const cases: Array<{ name: string; model: () => string; data: (m: string) => { data: string; samples: number }; batch: number; seqLen: number; decode?: boolean; targets?: number[] }> = [
  { name: 'SST-2 BERT', model: () => fx('models/bert-sst2/model-opset17.onnx'), data: () => ({ data: fx('data/sst2/train.tsv'), samples: 32 }), batch: 32, seqLen: 48 },
  { name: 'digits ViT', model: () => fx('models/vit-digits/model-opset17.onnx'), data: () => ({ data: fx('data/digits/train'), samples: 32 }), batch: 32, seqLen: 48 },
  { name: 'llama-sst2 with its cache, decode steps', model: cached, data: (m) => ({ data: path.join(path.dirname(m), 'train.txt'), samples: 32 }), batch: 8, seqLen: 64, decode: true, targets: [0.8, 0.7, 0.6] },
];
const TARGETS = [0.7, 0.5, 0.35];

async function main(): Promise<void> {
  const runs = Number(arg('runs', '40'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-bench-latency-'));
  for (const c of cases.filter((x) => !process.argv.includes('--only') || x.name.includes(arg('only', '')))) {
    const file = c.model();
    const data = c.data(file);
    const model = loadModel(file);
    const st = await detectStructure(model);
    const t0 = performance.now();
    const { table } = await latencyTableFor(model, st, { ep: 'cpu', batch: c.batch, seqLen: c.seqLen, fresh: true, ...(c.decode ? { decode: true } : {}) });
    const tableSec = (performance.now() - t0) / 1000;
    const scores = await runScoreJob({ model: file, data, ep: 'cpu', mode: 'exact' }, () => undefined, new AbortController().signal);
    const outs: string[] = [];
    const plans: PlanFile[] = [];
    const targets = c.targets ?? TARGETS;
    for (const t of targets) {
      const plan = makeLatencyPlan(scores, table, t);
      const out = path.join(dir, `${path.basename(path.dirname(file))}-latency-${t}.onnx`);
      await applyPlan({ model: file, plan, data, out });
      outs.push(out);
      plans.push(plan);
    }
    const r = await benchModels([file, ...outs], { batch: c.batch, seqLen: c.seqLen, runs });
    const timed = c.decode ? r.decode!.models.map((m, i) => ({ ...r.models[i]!, medianMs: m.medianMs, p10Ms: NaN, p90Ms: NaN })) : r.models;
    console.log(`\n${c.name}: table measured in ${tableSec.toFixed(1)} s on ${table.provider} (${c.decode ? `one decode step, batch ${table.batch}, a cache of ${table.seqLen} tokens` : `batch ${table.batch} x ${table.seqLen}`}); ${runs} interleaved runs of the dense and pruned models:`);
    const d = timed[0]!;
    const spread = (m: { p10Ms: number; p90Ms: number }): string => (Number.isFinite(m.p10Ms) ? ` (p10 ${m.p10Ms.toFixed(2)}, p90 ${m.p90Ms.toFixed(2)})` : '');
    console.log(`  dense                 median ${d.medianMs.toFixed(2)} ms${spread(d)}`);
    targets.forEach((t, i) => {
      const m = timed[i + 1]!, p = plans[i]!.latency!;
      const measured = m.medianMs / d.medianMs;
      console.log(`  target ${t.toFixed(2)}          median ${m.medianMs.toFixed(2)} ms${spread(m)}: predicted ${(p.predictedMs / p.denseMs).toFixed(3)}, measured ${measured.toFixed(3)} of dense (${(100 * (measured / t - 1)).toFixed(1)}% off target), MACs kept ${plans[i]!.macs.ratio.toFixed(3)}`);
    });
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e instanceof Error ? e.message : String(e)); process.exit(1); });
