/**
 * BERT-base-size decoder benchmark (run on demand: npm run bench:decoder-base [-- --mode auto|fast|exact]
 * [--budget-min 10] [--choice-only]): the Llama-style decoder at 12 layers, hidden 768, 12 query / 4 key-value heads,
 * SwiGLU 2048 (random weights: the skeleton test/fixtures/models/llama-base-random refilled), scored
 * on 16 SST-2 sentences (the llama-sst2 tokenizer, up to 64 tokens) in the chosen mode, planned at
 * 0.6; prints the wall time from loading to the plan against the 10-minute target.
 */
import * as path from 'node:path';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
import { scoreFast } from '../src/engine/optin/fast';
import { chooseMode, estimateCost } from '../src/engine/optin/mode';
import { makePlan, modelRef, scoresFile } from '../src/engine/plan/files';
import { minuteProgress } from './lib/progress';
import { materialize } from '../test/fixtures/materialize';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

async function main(): Promise<void> {
  const models = path.join(root, 'test', 'fixtures', 'models');
  const file = materialize(path.join(models, 'llama-base-random', 'model.skeleton.onnx'));
  const t0 = performance.now();
  const model = loadModel(file);
  const st = await detectStructure(model);
  const tokenizer = path.join(models, 'llama-sst2');
  const batch = await loadCalibration(model.path, st, { data: path.join(tokenizer, 'train.txt'), tokenizer, samples: 16, maxLength: 64 });
  console.log(`model: 12 layers, hidden 768, 12 query / 4 key-value heads, SwiGLU 2048, random weights; calibration ${batch.batch} sentences, ${batch.meanLength.toFixed(1)} real tokens of ${batch.seqLen} on average`);
  const est = await estimateCost(model, st, batch);
  const wanted = arg('mode', 'auto');
  const budget = Number(arg('budget-min', '10')) * 60;
  const choice = wanted === 'auto' ? chooseMode(est, batch.batch, budget) : { mode: wanted as 'exact' | 'fast', reason: `--mode ${wanted}` };
  console.log(`one dense forward ${est.forward.toFixed(2)} s; exact estimate: heads ${(est.heads / 60).toFixed(1)} min, neurons ${(est.neurons / 60).toFixed(1)} min; ${choice.reason}`);
  if (process.argv.includes('--choice-only')) return;
  const onProgress = minuteProgress();
  const scores = choice.mode === 'fast'
    ? await scoreFast(model, st, batch, { onProgress, ...('neuronExamples' in choice && choice.neuronExamples ? { neuronExamples: choice.neuronExamples } : {}), ...('horizon' in choice && choice.horizon ? { horizon: choice.horizon } : {}) })
    : await scoreModel(model, st, batch, { onProgress });
  const plan = makePlan(scoresFile(modelRef(file, 'bench', st), scores, batch.meanLength), 0.6);
  const wall = (performance.now() - t0) / 1000;
  console.log(`scored ${scores.heads.flat().length} key/value groups and ${scores.neurons.flat().length} neurons in ${(scores.seconds / 60).toFixed(1)} min (${scores.mode}); plan at 0.6 keeps ${plan.layers.reduce((a, l) => a + l.heads, 0)} groups, ${plan.layers.reduce((a, l) => a + l.neurons, 0)} neurons`);
  console.log(`wall time ${(wall / 60).toFixed(1)} min from loading the model to the plan (target <= 10)`);
}

main().catch((e) => { console.error(e); process.exit(1); });
