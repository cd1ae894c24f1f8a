/**
 * The CNN and segmentation results tables of the README (run on demand: npm run bench:cnn [-- --only resnet|mobilenet|lraspp|seg|swinseg|nsfwjs] [--samples 64] [--mnist-test DIR]).
 * Score each model once per ranking (OPTIN exact; for channel groups also L1-norm filters and weight
 * magnitude; for transformers and hybrids magnitude), then for every budget and ranking plan, apply (verified,
 * with and without mask tuning where the model allows it),
 * evaluate on the held-out split (accuracy; mIoU for segmentation) and time dense vs pruned
 * interleaved in one process (batch 32 images). Prints markdown tables.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runScoreJob } from '../src/engine/worker/jobs';
import { makePlan } from '../src/engine/plan/files';
import type { ScoresFile } from '../src/engine/plan/schema';
import { applyPlan } from '../src/engine/prune/applyPlan';
import { evaluate, type EvalReport } from '../src/engine/eval/evaluate';
import { benchModels } from '../src/engine/eval/bench';
import type { DataOptions } from '../src/engine/data/calibration';
import type { ChannelAllocation } from '../src/engine/plan/channelSearch';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };
const BUDGETS = [0.8, 0.6, 0.5, 0.4];

interface Case { key: string; name: string; model: string; calib: DataOptions; test: string; rankings: Array<'l1' | 'magnitude'>; /** false: hybrid models, where tuning is refused. */ tune?: boolean; /** Only the baseline the issue compares against (L1-norm + repair) and the default: for large models. */ compact?: boolean }

const metric = (e: EvalReport): number => e.segmentation?.miou ?? e.accuracy!;

async function score(c: Case, ranking: 'optin' | 'l1' | 'magnitude'): Promise<ScoresFile> {
  return runScoreJob({ model: c.model, data: c.calib, ep: 'cpu', mode: 'exact', ranking }, () => undefined, new AbortController().signal);
}

async function applyAndEvaluate(c: Case, scores: ScoresFile, budget: number, label: string, tmp: string, testData: DataOptions & { data: string }, opts: { tune: boolean; allocation?: ChannelAllocation; multipleOf?: number }): Promise<{ cell: string; out: string; ideal: number }> {
  const plan = makePlan(scores, budget, scores.macSeqLen, opts.multipleOf, opts.allocation);
  const out = path.join(tmp, `${c.key}-${label}-${budget}.onnx`);
  await applyPlan({ model: c.model, plan, data: c.calib, out, tune: opts.tune });
  const e = await evaluate(out, { data: testData });
  return { cell: `${(100 * metric(e)).toFixed(2)}%`, out, ideal: plan.macs.baseline / plan.macs.kept };
}

/** Channel networks: the baselines with and without the repair, OPTIN's global allocation (the paper's) and the default (uniform shares), all repaired, widths x8 (the default). */
async function runChannels(c: Case, tmp: string): Promise<void> {
  const t0 = performance.now();
  const optin = await score(c, 'optin');
  const seconds = (performance.now() - t0) / 1000;
  const [l1, magnitude] = await Promise.all([score(c, 'l1'), c.compact ? optin : score(c, 'magnitude')]);
  const testData = { data: c.test, preprocessor: path.join(path.dirname(c.model), 'preprocessor_config.json') };
  const dense = await evaluate(c.model, { data: testData });
  const what = dense.segmentation ? 'mIoU' : 'accuracy';
  console.log(`\n### ${c.name}: dense ${what} ${(100 * metric(dense)).toFixed(2)}% on ${dense.examples} held-out ${dense.segmentation ? 'scenes' : 'images'}; OPTIN scores from ${optin.calibration.examples} calibration examples in ${seconds.toFixed(0)} s\n`);
  const columns = (c.compact ? [['l1', l1, true, 'uniform', 'L1-norm + repair']] : [
    ['l1-raw', l1, false, 'uniform', 'L1-norm, no repair'], ['optin-raw', optin, false, 'uniform', 'OPTIN, no repair'], ['l1', l1, true, 'uniform', 'L1-norm + repair'],
    ['magnitude', magnitude, true, 'global', 'magnitude + repair'], ['optin-global', optin, true, 'global', 'OPTIN global + repair (paper\'s allocation)'],
  ]) as Array<[string, ScoresFile, boolean, ChannelAllocation, string]>;
  console.log(`| budget (MACs kept) | ${columns.map((k) => k[4]).join(' | ')} | **OPTIN default** (uniform shares + repair) | measured speedup (ideal) |`);
  console.log(`|---|${columns.map(() => '---|').join('')}---|---|`);
  for (const budget of BUDGETS) {
    const cells: string[] = [];
    for (const [label, scores, tune, allocation] of columns) {
      cells.push((await applyAndEvaluate(c, scores, budget, label, tmp, testData, { tune, allocation })).cell);
    }
    const def = await applyAndEvaluate(c, optin, budget, 'optin', tmp, testData, { tune: true });
    const b = await benchModels([c.model, def.out], { batch: 32, runs: 30 });
    console.log(`| ${budget} | ${cells.join(' | ')} | **${def.cell}** | ${b.speedup[1]!.toFixed(2)}x (${def.ideal.toFixed(2)}x) |`);
  }
}

