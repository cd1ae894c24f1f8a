import { loadModel, decodeModel } from '../src/engine/onnx/model';
import { serializeModel } from '../src/engine/onnx/writer';
import { detectStructure } from '../src/engine/structure/detect';
import { applyKeep, type KeepSet } from '../src/engine/prune/apply';
import { verifyPruned } from '../src/engine/prune/verify';
import { loadCalibration } from '../src/engine/data/calibration';
import { modelMacs, headMacs, neuronMacs } from '../src/engine/flops';
import { mulberry32 } from '../src/engine/optin/random';
(async () => {
  for (const f of process.argv.slice(2)) {
    try {
      const m = loadModel(f);
      const st = detectStructure(m);
      const rnd = mulberry32(7);
      const keep: KeepSet = {
        heads: st.layers.map((l, i) => Array.from({ length: l.attention.heads }, (_, h) => h).filter(() => (i === 1 && st.layers.length > 2 ? false : rnd() < 0.6))),
        neurons: st.layers.map((l, i) => Array.from({ length: l.ffn?.width ?? 0 }, (_, j) => j).filter(() => (i === 0 && st.layers.length > 2 ? false : rnd() < 0.5))),
      };
      if (keep.heads.every((h) => h.length === 0) || st.layers.length === 1) keep.heads[0] = [st.layers[0]!.attention.heads - 1];
      keep.scales = { heads: keep.heads.map((h) => h.map(() => 0.5 + rnd())), neurons: keep.neurons.map((n) => n.map(() => 0.5 + rnd())) };
      const proto = applyKeep(m, st, keep);
      const pruned = decodeModel(serializeModel({ ...m, proto }), f + ' (pruned)');
      const batch = await loadCalibration(f, st, { samples: 4 });
      const s = batch.meanLength;
      const macs = st.layers.reduce((a, l, i) => a + keep.heads[i]!.length * headMacs(s, st.hidden, l.attention.headSize, l.attention.vHeadSize) + keep.neurons[i]!.length * neuronMacs(s, st.hidden), 0);
      const v = await verifyPruned(m, st, pruned, keep, batch, { macs, seqLen: s });
      console.log('OK', f.split('/').slice(-2).join('/'), 'heads', keep.heads.map((h) => h.length).join(','), 'diff', v.maxAbsDiff.toExponential(2), 'scale', v.outputScale.toFixed(3), 'macs', (macs / modelMacs(st, s).total).toFixed(3));
    } catch (e) { console.log("FAIL", f, (e as Error).stack?.slice(0, 600)); }
  }
})();
