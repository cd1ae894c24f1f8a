import * as assert from 'node:assert/strict';
import { searchHybrid } from '../../src/engine/plan/hybridSearch';
import { macCosts } from '../../src/engine/plan/costs';
import { termsMacs, type MacTerm } from '../../src/engine/channels/macs';
import type { LayerGeometry } from '../../src/engine/plan/schema';

const LAYERS: LayerGeometry[] = [
  { heads: 2, headSize: 4, vHeadSize: 4, ffn: 8 },
  { heads: 2, headSize: 4, vHeadSize: 4, ffn: 8 },
];
const D = 8, S = 4;
/** Two channel groups: a conv producing group 0, a conv reading group 0 and producing group 1 (a product of both widths), a conv reading group 1. */
const TERMS: MacTerm[] = [
  { node: 'a', perUnit: 50, factors: [3, { group: 0 }] },
  { node: 'b', perUnit: 10, factors: [{ group: 0 }, { group: 1 }] },
  { node: 'c', perUnit: 50, factors: [{ group: 1 }, 2] },
];
const WIDTHS = [6, 6];
const rising = (n: number, base: number): number[] => Array.from({ length: n }, (_, j) => base * (j + 1));
const count = (m: boolean[][]): number[] => m.map((r) => r.filter(Boolean).length);

function search(channel: number, budget: number, neurons = 1): ReturnType<typeof searchHybrid> {
  const heads = LAYERS.map((g) => rising(g.heads, 100));
  const ns = LAYERS.map((g) => rising(g.ffn, neurons));
  return searchHybrid(LAYERS, D, S, heads, ns, { widths: WIDTHS, terms: TERMS, scores: WIDTHS.map((w) => rising(w, channel)) }, budget);
}

describe('hybrid mask search (heads, neurons and channels in one ranking)', () => {
  it('stays within the budget, counts channel MACs exactly as products of kept widths, and keeps a channel of every group', () => {
    for (const budget of [0.3, 0.5, 0.7, 0.9]) {
      const r = search(1, budget);
      const hc = count(r.heads.slice(0, 2)), nc = count(r.neurons.slice(0, 2)), cc = count(r.neurons.slice(2));
      const costs = macCosts(LAYERS, D, S);
      const expected = hc.reduce((a, h, l) => a + costs.head(l, h) + costs.neuron(l, nc[l]!), 0) + termsMacs(TERMS, cc);
      assert.ok(Math.abs(r.kept - expected) < 1e-9, `budget ${budget}: kept ${r.kept} vs recomputed ${expected}`);
      assert.ok(r.kept <= budget * r.baseline * (1 + 1e-9), `budget ${budget}: ${r.kept} > ${budget * r.baseline}`);
      assert.ok(cc.every((c) => c >= 1), `every group keeps a channel: ${cc}`);
      assert.ok(hc.some((h) => h > 0));
      assert.equal(r.heads.length, 4);
      assert.deepEqual(r.heads.slice(2), [[], []]);
      assert.ok(Math.abs(r.perLayerMacs.reduce((a, b) => a + b, 0) - r.kept) < 1e-9);
    }
  });

  it('trades channels against neurons by score: important channels are kept first, unimportant ones cut to one', () => {
    const keepChannels = search(1e6, 0.5);
    const cutChannels = search(1e-6, 0.5);
    assert.deepEqual(count(keepChannels.neurons.slice(2)), WIDTHS, 'channels that matter most are all kept');
    assert.deepEqual(count(cutChannels.neurons.slice(2)), [1, 1], 'channels that matter least keep only the one every group needs');
    const n = (r: ReturnType<typeof searchHybrid>): number => count(r.neurons.slice(0, 2)).reduce((a, b) => a + b, 0);
    assert.ok(n(cutChannels) > n(keepChannels), 'the MACs the channels free go to neurons');
  });

  it('refuses a budget that cannot keep one head and one channel per group', () => {
    assert.throws(() => search(1, 0.01), /keeps less than one attention head and one channel per group/);
    assert.throws(() => search(1, 1.5), /outside \(0, 1\]/);
  });
});