async function run(c: Case, tmp: string): Promise<void> {
  if (c.rankings.includes('l1')) return runChannels(c, tmp);
  const t0 = performance.now();
  const optin = await score(c, 'optin');
  const seconds = (performance.now() - t0) / 1000;
  const baselines = await Promise.all(c.rankings.map((r) => score(c, r)));
  const testData = { data: c.test, preprocessor: path.join(path.dirname(c.model), 'preprocessor_config.json') };
  const dense = await evaluate(c.model, { data: testData });
  const what = dense.segmentation ? 'mIoU' : 'accuracy';
  console.log(`\n### ${c.name}: dense ${what} ${(100 * metric(dense)).toFixed(2)}% on ${dense.examples} held-out ${dense.segmentation ? 'scenes' : 'images'}; OPTIN scores from ${optin.calibration.examples} calibration examples in ${seconds.toFixed(0)} s\n`);
  const names = { l1: 'L1-norm', magnitude: 'magnitude' };
  const tuned = c.tune !== false;
  const plus = tuned ? ' + tuning' : '';
  console.log(`| budget (MACs kept) | ${c.rankings.map((r) => (tuned ? `${names[r]} | ${names[r]} + tuning` : names[r])).join(' | ')} | OPTIN |${tuned ? ' OPTIN + tuning |' : ''} measured speedup (ideal) | OPTIN${plus}, widths x8: ${what}, measured speedup |`);
  console.log(`|---|${c.rankings.map(() => (tuned ? '---|---|' : '---|')).join('')}---|${tuned ? '---|' : ''}---|---|`);
  for (const budget of BUDGETS) {
    const cells: string[] = [];
    let speed = '';
    const runs: Array<[string, ScoresFile, boolean, number]> = [
      ...c.rankings.flatMap((r, i) => (tuned ? [[r, baselines[i]!, false, 1], [`${r}-tuned`, baselines[i]!, true, 1]] : [[r, baselines[i]!, false, 1]]) as Array<[string, ScoresFile, boolean, number]>),
      ['optin', optin, false, 1], ...(tuned ? [['optin-tuned', optin, true, 1] as [string, ScoresFile, boolean, number]] : []), ['optin-x8', optin, tuned, 8],
    ];
    const outs: Record<string, string> = {};
    for (const [label, scores, tune, multipleOf] of runs) {
      const r = await applyAndEvaluate(c, scores, budget, label, tmp, testData, { tune, multipleOf });
      cells.push(r.cell);
      outs[label] = r.out;
      if (label === 'optin') speed = `(${r.ideal.toFixed(2)}x)`;
    }
    const b = await benchModels([c.model, outs[tuned ? 'optin-tuned' : 'optin']!, outs['optin-x8']!], { batch: 32, runs: 30 });
    const x8 = cells.pop()!;
    console.log(`| ${budget} | ${cells.join(' | ')} | ${b.speedup[1]!.toFixed(2)}x ${speed} | ${x8}, ${b.speedup[2]!.toFixed(2)}x |`);
  }
}

async function main(): Promise<void> {
  const only = arg('only', 'all');
  const samples = Number(arg('samples', '64'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-cnn-'));
  const f = (...p: string[]): string => path.join(root, 'test', 'fixtures', ...p);
  try {
    // --mnist-test DIR: the MNIST models' held-out digits (default: the 963 of test/fixtures/data/mnist/test; bench/external/prepare-mnist.sh writes all 2,000).
    const mnistTest = path.resolve(arg('mnist-test', f('data', 'mnist', 'test')));
    if (only === 'all' || only === 'resnet') {
      await run({ key: 'resnet', name: 'MNIST ResNet (torchvision BasicBlocks)', model: f('models', 'resnet-mnist', 'model-opset17.onnx'), calib: { data: f('data', 'mnist', 'train'), samples }, test: mnistTest, rankings: ['l1', 'magnitude'] }, tmp);
    }
    if (only === 'all' || only === 'mobilenet') {
      await run({ key: 'mobilenet', name: 'MNIST MobileNetV3 (torchvision MobileNetV3 blocks)', model: f('models', 'mobilenet-mnist', 'model-opset17.onnx'), calib: { data: f('data', 'mnist', 'train'), samples }, test: mnistTest, rankings: ['l1', 'magnitude'] }, tmp);
    }
    if (only === 'all' || only === 'lraspp') {
      await run({ key: 'lraspp', name: 'MNIST-scenes LR-ASPP (torchvision LRASPP head on the small MobileNetV3)', model: f('models', 'lraspp-scenes', 'model-opset17.onnx'), calib: { data: f('data', 'mnist-scenes', 'train'), samples }, test: f('data', 'mnist-scenes', 'test'), rankings: ['l1', 'magnitude'] }, tmp);
    }
    if (only === 'nsfwjs') {
      const d = path.join(root, '.bench-data', 'nsfwjs');
      if (!fs.existsSync(path.join(d, 'model.onnx'))) throw new Error('run bash bench/external/prepare.sh first (it writes .bench-data/nsfwjs)');
      await run({ key: 'nsfwjs', name: 'nsfwjs MobileNetV2 (Keras, trained outside this project; labels = the dense model\'s predictions)', model: path.join(d, 'model.onnx'), calib: { data: path.join(d, 'images', 'train'), samples }, test: path.join(d, 'images', 'test'), rankings: ['l1'], compact: true }, tmp);
    }
    if (only === 'all' || only === 'seg') {
      await run({ key: 'seg', name: 'MNIST-scenes segmentation transformer', model: f('models', 'segvit-scenes', 'model-opset17.onnx'), calib: { data: f('data', 'mnist-scenes', 'train'), samples }, test: f('data', 'mnist-scenes', 'test'), rankings: ['magnitude'] }, tmp);
    }
    if (only === 'all' || only === 'swinseg') {
      await run({ key: 'swinseg', name: 'MNIST-scenes Swin + FPN segmentation (hybrid: heads, neurons and the head conv\'s channels)', model: f('models', 'swin-fpn-scenes', 'model-opset17.onnx'), calib: { data: f('data', 'mnist-scenes', 'train'), samples }, test: f('data', 'mnist-scenes', 'test'), rankings: ['magnitude'] }, tmp);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
