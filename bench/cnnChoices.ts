/**
 * The choices behind the CNN defaults (run on demand: npm run bench:cnn-choices [-- --only resnet|mobilenet]
 * [--part repair|allocation|measured]): on the trained MNIST ResNet and MobileNetV3, exact OPTIN
 * scores from 64 training digits, widths in multiples of 8, accuracy on the 963 held-out digits.
 * - repair: no repair, least squares and output statistics, for
 *   OPTIN (uniform shares) and L1-norm filters;
 * - allocation: with the repair, OPTIN's global ranking (the paper's), uniform shares, and the global
 *   ranking with every group keeping at least 25% / 50% of its channels;
 * - measured: an allocation from per-group losses measured after the repair (each group cut alone
 *   to 1/8, 1/4, 1/2, 3/4 of its width, its consumers refitted, the KL of the logits on the
 *   calibration digits; widths then taken from the group with the least loss per MAC saved)
 *   against uniform shares at 0.5 / 0.4 / 0.3 / 0.2.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runScoreJob } from '../src/engine/worker/jobs';
import { makePlan } from '../src/engine/plan/files';
import type { ScoresFile } from '../src/engine/plan/schema';
import { applyPlan } from '../src/engine/prune/applyPlan';
import { evaluate } from '../src/engine/eval/evaluate';
import { loadModel } from '../src/engine/onnx/model';
import { analyzeChannels } from '../src/engine/channels/structure';
import { loadCalibration, type CalibrationBatch } from '../src/engine/data/calibration';
import { reconstructConsumers, type ChannelRepairMethod } from '../src/engine/repair/channelRefit';
import { withConsumerUpdates } from '../src/engine/channels/consumers';
import { channelMaskFeeds, instrumentChannels } from '../src/engine/channels/instrument';
import { runSession, sessionFor, toOrt } from '../src/engine/runtime/session';
import { termsMacs } from '../src/engine/channels/macs';
import type { ChannelAllocation } from '../src/engine/plan/channelSearch';
import type { ChannelStructure } from '../src/engine/channels/structure';
import type { OnnxModel } from '../src/engine/onnx/model';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };
const f = (...p: string[]): string => path.join(root, 'test', 'fixtures', ...p);
const calib = { data: f('data', 'mnist', 'train'), samples: 64 };

interface Ctx { model: string; tmp: string; optin: ScoresFile; l1: ScoresFile; test: { data: string; preprocessor: string } }

async function accuracy(c: Ctx, scores: ScoresFile, budget: number, label: string, opts: { tune: boolean; method?: ChannelRepairMethod; allocation?: ChannelAllocation }): Promise<string> {
  const plan = makePlan(scores, budget, scores.macSeqLen, 8, opts.allocation);
  const out = path.join(c.tmp, `${label}-${budget}.onnx`);
  await applyPlan({ model: c.model, plan, data: calib, out, tune: opts.tune, ...(opts.method ? { channelRepair: opts.method } : {}) });
  const e = await evaluate(out, { data: c.test });
  return `${(100 * e.accuracy!).toFixed(2)}%`;
}

/** Scores that make the global search keep each group's best `fraction` first. */
function withFloor(s: ScoresFile, fraction: number): ScoresFile {
  return { ...s, neurons: s.neurons.map((row) => { const top = row.map((x, j) => ({ x, j })).sort((a, b) => b.x - a.x).slice(0, Math.ceil(fraction * row.length)); const out = [...row]; for (const t of top) out[t.j] = t.x + 1e6; return out; }) };
}

async function repairPart(c: Ctx): Promise<void> {
  const methods: Array<[string, boolean, ChannelRepairMethod | undefined]> = [['no repair', false, undefined], ['least squares', true, 'least-squares'], ['statistics', true, 'statistics']];
  console.log(`| budget | ${['OPTIN', 'L1-norm'].flatMap((r) => methods.map(([m]) => `${r}, ${m}`)).join(' | ')} |`);
  console.log(`|---|${methods.map(() => '---|---|').join('')}`);
  for (const b of [0.8, 0.6, 0.5, 0.4]) {
    const cells: string[] = [];
    for (const [name, s] of [['optin', c.optin], ['l1', c.l1]] as const) for (const [m, tune, method] of methods) cells.push(await accuracy(c, s, b, `${name}-${m}`, { tune, ...(method ? { method } : {}) }));
    console.log(`| ${b} | ${cells.join(' | ')} |`);
  }
}

async function allocationPart(c: Ctx): Promise<void> {
  const variants: Array<[string, ScoresFile, ChannelAllocation]> = [['global (paper)', c.optin, 'global'], ['uniform shares', c.optin, 'uniform'], ['global, floor 25%', withFloor(c.optin, 0.25), 'global'], ['global, floor 50%', withFloor(c.optin, 0.5), 'global']];
  console.log(`| budget | ${variants.map(([n]) => n).join(' | ')} |`);
  console.log(`|---|${variants.map(() => '---|').join('')}`);
  for (const b of [0.8, 0.6, 0.5, 0.4]) {
    const cells: string[] = [];
    for (const [n, s, a] of variants) cells.push(await accuracy(c, s, b, n.replace(/\W+/g, '-'), { tune: true, allocation: a }));
    console.log(`| ${b} | ${cells.join(' | ')} |`);
  }
}

