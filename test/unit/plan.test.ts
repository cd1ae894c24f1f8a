import * as assert from 'node:assert/strict';
import { searchMasks } from '../../src/engine/plan/search';
import { makePlan } from '../../src/engine/plan/files';
import { headMacs, neuronMacs } from '../../src/engine/flops';
import type { ScoresFile } from '../../src/engine/plan/schema';
import { expectOptinError } from './helpers';

const geometry = [
  { heads: 2, headSize: 4, vHeadSize: 4, ffn: 4 },
  { heads: 2, headSize: 4, vHeadSize: 4, ffn: 4 },
];
const D = 8;
const S = 3;
const hm = headMacs(S, D, 4);
const nm = neuronMacs(S, D);

/** Exhaustive version of docs/method.md §3, for checking the fast search. */
function bruteForce(heads: number[][], neurons: number[][], budget: number): number {
  const base = 4 * hm + 8 * nm;
  const hs = heads.flat().sort((a, b) => b - a);
  const ns = neurons.flat().sort((a, b) => b - a);
  let best = -Infinity;
  for (let n = 1; n <= hs.length; n++) {
    const left = budget * base - n * hm;
    if (left < 0) break;
    const k = Math.min(ns.length, Math.floor(left / nm + 1e-9));
    best = Math.max(best, hs.slice(0, n).reduce((a, b) => a + b, 0) + ns.slice(0, k).reduce((a, b) => a + b, 0));
  }
  return best;
}

describe('mask search (docs/method.md §3)', () => {
  const heads = [[5, 1], [3, 0.5]];
  const neurons = [[9, 0.1, 0.2, 4], [0.3, 2, 0.05, 1]];

  it('keeps everything at budget 1', () => {
    const r = searchMasks(geometry, D, S, heads, neurons, 1);
    assert.deepEqual(r.heads, [[true, true], [true, true]]);
    assert.equal(r.kept, r.baseline);
  });

  for (const budget of [0.9, 0.7, 0.5, 0.35]) {
    it(`at budget ${budget} matches the exhaustive search and respects the MAC capacity`, () => {
      const r = searchMasks(geometry, D, S, heads, neurons, budget);
      assert.ok(r.kept <= budget * r.baseline + 1e-6, `${r.kept} > ${budget * r.baseline}`);
      assert.ok(Math.abs(r.importance - bruteForce(heads, neurons, budget)) < 1e-12);
      const keptNeurons = r.neurons.flatMap((row, l) => row.flatMap((k, j) => (k ? [neurons[l]![j]!] : [])));
      const dropped = r.neurons.flatMap((row, l) => row.flatMap((k, j) => (k ? [] : [neurons[l]![j]!])));
      if (keptNeurons.length && dropped.length) assert.ok(Math.min(...keptNeurons) >= Math.max(...dropped), 'neurons are kept in rank order');
    });
  }

  it('may empty a whole layer', () => {
    const r = searchMasks(geometry, D, S, [[5, 4], [0, 0]], [[9, 9, 9, 9], [0, 0, 0, 0]], 0.5);
    assert.equal(r.neurons[1]!.filter(Boolean).length, 0);
  });

  it('refuses budgets outside (0, 1] and budgets below one head', async () => {
    for (const b of [0, -0.1, 1.5, NaN]) await expectOptinError(() => searchMasks(geometry, D, S, heads, neurons, b), 'usage', /outside \(0, 1\]/);
    await expectOptinError(() => searchMasks(geometry, D, S, heads, neurons, 0.01), 'usage', /less than one attention head/);
  });

  it('re-plans from a saved scores file at BERT-base size (speed: npm run bench:replan)', () => {
    const layers = Array.from({ length: 12 }, () => ({ heads: 12, headSize: 64, vHeadSize: 64, ffn: 3072 }));
    let x = 1;
    const rnd = (): number => ((x = (x * 16807) % 2147483647) / 2147483647);
    const s = {
      model: { layers, hidden: 768 }, macSeqLen: 64, mode: 'exact', calibration: {},
      heads: layers.map((g) => Array.from({ length: g.heads }, rnd)), neurons: layers.map((g) => Array.from({ length: g.ffn }, rnd)),
    } as unknown as ScoresFile;
    const plan = makePlan(s, 0.6);
    assert.ok(plan.macs.ratio <= 0.6 && plan.macs.ratio > 0.59);
    assert.equal(plan.keep.heads.length, 12);
    assert.equal(plan.keep.neurons.length, 12);
  });

  it('--multiple-of N keeps a multiple of N neurons (or all) per layer, decided by the search within the budget', () => {
    let x = 7;
    const rnd = (): number => ((x = (x * 16807) % 2147483647) / 2147483647);
    const layers = Array.from({ length: 4 }, () => ({ heads: 4, headSize: 8, vHeadSize: 8, ffn: 100 }));
    const hs = layers.map((g) => Array.from({ length: g.heads }, rnd)), ns = layers.map((g) => Array.from({ length: g.ffn }, () => rnd() ** 3));
    for (const budget of [0.9, 0.6, 0.4]) {
      const free = searchMasks(layers, 32, 16, hs, ns, budget);
      const r = searchMasks(layers, 32, 16, hs, ns, budget, 8);
      for (const row of r.neurons) {
        const k = row.filter(Boolean).length;
        assert.ok(k % 8 === 0 || k === 100, `kept ${k} neurons`);
      }
      assert.ok(r.kept <= budget * r.baseline * (1 + 1e-12));
      assert.ok(r.importance <= free.importance + 1e-9, 'the constraint cannot beat the free search');
      assert.ok(r.importance >= 0.9 * free.importance, `close to the free search (${r.importance} vs ${free.importance})`);
      assert.deepEqual(searchMasks(layers, 32, 16, hs, ns, budget, 1), free, 'multiple-of 1 is the plain search');
    }
    assert.throws(() => searchMasks(layers, 32, 16, hs, ns, 0.5, 0), /--multiple-of must be a whole number >= 1/);
  });

  it('a layer with a neuron block size (block-quantized second matrix) keeps whole aligned blocks, chosen by their summed scores', () => {
    let x = 11;
    const rnd = (): number => ((x = (x * 16807) % 2147483647) / 2147483647);
    const layers = [{ heads: 4, headSize: 8, vHeadSize: 8, ffn: 100, neuronBlock: 32 }, { heads: 4, headSize: 8, vHeadSize: 8, ffn: 100 }];
    const hs = layers.map((g) => Array.from({ length: g.heads }, rnd)), ns = layers.map((g) => Array.from({ length: g.ffn }, () => rnd() ** 3));
    for (const budget of [0.9, 0.6, 0.4]) {
      const r = searchMasks(layers, 32, 16, hs, ns, budget);
      const kept = r.neurons[0]!;
      const blocks = [0, 32, 64, 96].map((b) => kept.slice(b, b + 32));
      for (const blk of blocks) assert.ok(blk.every(Boolean) || !blk.some(Boolean), `budget ${budget}: a block split`);
      const sum = (b: number): number => ns[0]!.slice(b, b + 32).reduce((a, v) => a + v, 0) / Math.min(32, 100 - b);
      const keptMeans = [0, 32, 64, 96].filter((b, i) => blocks[i]![0]).map(sum), cutMeans = [0, 32, 64, 96].filter((b, i) => !blocks[i]![0]).map(sum);
      assert.ok(!keptMeans.length || !cutMeans.length || Math.min(...keptMeans) >= Math.max(...cutMeans), 'the best blocks by mean score are kept');
      assert.ok(r.kept <= budget * r.baseline * (1 + 1e-12));
    }
  });
});

