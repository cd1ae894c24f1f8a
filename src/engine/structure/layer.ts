import type { EncoderLayer, Linear } from './types';

/** Prunable attention units of a layer (heads, or key/value groups); 0 for a feed-forward-only layer. */
export function headCount(l: EncoderLayer): number {
  return l.attention?.heads ?? 0;
}

/** The projections that write a layer's sublayers back to the residual stream (attention output, FFN second matrix). */
export function outputProjections(l: EncoderLayer): Linear[] {
  return [...(l.attention ? [l.attention.output] : []), ...(l.ffn ? [l.ffn.down] : [])];
}
