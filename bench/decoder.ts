/**
 * The decoder table of the README (run on demand: npm run bench:decoder [-- --samples 64] [--budgets 0.7,0.5]).
 * The SST-2 Llama-style decoder: OPTIN exact scores from the first N lines of train.txt, weight
 * magnitude and activation-weighted magnitude (Wanda) on the same lines; for every budget and
 * ranking: plan, apply (verified), next-token perplexity on test.txt (400 held-out sentences).
 * Prints a markdown table, then fast mode's neuron-ranking Spearman against the exact scores.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
import { scoreFast } from '../src/engine/optin/fast';
import { spearman } from '../src/shared/ranks';
import { magnitudeScores } from '../src/engine/optin/magnitude';
import { activationMagnitudeScores } from '../src/engine/optin/wanda';
import { makePlan, modelRef, scoresFile } from '../src/engine/plan/files';
import type { ScoresFile } from '../src/engine/plan/schema';
import { applyPlan } from '../src/engine/prune/applyPlan';
import { evaluate } from '../src/engine/eval/evaluate';
import { sha256File } from '../src/engine/util/atomic';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

async function main(): Promise<void> {
  const dir = path.join(root, 'test', 'fixtures', 'models', 'llama-sst2');
  const file = path.join(dir, 'model.onnx');
  const samples = Number(arg('samples', '64'));
  const budgets = arg('budgets', '0.8,0.7,0.5').split(',').map(Number);
  const calib = { data: path.join(dir, 'train.txt'), samples };
  const test = { data: path.join(dir, 'test.txt'), tokenizer: dir };
  const model = loadModel(file);
  const st = await detectStructure(model);
  const batch = await loadCalibration(model.path, st, calib);
  const seq = batch.meanLength;
  const ref = modelRef(model.path, sha256File(model.path), st);
  const t0 = performance.now();
  const optin = scoresFile(ref, await scoreModel(model, st, batch), seq);
  const seconds = (performance.now() - t0) / 1000;
  const mag = magnitudeScores(model, st, seq);
  const wanda = await activationMagnitudeScores(model, st, batch, seq);
  const rankings: Array<[string, ScoresFile]> = [
    ['magnitude', { ...optin, mode: 'magnitude', heads: mag.heads, neurons: mag.neurons }],
    ['wanda', { ...optin, mode: 'magnitude', heads: wanda.heads, neurons: wanda.neurons }],
    ['optin', optin],
  ];
  const dense = await evaluate(file, { data: test });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-decoder-'));
  try {
    console.log(`\n### SST-2 Llama-style decoder: dense perplexity ${dense.language!.perplexity.toFixed(2)} on ${dense.language!.tokens} next tokens of ${dense.examples} held-out sentences; OPTIN scores from ${batch.batch} calibration sentences in ${seconds.toFixed(0)} s; MAC sequence length ${seq.toFixed(1)}\n`);
    console.log('| budget (MACs kept) | magnitude | activation-weighted magnitude (Wanda) | OPTIN | KV groups kept (OPTIN) |');
    console.log('|---|---|---|---|---|');
    for (const budget of budgets) {
      const cells: string[] = [];
      let groups = '';
      for (const [label, scores] of rankings) {
        const plan = makePlan(scores, budget);
        const out = path.join(tmp, `${label}-${budget}.onnx`);
        await applyPlan({ model: file, plan, data: calib, out });
        const e = await evaluate(out, { data: test });
        const p = e.language!.perplexity;
        cells.push(`${p.toFixed(2)} (${p >= dense.language!.perplexity ? '+' : ''}${(100 * (p / dense.language!.perplexity - 1)).toFixed(1)}%)`);
        if (label === 'optin') groups = plan.layers.map((l) => l.heads).join('/');
      }
      console.log(`| ${budget} | ${cells.join(' | ')} | ${groups} |`);
    }
    console.log('');
    for (const [label, opts] of [['defaults', {}], ['as auto picks it for the base-size decoder: neurons on 15/16 of the examples, next layer only', { neuronExamples: Math.round((batch.batch * 15) / 16), horizon: 1 }]] as const) {
      const t1 = performance.now();
      const fast = await scoreFast(model, st, batch, opts);
      const fastSeconds = (performance.now() - t1) / 1000;
      const out = path.join(tmp, 'fast-0.7.onnx');
      await applyPlan({ model: file, plan: makePlan(scoresFile(ref, fast, seq), 0.7), data: calib, out });
      const e = await evaluate(out, { data: test });
      console.log(`fast mode (${label}): ${fastSeconds.toFixed(0)} s; neuron ranking Spearman ${spearman(fast.neurons.flat(), optin.neurons.flat()).toFixed(3)} against exact; perplexity at 0.7 ${e.language!.perplexity.toFixed(2)}${fast.extrapolation ? `; extrapolation slopes ${fast.extrapolation.md.toFixed(2)} (MD) / ${fast.extrapolation.kl.toFixed(2)} (KL)` : ''}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

void main();
