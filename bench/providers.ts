/**
 * CPU vs every other execution provider that works here (npm run bench:providers [-- --software]):
 * the SST-2 BERT and the digits ViT, interleaved runs in one process, median latency and the ratio
 * to the CPU. Providers are tried explicitly (cuda, webgpu, dml, coreml); one that is missing or
 * fails its probe is listed with the reason. A software WebGPU adapter (SwiftShader) is measured
 * only with --software, and labelled as such.
 * Then, per GPU provider that keeps tensors on its device (WebGPU), exact scoring of the digits
 * ViT's first layer with the shared inputs kept on the device vs uploaded for every run,
 * interleaved, median seconds and the ratio. `--scoring-only` skips the model timings (slow on a
 * software adapter).
 */
import * as path from 'node:path';
import { benchModels } from '../src/engine/eval/bench';
import { createSession } from '../src/engine/runtime/session';
import { webgpuAdapter } from '../src/engine/runtime/adapter';
import type { Provider } from '../src/engine/runtime/providers';
import { keepsInputsOnDevice } from '../src/engine/runtime/deviceFeeds';
import { loadModel } from '../src/engine/onnx/model';
import { detectStructure } from '../src/engine/structure/detect';
import { loadCalibration } from '../src/engine/data/calibration';
import { scoreModel } from '../src/engine/optin/scorer';

const root = path.resolve(__dirname, '..', '..');
const models: Array<[string, string, { batch: number; seqLen: number }]> = [
  ['SST-2 BERT', path.join(root, 'test/fixtures/models/bert-sst2/model-opset17.onnx'), { batch: 32, seqLen: 64 }],
  ['digits ViT', path.join(root, 'test/fixtures/models/vit-digits/model-opset17.onnx'), { batch: 256, seqLen: 17 }],
];

async function usable(ep: Provider, model: string): Promise<string | undefined> {
  if (ep === 'webgpu' && webgpuAdapter()?.software && !process.argv.includes('--software')) return `only a software adapter (${webgpuAdapter()!.name}); pass --software to measure it anyway`;
  try {
    const s = await createSession(model, { ep, label: model });
    await s.session.release();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function deviceFeedsBench(ep: Provider): Promise<void> {
  const model = loadModel(models[1]![1]);
  const st = await detectStructure(model);
  const batch = await loadCalibration(model.path, st, { data: path.join(root, 'test/fixtures/data/digits/train'), samples: Number(arg('samples', '8')) });
  const times: Record<'device' | 'upload', number[]> = { device: [], upload: [] };
  const rounds = Number(arg('rounds', '3'));
  for (let i = 0; i < rounds; i++) {
    for (const k of ['device', 'upload'] as const) {
      const t = performance.now();
      await scoreModel(model, st, batch, { ep, layers: [0], deviceFeeds: k === 'device' });
      times[k].push((performance.now() - t) / 1000);
    }
  }
  const d = median(times.device), u = median(times.upload);
  console.log(`\ndigits ViT exact scoring, layer 0, ${batch.batch} examples, ${ep}, ${rounds} interleaved runs each:`);
  console.log(`  shared inputs kept on the device   median ${d.toFixed(2)} s`);
  console.log(`  uploaded for every run             median ${u.toFixed(2)} s  (${(u / d).toFixed(2)}x the device-kept time)`);
}

async function main(): Promise<void> {
  const gpus = new Set<Provider>();
  for (const [name, model, shape] of models) {
    const eps: Provider[] = ['cpu'];
    for (const ep of ['cuda', 'webgpu', 'dml', 'coreml'] as Provider[]) {
      const why = await usable(ep, model);
      if (why) console.log(`${name}: ${ep} skipped: ${why}`);
      else { eps.push(ep); gpus.add(ep); }
    }
    if (process.argv.includes('--scoring-only')) continue;
    const r = await benchModels(eps.map(() => model), { ...shape, eps, runs: 20, warmup: 3 });
    console.log(`\n${name}, ${r.shape}, ${r.runs} interleaved runs each, ${r.threads} threads`);
    for (const [i, m] of r.models.entries()) {
      console.log(`  ${m.provider.padEnd(42)} median ${m.medianMs.toFixed(2)} ms (p10 ${m.p10Ms.toFixed(2)}, p90 ${m.p90Ms.toFixed(2)})  ${i === 0 ? 'baseline' : `${r.speedup[i]!.toFixed(2)}x the CPU`}`);
    }
  }
  for (const ep of gpus) if (keepsInputsOnDevice(ep)) await deviceFeedsBench(ep);
}

main().catch((e) => { console.error(e instanceof Error ? e.message : String(e)); process.exit(1); });
