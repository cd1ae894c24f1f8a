/**
 * CNN scoring and pruning time (run on demand: npm run bench:lraspp [-- --samples 8] [--suffix-ratio]):
 * torchvision's LR-ASPP MobileNetV3-Large (random weights: the dynamic-size skeleton refilled),
 * analysed at 128x128, pruned at 0.6 by the real command line with default flags (exact OPTIN
 * channel scores, uniform shares, the repair, verification, the held-out agreement, the L1 baseline
 * and the unrepaired plan, the speed benchmark) on 8 scene images; prints the wall time against the
 * 10-minute target and the report. `--suffix-ratio` also scores four groups from the whole masked
 * graph and from the dense values before each mask, side by side.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { materialize } from '../test/fixtures/materialize';
import { copyScenes } from './lib/scenes';
import { loadModel } from '../src/engine/onnx/model';
import { analyzeChannels } from '../src/engine/channels/structure';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreChannels } from '../src/engine/channels/scorer';
import { inputSizeFor } from '../src/engine/data/inputSize';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

async function suffixRatio(file: string, data: string, samples: number): Promise<void> {
  const m = loadModel(file);
  const cs = await analyzeChannels(m, inputSizeFor(file));
  const batch = await loadCalibration(file, cs, { data, samples });
  const layers = [0, 8, 16, 23];
  const t0 = performance.now();
  await scoreChannels(m, cs, batch, { layers, suffix: false });
  const t1 = performance.now();
  await scoreChannels(m, cs, batch, { layers });
  const t2 = performance.now();
  console.log(`groups ${layers.join(', ')} (${layers.reduce((a, l) => a + cs.groups[l]!.width, 0)} channels): whole masked graph ${((t1 - t0) / 1000).toFixed(1)} s, from the values before each mask ${((t2 - t1) / 1000).toFixed(1)} s: ${((t1 - t0) / (t2 - t1)).toFixed(2)}x`);
}

async function main(): Promise<void> {
  const file = materialize(path.join(root, 'test', 'fixtures', 'models', 'tv-lraspp-mobilenet-v3-large-dynamic-hw', 'model.skeleton.onnx'));
  const samples = Number(arg('samples', '8'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-lraspp-'));
  try {
    // Unlabelled scenes (the random 6-class head has no use for digit labels): 8 calibrate, the rest are held out.
    const data = copyScenes(root, path.join(tmp, 'scenes'), 32);
    if (process.argv.includes('--suffix-ratio')) await suffixRatio(file, data, samples);
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'prune', file, '--budget', '0.6', '--data', data, '--samples', String(samples), '--out', path.join(tmp, 'p.onnx')], { encoding: 'utf8' });
    const wall = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`optin prune failed (${r.status}): ${r.stderr}`);
    console.log(r.stdout.split('\n').filter((l) => !/^\S+ +\d+\/\d+$|^group +channels$/.test(l)).join('\n'));
    console.log(`LR-ASPP MobileNetV3-Large at 128x128, ${samples} calibration images, optin prune --budget 0.6 with default flags: ${(wall / 60).toFixed(1)} min wall (target < 10)`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
