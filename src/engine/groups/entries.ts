import type { Cut } from './types';

/**
 * The entries of a cut's axis that kept units `keep` (sorted) own, in order: in every part, each
 * kept unit's `block` consecutive entries (a head's columns `offset + p * width * block + u * block + j`;
 * `offset`: where this segment starts, as the value columns of a packed projection).
 */
export function keptEntries(c: Pick<Cut, 'block' | 'parts' | 'offset'>, width: number, keep: number[]): number[] {
  const block = c.block ?? 1, parts = c.parts ?? 1, offset = c.offset ?? 0;
  const out: number[] = [];
  for (let p = 0; p < parts; p++) for (const u of keep) for (let j = 0; j < block; j++) out.push(offset + (p * width + u) * block + j);
  return out;
}
