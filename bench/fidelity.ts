/**
 * Fast-mode fidelity on the SST-2 BERT (run on demand: npm run bench:fidelity [-- --exact-scores s.json]):
 * exact scores on the first 64 training sentences (or a saved `optin score --samples 64` file) against
 * fast-mode variants on the same batch: Spearman rank correlation of the neuron scores, wall time,
 * and test accuracy of the pruned model at budget 0.6 for each.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
import { scoreFast, type FastOptions } from '../src/engine/optin/fast';
import { makePlan, modelRef, readScores, scoresFile } from '../src/engine/plan/files';
import type { ScoresFile } from '../src/engine/plan/schema';
import { applyPlan } from '../src/engine/prune/applyPlan';
import { evaluate } from '../src/engine/eval/evaluate';
import { sha256File } from '../src/engine/util/atomic';
import { spearman } from '../src/shared/ranks';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

async function main(): Promise<void> {
  const f = (...p: string[]): string => path.join(root, 'test', 'fixtures', ...p);
  const model = loadModel(f('models', 'bert-sst2', 'model-opset17.onnx'));
  const st = await detectStructure(model);
  const calib = { data: f('data', 'sst2', 'train.tsv'), samples: 64 };
  const batch = await loadCalibration(model.path, st, calib);
  const ref = modelRef(model.path, sha256File(model.path), st);
  const cached = arg('exact-scores', '');
  const exact = cached ? readScores(cached) : scoresFile(ref, await scoreModel(model, st, batch), batch.meanLength);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-fidelity-'));
  const test = { data: f('data', 'sst2', 'test.tsv'), tokenizer: path.dirname(model.path) };
  const accuracy = async (s: ScoresFile, name: string): Promise<string> => {
    const out = path.join(tmp, `${name}.onnx`);
    await applyPlan({ model: model.path, plan: makePlan(s, 0.6), data: calib, out });
    return `${(100 * (await evaluate(out, { data: test })).accuracy!).toFixed(2)}%`;
  };
  try {
    console.log('| scores | neurons scored on | trajectory | time | Spearman (neurons) vs exact | accuracy at 0.6 | extrapolation slope (MD / KL) |');
    console.log('|---|---|---|---|---|---|---|');
    console.log(`| exact | 64 sentences | all later layers | ${exact.seconds.toFixed(0)} s | 1 | ${await accuracy(exact, 'exact')} | |`);
    const variants: Array<[string, FastOptions]> = [['16 sentences', { neuronExamples: 16 }], ['8 sentences', { neuronExamples: 8 }], ['8 sentences', { neuronExamples: 8, horizon: 1 }], ['4 sentences', { neuronExamples: 4, horizon: 1 }], ['1 sentence', { neuronExamples: 1, horizon: 1 }]];
    for (const [label, o] of variants) {
      const fast = await scoreFast(model, st, batch, o);
      const s = scoresFile(ref, fast, batch.meanLength);
      const slope = fast.extrapolation ? `${fast.extrapolation.md.toFixed(2)} / ${fast.extrapolation.kl.toFixed(2)}` : '';
      const rho = spearman(s.neurons.flat(), exact.neurons.flat());
      console.log(`| fast | ${label} | ${o.horizon ? `next ${o.horizon} layer` : 'all later layers'} | ${s.seconds.toFixed(0)} s | ${rho.toFixed(3)} | ${await accuracy(s, `fast-${o.neuronExamples}-${o.horizon ?? 0}`)} | ${slope} |`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
