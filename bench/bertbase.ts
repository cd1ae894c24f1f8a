/**
 * BERT-base-geometry benchmark (run on demand: npm run bench:bertbase [-- --mode auto|fast|exact]
 * [--budget-min 10] [--layers 12] [--tokens sst2|random] [--no-buckets] [--no-neuron-cut] [--neuron-examples N --horizon H] [--chunk-tokens 1024] [--fidelity 32 [--dump FILE]]): generates a 12-layer, hidden-768,
 * 12-head, FFN-3072 encoder with random weights, scores it on 16 sentences of up to 64 tokens (the
 * first SST-2 training sentences with the bundled BERT tokenizer; `--tokens random`: 16 random
 * sequences of exactly 64) in the chosen mode, plans at 0.6, and prints wall time and peak memory
 * against the targets (15 minutes; 3x model size + 1 GB). In fast mode it then scores `--fidelity`
 * neurons per layer (spread evenly; 0: skip) exactly, on the whole batch with full trajectories, and
 * prints the Spearman correlation of their fast and exact scores (both balanced over that subset).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration, textFeeds, type CalibrationBatch } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
import { scoreFast } from '../src/engine/optin/fast';
import { chooseMode, estimateCost } from '../src/engine/optin/mode';
import { makePlan, modelRef, scoresFile } from '../src/engine/plan/files';
import { minuteProgress } from './lib/progress';
import { mulberry32 } from '../src/engine/optin/random';
import { bertModel } from './lib/bertModel';
import { balance } from '../src/engine/optin/balance';
import { OPTIN_DEFAULTS, type RawLosses } from '../src/engine/optin/types';
import { spearman } from '../src/shared/ranks';

const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

async function main(): Promise<void> {
  const layers = Number(arg('layers', '12'));
  const gen = arg('generate', '');
  if (gen) {
    fs.writeFileSync(gen, bertModel({ layers, hidden: 768, heads: 12, ffn: 3072, vocab: 30522, positions: 512, classes: 2 }));
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-bertbase-'));
  try {
    const file = path.join(dir, 'bert-base-random.onnx');
    // Generated in a child process so its memory does not count towards the scoring's peak.
    execFileSync(process.execPath, [__filename, '--generate', file, '--layers', String(layers)], { stdio: 'inherit' });
    const t0 = performance.now();
    const model = loadModel(file);
    const st = await detectStructure(model);
    const size = fs.statSync(file).size;
    const rnd = mulberry32(3);
    const rows = Array.from({ length: 16 }, () => {
      const ids = [101, ...Array.from({ length: 62 }, () => 1000 + Math.floor(rnd() * 29000)), 102];
      return { ids, types: ids.map(() => 0) };
    });
    const fixtures = path.resolve(__dirname, '..', '..', 'test', 'fixtures');
    const batch: CalibrationBatch = arg('tokens', 'sst2') === 'random'
      ? { kind: 'text', ...textFeeds(st, rows, 0), source: 'random tokens' }
      : await loadCalibration(file, st, { data: path.join(fixtures, 'data', 'sst2', 'train.tsv'), tokenizer: path.join(fixtures, 'models', 'bert-sst2'), samples: 16, maxLength: 64 });
    console.log(`model: ${layers} layers, hidden 768, 12 heads, FFN 3072, random weights, ${(size / 2 ** 20).toFixed(0)} MB; calibration ${batch.batch} x ${batch.seqLen} tokens (${batch.source}; mean ${batch.meanLength.toFixed(1)} real)`);
    const est = await estimateCost(model, st, batch);
    const wanted = arg('mode', 'auto');
    const budget = Number(arg('budget-min', '10')) * 60;
    const choice = wanted === 'auto' ? chooseMode(est, batch.batch, budget) : { mode: wanted as 'exact' | 'fast', reason: `--mode ${wanted}`, ...(arg('neuron-examples', '') ? { neuronExamples: Number(arg('neuron-examples', '1')) } : {}), ...(arg('horizon', '') ? { horizon: Number(arg('horizon', '1')) } : {}) };
    console.log(`one dense forward ${est.forward.toFixed(2)} s; exact estimate: heads ${(est.heads / 60).toFixed(1)} min, neurons ${(est.neurons / 60).toFixed(1)} min; ${choice.reason}`);
    const onProgress = minuteProgress();
    // --no-buckets / --no-neuron-cut: the engine's two shortcuts off, for comparisons.
    const shortcuts = {
      ...(process.argv.includes('--no-buckets') ? { buckets: false } : {}), ...(process.argv.includes('--no-neuron-cut') ? { neuronCut: false } : {}),
      ...(arg('chunk-tokens', '') ? { chunkTokens: Number(arg('chunk-tokens', '1024')) } : {}),
    };
    const scores = choice.mode === 'fast'
      ? await scoreFast(model, st, batch, { ...shortcuts, onProgress, ...(choice.neuronExamples ? { neuronExamples: choice.neuronExamples } : {}), ...('horizon' in choice && choice.horizon ? { horizon: choice.horizon } : {}) })
      : await scoreModel(model, st, batch, { ...shortcuts, onProgress });
    const plan = makePlan(scoresFile(modelRef(file, 'bench', st), scores, 64), 0.6);
    const wall = (performance.now() - t0) / 1000;
    const rss = process.resourceUsage().maxRSS * 1024;
    const limit = 3 * size + 2 ** 30;
    console.log(`scored ${scores.heads.flat().length + scores.neurons.flat().length} elements in ${(scores.seconds / 60).toFixed(1)} min (${scores.mode}); plan at 0.6 keeps ${plan.layers.reduce((a, l) => a + l.heads, 0)} heads, ${plan.layers.reduce((a, l) => a + l.neurons, 0)} neurons${scores.extrapolation ? `; neuron losses extrapolated to the whole batch with slopes ${scores.extrapolation.md.toFixed(2)} (MD) / ${scores.extrapolation.kl.toFixed(2)} (KL)` : ''}`);
    console.log(`wall time ${(wall / 60).toFixed(1)} min from loading the model to the plan (target <= 15); peak RSS ${(rss / 2 ** 30).toFixed(2)} GB (target <= ${(limit / 2 ** 30).toFixed(2)} GB = 3 x model + 1 GB)`);
    const k = Number(arg('fidelity', '32'));
    if (scores.mode === 'fast' && k > 0) {
      const subset = st.layers.map((l) => Array.from({ length: k }, (_, i) => Math.floor(((i + 0.5) * (l.ffn?.width ?? 0)) / k)));
      const exact = await scoreModel(model, st, batch, { ...shortcuts, kinds: ['neuron'], neuronSubset: subset });
      const pick = (raw: RawLosses[]): RawLosses[] => raw.map((r, l) => ({ md: subset[l]!.map((j) => r.md[j]!), kl: subset[l]!.map((j) => r.kl[j]!) }));
      const f = balance(pick(scores.raw.neurons), 'neuron', OPTIN_DEFAULTS), e = balance(pick(exact.raw.neurons), 'neuron', OPTIN_DEFAULTS);
      const within = st.layers.map((_, l) => spearman(f[l]!, e[l]!));
      // --dump FILE: the sampled neurons' raw terms, fast and exact, for studying the mapping between them.
      if (arg('dump', '')) fs.writeFileSync(arg('dump', ''), JSON.stringify({ subset, fast: pick(scores.raw.neurons), exact: pick(exact.raw.neurons) }));
      console.log(`fidelity: ${k} neurons per layer scored exactly (${batch.batch} examples, all later layers) in ${(exact.seconds / 60).toFixed(1)} min; Spearman of fast vs exact ${spearman(f.flat(), e.flat()).toFixed(3)} over all ${k * st.layers.length}, within layers ${Math.min(...within).toFixed(3)} to ${Math.max(...within).toFixed(3)} (mean ${(within.reduce((a, b) => a + b, 0) / within.length).toFixed(3)})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
