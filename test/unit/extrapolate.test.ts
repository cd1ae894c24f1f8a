import * as assert from 'node:assert/strict';
import { extrapolateLosses, type LayerEvidence } from '../../src/engine/optin/extrapolate';
import { mulberry32 } from '../../src/engine/optin/random';

/** A layer of `n` neurons: whole-batch energies E, subset energies e, per-neuron sensitivities s. */
function layer(n: number, seed: number): { E: number[]; e: number[]; s: number[] } {
  const r = mulberry32(seed);
  const E = Array.from({ length: n }, () => 0.1 + r());
  return { E, e: E.map((x) => x * (0.2 + 2 * r())), s: Array.from({ length: n }, () => Math.exp(2 * r())) };
}

const refsOf = (idx: number[], md: number[], kl: number[]): Map<number, { md: number; kl: number }> => new Map(idx.map((j) => [j, { md: md[j]!, kl: kl[j]! }]));

describe('extrapolating subset neuron losses to the whole batch', () => {
  it('recovers energy x sensitivity exactly when the subset measures the sensitivities without noise (slope 1), a cut-short trajectory included', () => {
    const layers = [layer(40, 1), layer(40, 2)];
    const truth = layers.map((x) => ({ md: x.E.map((E, j) => E * x.s[j]!), kl: x.E.map((E, j) => 0.01 * E * x.s[j]!) }));
    const evidence: LayerEvidence[] = layers.map((x, l) => ({
      // layer 0's trajectory was cut short: md on another scale, no output term.
      sub: l === 0 ? { md: x.e.map((e, j) => 0.3 * e * x.s[j]!), kl: x.e.map(() => 0) } : { md: x.e.map((e, j) => e * x.s[j]!), kl: x.e.map((e, j) => 0.01 * e * x.s[j]!) },
      energyAll: x.E, energySub: x.e,
      refs: refsOf([3, 11, 20, 33], truth[l]!.md, truth[l]!.kl),
    }));
    const { raw, fit } = extrapolateLosses(evidence);
    // Each estimate is exp of a sum of a few logs of values near 1: float64 rounding, a few ulps per operation.
    assert.ok(Math.abs(fit.md - 1) < 1e-12 && Math.abs(fit.kl - 1) < 1e-12, JSON.stringify(fit));
    raw.forEach((r, l) => r.md.forEach((x, j) => {
      assert.ok(Math.abs(x - truth[l]!.md[j]!) <= 1e-12 * truth[l]!.md[j]!, `md ${l}/${j}`);
      assert.ok(Math.abs(r.kl[j]! - truth[l]!.kl[j]!) <= 1e-12 * truth[l]!.kl[j]!, `kl ${l}/${j}`);
    }));
  });

  it('falls back to the whole-batch energy (slope 0) when the subset sensitivities carry nothing the references confirm', () => {
    const x = layer(30, 7);
    const truth = x.E.map((E) => 2 * E);
    const { raw, fit } = extrapolateLosses([{ sub: { md: x.e.map((e, j) => e * x.s[j]!), kl: x.e.map(() => 0) }, energyAll: x.E, energySub: x.e, refs: refsOf([0, 9, 18, 27], truth, truth) }]);
    assert.equal(fit.md, 0);
    raw[0]!.md.forEach((v, j) => assert.ok(Math.abs(v - truth[j]!) <= 1e-12 * truth[j]!, `md ${j}`));
  });

  it('a neuron silent on the whole batch loses nothing; one silent on the subset only gets its layer mean sensitivity', () => {
    const x = layer(12, 3);
    x.E[5] = 0; x.e[5] = 0;
    x.e[6] = 0;
    const truth = x.E.map((E, j) => E * x.s[j]!);
    const sub = { md: x.e.map((e, j) => e * x.s[j]!), kl: x.e.map(() => 0) };
    const { raw } = extrapolateLosses([{ sub, energyAll: x.E, energySub: x.e, refs: refsOf([0, 4, 8, 11], truth, truth) }]);
    assert.equal(raw[0]!.md[5], 0);
    assert.ok(Number.isFinite(raw[0]!.md[6]!) && raw[0]!.md[6]! > 0);
    assert.deepEqual([0, 4, 8, 11].map((j) => raw[0]!.md[j]), [0, 4, 8, 11].map((j) => truth[j]));
  });
});
