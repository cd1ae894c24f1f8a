/**
 * Heatmap colours: viridis (perceptually uniform, readable by most colour-blind viewers), oriented
 * so the most important end has the most contrast with the theme's background (yellow on dark
 * themes, deep purple on light ones), on a log scale fixed for a whole scoring run.
 */
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'].map(hexRgb);

type Rgb = [number, number, number];

function hexRgb(h: string): Rgb {
  const n = parseInt(h.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Parse `#rgb`, `#rrggbb[aa]` or `rgb()/rgba()` into 0..255 channels (undefined when unknown). */
export function parseColor(c: string): Rgb | undefined {
  const s = c.trim();
  if (/^#[0-9a-f]{3}$/i.test(s)) return [1, 2, 3].map((i) => parseInt(s[i]! + s[i]!, 16)) as Rgb;
  if (/^#[0-9a-f]{6}([0-9a-f]{2})?$/i.test(s)) return hexRgb(s.slice(0, 7));
  const m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i.exec(s);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** WCAG relative luminance of a colour. */
export function luminance([r, g, b]: Rgb): number {
  const lin = (v: number): number => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** WCAG contrast ratio of two colours (1..21). */
export function contrast(a: Rgb, b: Rgb): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p) as [number, number];
  return (x + 0.05) / (y + 0.05);
}

/** Viridis at t in [0, 1]. */
export function viridis(t: number): Rgb {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  return VIRIDIS[i]!.map((v, k) => Math.round(v + f * (VIRIDIS[i + 1]![k]! - v))) as Rgb;
}

/** Decades below / above the anchor the scale covers. */
export const SCALE = { below: 3, above: 1.5 };

/** Position 0..1 of a score on the fixed log scale around `anchor` (a typical score). */
export function scalePosition(score: number, anchor: number): number {
  if (!(score > 0) || !(anchor > 0)) return 0;
  return Math.min(1, Math.max(0, (Math.log10(score / anchor) + SCALE.below) / (SCALE.below + SCALE.above)));
}

/** Colour of scale position t on a background: importance runs towards the end that stands out most. */
export function importanceColor(t: number, background: Rgb): string {
  const dark = luminance(background) < 0.25;
  const [r, g, b] = viridis(dark ? t : 1 - t);
  return `rgb(${r}, ${g}, ${b})`;
}
