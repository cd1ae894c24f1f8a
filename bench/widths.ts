/**
 * Kept widths and CPU speed (run on demand: npm run bench:widths [-- --budget 0.6]): torchvision's
 * MobileNetV3-Large (64x64) and LR-ASPP MobileNetV3-Large (128x128), random weights (the skeletons
 * refilled), are pruned by the command line at the same budget with the same L1-norm ranking (so
 * only the widths differ) and every group's kept channels free or a multiple of 4, 8 or 16; then
 * all of them and the dense model are timed interleaved in one `optin bench` run. The MACs are the
 * same for every multiple: what changes is how the kernels run the widths (depthwise convolutions
 * and the 1x1 convolutions around them).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { materialize } from '../test/fixtures/materialize';
import { copyScenes } from './lib/scenes';

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

function optin(...args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`optin ${args[0]} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function main(): void {
  const budget = arg('budget', '0.6');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-widths-'));
  try {
    const data = copyScenes(root, path.join(tmp, 'scenes'), 8);
    for (const [name, dir, size] of [['MobileNetV3-Large', 'tv-mobilenet-v3-large-dynamic-hw', '64x64'], ['LR-ASPP MobileNetV3-Large', 'tv-lraspp-mobilenet-v3-large-dynamic-hw', '128x128']] as const) {
      const file = materialize(path.join(root, 'test', 'fixtures', 'models', dir, 'model.skeleton.onnx'));
      const outs: string[] = [];
      const macs: string[] = [];
      for (const m of ['1', '4', '8', '16']) {
        const out = path.join(tmp, `${dir}-multiple-${m}.onnx`);
        const report = optin('prune', file, '--budget', budget, '--ranking', 'l1', '--no-tune', '--no-eval', '--no-bench', '--no-compare', '--multiple-of', m, '--data', data, '--samples', '8', '--out', out);
        macs.push(`multiple of ${m}: ${(report.match(/^MACs .*$/m) ?? ['?'])[0].replace(/\s+/g, ' ')}`);
        outs.push(out);
      }
      console.log(`\n${name} at ${size}, L1 ranking at ${budget}, widths free (multiple of 1) or multiples of 4, 8, 16:\n${macs.join('\n')}`);
      console.log(optin('bench', file, ...outs, '--batch', '8', '--input-size', size).trim());
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
