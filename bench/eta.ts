/**
 * How honest the scoring ETA is (run on demand: npm run bench:eta [-- --samples 32]): exact scoring of
 * the SST-2 BERT on the first N training sentences, recording every progress report; prints, at 5%,
 * 10%, 25%, 50% and 75% of the elements, the ETA shown then against the time the run actually still
 * took, beside an alternative tried and rejected (the current layer's measured rate, later layers
 * scaled by 1 + their suffix length, plus their setup), and when the first heatmap row arrived.
 */
import * as path from 'node:path';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
import type { ScoreProgress } from '../src/engine/optin/types';

const root = path.resolve(__dirname, '..', '..');
const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };

async function main(): Promise<void> {
  const f = (...p: string[]): string => path.join(root, 'test', 'fixtures', ...p);
  const model = loadModel(f('models', 'bert-sst2', 'model-opset17.onnx'));
  const st = await detectStructure(model);
  const samples = Number(arg('samples', '32'));
  const batch = await loadCalibration(model.path, st, { data: f('data', 'sst2', 'train.tsv'), samples });
  const events: ScoreProgress[] = [];
  const s = await scoreModel(model, st, batch, { onProgress: (p) => events.push(p) });
  const total = s.seconds;
  console.log(`SST-2 BERT, ${samples} sentences, exact mode on ${s.provider}: ${total.toFixed(1)} s in all`);
  const firstRow = events.find((e) => e.partial);
  console.log(`first heatmap row (layer ${firstRow?.partial?.layer} ${firstRow?.partial?.neurons ? 'heads and neurons' : 'heads'}) after ${firstRow?.elapsed.toFixed(1)} s`);
  // The alternative: the current layer's own rate (its elapsed time since its first report), later
  // layers scaled by (1 + L - l) / (1 + L - current).
  const L = st.layers.length;
  const perLayer = st.layers.map((l) => l.attention!.heads + (l.ffn?.width ?? 0));
  const units = (l: number): number => 1 + L - l;
  const layerStart = new Map<number, { t: number; done: number }>();
  const old = new Map<ScoreProgress, number>();
  let prev = 0, prevElapsed = 0;
  for (const e of events) {
    if (e.phase !== 'layer' || e.done === prev) continue;
    const l = e.layer!;
    if (!layerStart.has(l)) layerStart.set(l, { t: prevElapsed, done: prev });
    const st0 = layerStart.get(l)!;
    const doneHere = e.done - st0.done;
    const rate = (e.elapsed - st0.t) / doneHere;
    let eta = (perLayer[l]! - doneHere) * rate;
    for (let k = l + 1; k < L; k++) eta += perLayer[k]! * rate * (units(k) / units(l));
    prev = e.done;
    prevElapsed = e.elapsed;
    old.set(e, eta);
  }
  console.log('progress  elapsed   ETA shown   alternative   actually left   ETA / actual   alternative / actual');
  for (const q of [0.05, 0.1, 0.25, 0.5, 0.75]) {
    const e = events.find((x) => x.phase === 'layer' && x.eta !== undefined && x.done >= q * x.total && old.has(x));
    if (!e) continue;
    const left = total - e.elapsed;
    const o = old.get(e)!;
    console.log(`${(100 * q).toFixed(0).padStart(6)}%  ${e.elapsed.toFixed(1).padStart(7)} s  ${e.eta!.toFixed(1).padStart(8)} s  ${o.toFixed(1).padStart(14)} s  ${left.toFixed(1).padStart(12)} s  ${(e.eta! / left).toFixed(2).padStart(12)}  ${(o / left).toFixed(2).padStart(16)}`);
  }
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
