/**
 * The results table of the README (run on demand: npm run bench:results [-- --only bert|vit|vitpt|vitpt-wide] [--samples 64]
 * [--bert-scores scores.json] [--vit-scores scores.json] to reuse scores made by `optin score` with the same data).
 * For the SST-2 BERT, the digits ViT and the MNIST vit-pytorch-style ViT: score once with OPTIN on the first N training examples,
 * rank once by weight magnitude, then for every budget and {magnitude, OPTIN, OPTIN + mask tuning}:
 * plan, apply (verified), evaluate on the test split, and time dense vs pruned interleaved in one
 * process (batch 32 x 48 tokens for text, batch 32 for images). Prints markdown tables.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration, type DataOptions } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
import { magnitudeScores } from '../src/engine/optin/magnitude';
import { makePlan, modelRef, readScores, scoresFile } from '../src/engine/plan/files';
import type { ScoresFile } from '../src/engine/plan/schema';
import { applyPlan } from '../src/engine/prune/applyPlan';
import { evaluate } from '../src/engine/eval/evaluate';
import { benchModels } from '../src/engine/eval/bench';
import { sha256File } from '../src/engine/util/atomic';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };
const BUDGETS = [0.8, 0.6, 0.4, 0.3, 0.2];

interface Case { key: string; name: string; model: string; calib: DataOptions; test: string; seqLen: number }

async function run(c: Case, tmp: string): Promise<void> {
  const model = loadModel(c.model);
  const st = await detectStructure(model);
  const batch = await loadCalibration(model.path, st, c.calib);
  const seq = st.modality === 'text' ? batch.meanLength : batch.seqLen;
  const ref = modelRef(model.path, sha256File(model.path), st);
  const t0 = performance.now();
  const cached = arg(`${c.key}-scores`, '');
  const optin = cached ? readScores(cached) : scoresFile(ref, await scoreModel(model, st, batch), seq);
  const scoreSeconds = cached ? optin.seconds : (performance.now() - t0) / 1000;
  const testData = { data: c.test, tokenizer: path.dirname(model.path), preprocessor: path.join(path.dirname(model.path), 'preprocessor_config.json') };
  const mag = magnitudeScores(model, st, seq);
  const magnitude: ScoresFile = { ...optin, mode: 'magnitude', heads: mag.heads, neurons: mag.neurons };
  const dense = await evaluate(model.path, { data: testData });
  console.log(`\n### ${c.name}: dense accuracy ${(100 * dense.accuracy!).toFixed(2)}% on ${dense.examples} test examples; OPTIN scores from ${batch.batch} calibration examples in ${scoreSeconds.toFixed(0)} s; MAC sequence length ${seq.toFixed(1)}\n`);
  console.log('| budget (MACs kept) | magnitude | OPTIN | OPTIN + tuning | measured speedup (ideal) | parameters kept |');
  console.log('|---|---|---|---|---|---|');
  for (const budget of BUDGETS) {
    const acc: string[] = [];
    let speed = '', params = '';
    for (const [label, scores, tune] of [['magnitude', magnitude, false], ['optin', optin, false], ['optin-tuned', optin, true]] as const) {
      const plan = makePlan(scores, budget);
      const out = path.join(tmp, `${c.name}-${label}-${budget}.onnx`);
      const a = await applyPlan({ model: model.path, plan, data: c.calib, out, tune });
      const e = await evaluate(out, { data: testData });
      acc.push(`${(100 * e.accuracy!).toFixed(2)}%`);
      if (label === 'optin') {
        const b = await benchModels([model.path, out], { batch: 32, seqLen: c.seqLen, runs: 20 });
        speed = `${b.speedup[1]!.toFixed(2)}x (${(plan.macs.baseline / plan.macs.kept).toFixed(2)}x)`;
        params = `${((100 * a.parameters.after) / a.parameters.before).toFixed(1)}%`;
      }
    }
    console.log(`| ${budget} | ${acc.join(' | ')} | ${speed} | ${params} |`);
  }
}

async function main(): Promise<void> {
  const only = arg('only', 'all');
  const samples = Number(arg('samples', '64'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-results-'));
  const f = (...p: string[]): string => path.join(root, 'test', 'fixtures', ...p);
  try {
    if (only === 'all' || only === 'bert') {
      await run({ key: 'bert', name: 'SST-2 BERT', model: f('models', 'bert-sst2', 'model-opset17.onnx'), calib: { data: f('data', 'sst2', 'train.tsv'), samples }, test: f('data', 'sst2', 'test.tsv'), seqLen: 48 }, tmp);
    }
    if (only === 'all' || only === 'vit') {
      await run({ key: 'vit', name: 'digits ViT', model: f('models', 'vit-digits', 'model-opset17.onnx'), calib: { data: f('data', 'digits', 'train'), samples }, test: f('data', 'digits', 'test'), seqLen: 17 }, tmp);
    }
    if (only === 'all' || only === 'vitpt') {
      await run({ key: 'vitpt', name: 'MNIST vit-pytorch-style ViT', model: f('models', 'vitpt-mnist', 'model-opset17.onnx'), calib: { data: f('data', 'mnist', 'train'), samples }, test: f('data', 'mnist', 'test'), seqLen: 17 }, tmp);
    }
    if (only === 'all' || only === 'vitpt-wide') {
      await run({ key: 'vitpt-wide', name: 'MNIST vit-pytorch-style ViT, wider', model: f('models', 'vitpt-mnist-wide', 'model-opset17.onnx'), calib: { data: f('data', 'mnist', 'train'), samples }, test: f('data', 'mnist', 'test'), seqLen: 17 }, tmp);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

void main();
