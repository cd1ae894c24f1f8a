/**
 * Re-plan speed (run on demand: npm run bench:replan): the global mask search from a saved scores
 * file at BERT-base size (12 layers x 12 heads, FFN 3072), median of several runs at each budget.
 */
import { makePlan } from '../src/engine/plan/files';
import type { ScoresFile } from '../src/engine/plan/schema';

const layers = Array.from({ length: 12 }, () => ({ heads: 12, headSize: 64, vHeadSize: 64, ffn: 3072 }));
let x = 1;
const rnd = (): number => ((x = (x * 16807) % 2147483647) / 2147483647);
const scores = {
  model: { layers, hidden: 768 }, macSeqLen: 64, mode: 'exact', calibration: {},
  heads: layers.map((g) => Array.from({ length: g.heads }, rnd)), neurons: layers.map((g) => Array.from({ length: g.ffn }, rnd)),
} as unknown as ScoresFile;

for (const budget of [0.8, 0.6, 0.4]) {
  const ms: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t = performance.now();
    makePlan(scores, budget);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  console.log(`budget ${budget}: re-plan median ${ms[4]!.toFixed(1)} ms (min ${ms[0]!.toFixed(1)}, max ${ms[8]!.toFixed(1)}) over 9 runs, 36,864 neurons + 144 heads`);
}