function meanKl(p: Float32Array, q: Float32Array, C: number): number {
  let s = 0;
  const n = p.length / C;
  for (let e = 0; e < n; e++) {
    const lse = (z: Float32Array): number => { let m = -Infinity; for (let i = 0; i < C; i++) m = Math.max(m, z[e * C + i]!); let t = 0; for (let i = 0; i < C; i++) t += Math.exp(z[e * C + i]! - m); return m + Math.log(t); };
    const lp = lse(p), lq = lse(q);
    for (let i = 0; i < C; i++) s += Math.exp(p[e * C + i]! - lp) * ((p[e * C + i]! - lp) - (q[e * C + i]! - lq));
  }
  return s / n;
}

async function logits(m: OnnxModel, cs: ChannelStructure, batch: CalibrationBatch, keep?: number[][], l?: number): Promise<Float32Array> {
  const s = await sessionFor(m, instrumentChannels(m, cs, l === undefined ? [] : [l], []), 'bench');
  try {
    return (await runSession(s.session, { ...toOrt(batch.feeds), ...(keep && l !== undefined ? channelMaskFeeds(cs, keep, batch.batch, [l]) : {}) }, 'bench'))[cs.outputs[0]!]!.data as Float32Array;
  } finally {
    await s.session.release();
  }
}

async function measuredPart(c: Ctx): Promise<void> {
  const m = loadModel(c.model);
  const cs = await analyzeChannels(m);
  const batch = await loadCalibration(c.model, cs, calib);
  const widths = cs.groups.map((g) => g.width);
  const top = (l: number, k: number): number[] => c.optin.neurons[l]!.map((s, j) => ({ s, j })).sort((a, b) => b.s - a.s).slice(0, k).map((x) => x.j).sort((a, b) => a - b);
  const dense = await logits(m, cs, batch);
  const C = dense.length / batch.batch;
  const RHOS = [0.125, 0.25, 0.5, 0.75];
  const loss: number[][] = [];
  for (let l = 0; l < widths.length; l++) {
    loss.push([]);
    for (const rho of RHOS) {
      const keep = widths.map((w, i) => (i === l ? top(l, Math.max(8, Math.round((rho * w) / 8) * 8)) : Array.from({ length: w }, (_, j) => j)));
      const r = await reconstructConsumers(m, cs, keep, batch, undefined, 'auto');
      loss[l]!.push(meanKl(dense, await logits(withConsumerUpdates(m, r.updates), cs, batch, keep, l), C));
    }
  }
  const lossAt = (l: number, k: number): number => {
    const rho = k / widths[l]!;
    if (rho >= 1) return 0;
    const xs = [0, ...RHOS, 1], ys = [2 * loss[l]![0]!, ...loss[l]!, 0];
    for (let i = 0; i < xs.length - 1; i++) if (rho <= xs[i + 1]!) return ys[i]! + ((ys[i + 1]! - ys[i]!) * (rho - xs[i]!)) / (xs[i + 1]! - xs[i]!);
    return 0;
  };
  const terms = c.optin.model.channels!.terms;
  const base = termsMacs(terms, widths);
  console.log('| budget | measured after the repair | uniform shares |');
  console.log('|---|---|---|');
  for (const b of [0.5, 0.4, 0.3, 0.2]) {
    const w = [...widths];
    while (termsMacs(terms, w) > b * base) {
      let best = -1, bestRate = Infinity;
      for (let l = 0; l < w.length; l++) {
        if (w[l]! <= 8) continue;
        const next = [...w];
        next[l]! -= 8;
        const rate = (lossAt(l, next[l]!) - lossAt(l, w[l]!)) / (termsMacs(terms, w) - termsMacs(terms, next));
        if (rate < bestRate) { bestRate = rate; best = l; }
      }
      w[best]! -= 8;
    }
    const pinned: ScoresFile = { ...c.optin, neurons: c.optin.neurons.map((s, l) => { const t = new Set(top(l, w[l]!)); return s.map((x, j) => (t.has(j) ? 1e6 + x : x)); }) };
    const measured = await accuracy(c, pinned, termsMacs(terms, w) / base + 1e-9, 'measured', { tune: true, allocation: 'global' });
    console.log(`| ${b} | ${measured} (widths ${w.join('/')}) | ${await accuracy(c, c.optin, b, 'uniform', { tune: true })} |`);
  }
}

async function main(): Promise<void> {
  const only = arg('only', 'all'), part = arg('part', 'all');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-cnn-choices-'));
  try {
    for (const [key, name, dir] of [['resnet', 'MNIST ResNet', 'resnet-mnist'], ['mobilenet', 'MNIST MobileNetV3', 'mobilenet-mnist']] as const) {
      if (only !== 'all' && only !== key) continue;
      const model = f('models', dir, 'model-opset17.onnx');
      const score = (ranking: 'optin' | 'l1'): Promise<ScoresFile> => runScoreJob({ model, data: calib, ep: 'cpu', mode: 'exact', ranking }, () => undefined, new AbortController().signal);
      const c: Ctx = { model, tmp, optin: await score('optin'), l1: await score('l1'), test: { data: f('data', 'mnist', 'test'), preprocessor: path.join(path.dirname(model), 'preprocessor_config.json') } };
      const dense = await evaluate(model, { data: c.test });
      console.log(`\n### ${name}: dense accuracy ${(100 * dense.accuracy!).toFixed(2)}% on ${dense.examples} held-out digits\n`);
      if (part === 'all' || part === 'repair') await repairPart(c);
      if (part === 'all' || part === 'allocation') { console.log(''); await allocationPart(c); }
      if (part === 'all' || part === 'measured') { console.log(''); await measuredPart(c); }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
