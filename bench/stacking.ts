/**
 * Variant-stacking measurement (run on demand: node scripts/build.mjs --bench && node out/bench/stacking.js SAMPLES CHUNK...):
 * layer-0 elements scored per second of the SST-2 BERT for each tokens-per-run setting.
 */
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
(async () => {
  const m = loadModel('test/fixtures/models/bert-sst2/model-opset17.onnx');
  const st = await detectStructure(m);
  const batch = await loadCalibration(m.path, st, { data: 'test/fixtures/data/sst2/train.tsv', samples: Number(process.argv[2] ?? 16) });
  for (const chunk of process.argv.slice(3).map(Number)) {
    const ac = new AbortController();
    let t0 = 0, d0 = 0, rate = 0;
    await scoreModel(m, st, batch, { chunkTokens: chunk, signal: ac.signal, onProgress: (p) => {
      if (p.phase !== 'layer' || p.partial) return;
      if (!t0) { t0 = performance.now(); d0 = p.done; return; }
      if (p.done - d0 >= 500) { rate = (p.done - d0) / ((performance.now() - t0) / 1000); ac.abort(); }
    } }).catch(() => undefined);
    console.log(`chunkTokens ${chunk}: ${rate.toFixed(1)} layer-0 elements/s`);
  }
})();
