import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';
(async () => {
  const m = loadModel(process.argv[2]!);
  const st = detectStructure(m);
  const batch = await loadCalibration(m.path, st, { ...(process.argv[3] ? { data: process.argv[3] } : {}), samples: Number(process.argv[4] ?? 16) });
  console.log('batch', batch.batch, batch.seqLen, batch.meanLength, batch.warning ?? '');
  const s = await scoreModel(m, st, batch, { onProgress: (p) => { if (p.done % 500 < 50) process.stderr.write(`\r${p.done}/${p.total} eta ${p.eta?.toFixed(0)}s   `); } });
  console.log('\nseconds', s.seconds.toFixed(1));
  console.log('heads', s.heads.map((h) => h.map((x) => x.toExponential(2)).join(' ')).join('\n'));
  console.log('neurons L0 first', s.neurons[0]!.slice(0, 6).map((x) => x.toExponential(2)).join(' '));
  console.log('raw head md', s.raw.heads[0]!.md.slice(0, 4), 'kl', s.raw.heads[0]!.kl.slice(0, 4));
})().catch((e) => { console.error(e); process.exit(1); });
