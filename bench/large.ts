/**
 * Large-model benchmark (run on demand: npm run bench:large [-- --geometry bert-large|xlmr-large]
 * [--samples 16] [--mode auto] [--time-budget 10] [--layers N] [--keep DIR] [--cli dist/cli.js]). Generates a BERT-large-geometry
 * encoder (24 layers, hidden 1024, 16 heads, FFN 4096; random weights) stored with external data;
 * `xlmr-large` is the same encoder with XLM-RoBERTa-large's 250,002-token vocabulary, 2.2 GB, over
 * protobuf's 2 GB limit. Then runs the real command line on it, each step in its own process:
 * inspect, score (fast/auto), plan at 0.6, apply (which verifies pruned == masked original), and
 * prints each step's wall time and peak RSS against the target (2 x model size + 1 GB), and whether
 * the original files are byte-identical afterwards.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { bertModel, type BertGeometry } from './lib/bertModel';
import { sha256File } from '../src/engine/util/atomic';

const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

const GEOMETRIES: Record<string, BertGeometry> = {
  'bert-large': { layers: 24, hidden: 1024, heads: 16, ffn: 4096, vocab: 30522, positions: 512, classes: 2 },
  'xlmr-large': { layers: 24, hidden: 1024, heads: 16, ffn: 4096, vocab: 250002, positions: 514, classes: 2 },
};

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = arg('cli', path.join(ROOT, 'dist', 'cli.js'));

/** One digest over the model and its external-data file, to prove they were never written. */
const hashFiles = (files: string[]): string => files.map(sha256File).join(',');

interface Step { name: string; seconds: number; rss: number; ok: boolean; stdout: string }

/** Preloaded into each CLI process: writes its peak RSS (bytes) to OPTIN_RSS_FILE when it exits. */
const RSS_HOOK = "process.on('exit', () => require('node:fs').writeFileSync(process.env.OPTIN_RSS_FILE, String(process.resourceUsage().maxRSS * 1024)));\n";

/** Run the CLI in a fresh process; its peak RSS comes from a preloaded exit hook. */
function cli(name: string, args: string[], hook: string): Step {
  const rssFile = path.join(os.tmpdir(), `optin-rss-${process.pid}-${name}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--require', hook, CLI, ...args], {
    env: { ...process.env, OPTIN_RSS_FILE: rssFile }, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28,
  });
  const seconds = (performance.now() - t0) / 1000;
  const rss = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) : NaN;
  fs.rmSync(rssFile, { force: true });
  return { name, seconds, rss, ok: r.status === 0, stdout: r.stdout ?? '' };
}

async function main(): Promise<void> {
  const gen = arg('generate', '');
  const base = GEOMETRIES[arg('geometry', 'xlmr-large')];
  if (!base) throw new Error(`--geometry must be one of ${Object.keys(GEOMETRIES).join(', ')}`);
  const geometry = { ...base, layers: Number(arg('layers', String(base.layers))) };
  if (gen) {
    fs.writeFileSync(gen, bertModel(geometry, 1, { file: `${gen}.data`, location: `${path.basename(gen)}.data` }));
    return;
  }
  const keep = arg('keep', '');
  const dir = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'optin-large-'));
  fs.mkdirSync(dir, { recursive: true });
  try {
    const file = path.join(dir, 'model.onnx');
    const t0 = performance.now();
    // Generated in a child process so that its memory is not part of any measured step.
    const g = spawnSync(process.execPath, [__filename, '--generate', file, '--geometry', arg('geometry', 'xlmr-large'), '--layers', String(geometry.layers)], { stdio: 'inherit' });
    if (g.status !== 0) throw new Error('generating the model failed');
    const originals = [file, `${file}.data`];
    const size = originals.reduce((a, f) => a + fs.statSync(f).size, 0);
    const before = hashFiles(originals);
    const G = geometry;
    console.log(`model: ${G.layers} layers, hidden ${G.hidden}, ${G.heads} heads, FFN ${G.ffn}, vocabulary ${G.vocab}, random weights; ${(size / 2 ** 30).toFixed(2)} GiB (${(fs.statSync(file).size / 1024).toFixed(0)} kB graph + external data), generated in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const samples = arg('samples', '16');
    const steps: Step[] = [];
    const hook = path.join(dir, 'rss-hook.js');
    fs.writeFileSync(hook, RSS_HOOK);
    const run = (name: string, args: string[]): Step => {
      const s = cli(name, args, hook);
      steps.push(s);
      if (!s.ok) throw new Error(`optin ${args.join(' ')} failed`);
      return s;
    };
    const inspect = JSON.parse(run('inspect', ['inspect', file, '--json']).stdout) as { layers: Array<{ heads: number; headSize: number; ffn: number }>; parameters: number };
    const ls = inspect.layers;
    console.log(`inspect: ${ls.length} layers, ${ls[0]?.heads} heads x ${ls[0]?.headSize}, FFN ${ls[0]?.ffn}, ${(inspect.parameters / 1e6).toFixed(0)} M parameters`);
    const scores = path.join(dir, 'scores.json');
    const plan = path.join(dir, 'plan.json');
    run('score', ['score', file, '--samples', samples, '--mode', arg('mode', 'auto'), '--time-budget', arg('time-budget', '10'), '--quiet', '--out', scores]);
    run('plan', ['plan', scores, '--budget', '0.6', '--out', plan]);
    run('apply', ['apply', file, '--plan', plan, '--samples', '4', '--out', path.join(dir, 'pruned.onnx')]);
    const prunedSize = ['pruned.onnx', 'pruned.onnx.data'].reduce((a, f) => a + (fs.existsSync(path.join(dir, f)) ? fs.statSync(path.join(dir, f)).size : 0), 0);
    const same = hashFiles(originals) === before;
    const limit = 2 * size + 2 ** 30;
    console.log(`\n| step | wall | peak RSS | target (2 x model + 1 GiB = ${(limit / 2 ** 30).toFixed(2)} GiB) |\n|---|---|---|---|`);
    for (const s of steps) console.log(`| ${s.name} | ${s.seconds.toFixed(0)} s | ${(s.rss / 2 ** 30).toFixed(2)} GiB | ${s.rss <= limit ? 'met' : 'MISSED'} |`);
    console.log(`\npruned model ${(prunedSize / 2 ** 30).toFixed(2)} GiB; original files byte-identical after all steps: ${same ? 'yes' : 'NO'}`);
  } finally {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
