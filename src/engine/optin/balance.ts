import type { OptinConstants, RawLosses } from './types';

/**
 * Combine MD and KL into scores (docs/method.md §2): KL is rescaled by a power of ten so that
 * MD/KL is about lambda when MD > KL, otherwise by the mean of the scales seen so far (1 if none);
 * heads and last-layer elements are decayed. Elements are visited layer by layer, one scale
 * history for heads and one for neurons.
 */
export function balance(raw: RawLosses[], kind: 'head' | 'neuron', c: OptinConstants, layers = raw.length): number[][] {
  const scales: number[] = [];
  const L = layers;
  return raw.map((r, l) =>
    r.md.map((md, i) => {
      const kl = r.kl[i]!;
      let scale: number;
      if (md > kl && kl > 0) {
        scale = 10 ** Math.trunc(Math.log10(md) - Math.log10(kl) - Math.log10(c.lambda));
        scales.push(scale);
      } else {
        scale = scales.length ? scales.reduce((a, b) => a + b, 0) / scales.length : 1;
      }
      let s = md + scale * kl;
      if (kind === 'head') s *= c.headDecay;
      if (l === L - 1) s *= c.lastLayerDecay;
      return s;
    }),
  );
}
