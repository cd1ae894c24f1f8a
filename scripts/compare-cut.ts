/**
 * Dev check for refactors of the cutter: the same random keep sets (heads and neurons, three seeds)
 * applied by this checkout's engine and by another commit's, on each model given, and the two cut
 * models run on the same synthetic batch; prints the largest output difference per model (0 when the
 * two cut the same function).
 *
 *   git worktree add /tmp/base <commit> && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   npx esbuild scripts/compare-cut.ts --bundle --platform=node --external:onnxruntime-node --external:sharp \
 *     --alias:@base=/tmp/base/src --outfile=out/tools/compare-cut.cjs --log-level=warning
 *   node out/tools/compare-cut.cjs test/fixtures/models/bert-sst2/model-opset17.onnx ...
 *
 * Skeleton fixtures are materialised first; models whose structure either engine refuses are listed
 * as such. Block-quantized (int4) models keep every neuron (a random keep set splits their blocks).
 */
import * as ort from 'onnxruntime-node';
import { loadModel } from '../src/engine/onnx/model';
import { analyzeStructure } from '../src/engine/structure/detect';
import { applyKeep } from '../src/engine/prune/apply';
import { serializeModel } from '../src/engine/onnx/writer';
import { benchFeeds } from '../src/engine/data/synthetic';
import { mulberry32 } from '../src/engine/optin/random';
import { headCount } from '../src/engine/structure/layer';
import { modelInputs } from '../src/engine/structure/inputs';
import { GraphIndex } from '../src/engine/onnx/graph';
import { materialize } from '../test/fixtures/materialize';
// @ts-expect-error resolved by esbuild's --alias:@base
import { loadModel as loadBase } from '@base/engine/onnx/model';
// @ts-expect-error resolved by esbuild's --alias:@base
import { analyzeStructure as analyzeBase } from '@base/engine/structure/detect';
// @ts-expect-error resolved by esbuild's --alias:@base
import { applyKeep as applyBase } from '@base/engine/prune/apply';
// @ts-expect-error resolved by esbuild's --alias:@base
import { serializeModel as serializeBase } from '@base/engine/onnx/writer';

async function outputs(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    const out = await s.run(feeds);
    return s.outputNames.map((n) => out[n]!.data as Float32Array);
  } finally {
    await s.release();
  }
}

const all = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

async function compare(file: string): Promise<string> {
  const path = file.endsWith('.skeleton.onnx') ? materialize(file) : file;
  const m = loadModel(path);
  const { st } = await analyzeStructure(m).catch((e: Error) => { throw new Error(`refused here: ${e.message}`); });
  const mb = loadBase(path);
  const { st: stb } = await analyzeBase(mb).catch((e: Error) => { throw new Error(`refused by the base: ${e.message}`); });
  let worst = 0, nodes = '';
  for (const seed of [1, 2, 3]) {
    const rnd = mulberry32(seed);
    const some = (n: number, p: number): number[] => { const k = all(n).filter(() => rnd() < p); return k.length || !n ? k : [n - 1]; };
    const keep = {
      heads: st.layers.map((l) => some(headCount(l), 0.6)),
      neurons: st.layers.map((l) => (l.ffn?.down.blockSize ? all(l.ffn.width) : some(l.ffn?.width ?? 0, 0.7))),
    };
    const a = applyKeep(m, st, keep), b = applyBase(mb, stb, keep);
    const inputs = modelInputs(new GraphIndex(a.graph!, m.ext));
    const batch = inputs[0]!.shape[0];
    const feeds = benchFeeds({ ...st, inputs }, typeof batch === 'number' && batch > 0 ? batch : 2, 16);
    const [x, y] = [await outputs(serializeModel({ ...m, proto: a }), feeds), await outputs(serializeBase({ ...mb, proto: b }), feeds)];
    x.forEach((o, i) => o.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - y[i]![j]!)); }));
    nodes = `${a.graph!.node.length} nodes vs ${b.graph!.node.length}`;
  }
  return `max difference ${worst} (${nodes})`;
}

(async () => {
  for (const file of process.argv.slice(2)) {
    console.log(file, await compare(file).catch((e: Error) => e.message.split('\n')[0]));
  }
})();
