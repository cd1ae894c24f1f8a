import { el } from './components';

/** Colour intensity 0..1 of each score: log-scaled within its kind so small differences stay visible. */
export function intensities(rows: Array<number[] | undefined>): Array<number[] | undefined> {
  const all = rows.flatMap((r) => r ?? []).filter((x) => x > 0);
  if (!all.length) return rows.map((r) => r?.map(() => 0));
  const lo = Math.log(Math.min(...all)), hi = Math.log(Math.max(...all));
  return rows.map((r) => r?.map((x) => (x > 0 && hi > lo ? (Math.log(x) - lo) / (hi - lo) : x > 0 ? 1 : 0)));
}

/** One heatmap cell's look: theme-coloured by intensity; pruned cells hatched. */
function paint(cell: HTMLElement, t: number | undefined, pruned: boolean): void {
  if (t === undefined) {
    cell.style.backgroundColor = 'var(--vscode-editorWidget-background)';
  } else {
    cell.style.backgroundColor = `color-mix(in srgb, var(--vscode-charts-orange) ${Math.round(8 + 92 * t)}%, var(--vscode-editor-background))`;
  }
  cell.classList.toggle('pruned', pruned);
}

/** Inputs of a heatmap: one row per layer (undefined until the layer is scored). */
export interface HeatmapData {
  id: string;
  title: string;
  /** Column count per layer (heads, or neuron bins). */
  columns: number[];
  values: Array<number[] | undefined>;
  /** Exact tooltip text of a cell. */
  tooltip: (layer: number, col: number) => string;
  /** True when the cell is pruned by the current plan. */
  pruned: (layer: number, col: number) => boolean;
}

/** A layers x columns heatmap with a colour legend. */
export function heatmap(d: HeatmapData): HTMLElement {
  const t = intensities(d.values);
  const rows = d.columns.map((n, l) => {
    const cells = Array.from({ length: n }, (_, c) => {
      const cell = el('div', { class: 'cell', 'data-layer': String(l), 'data-col': String(c), title: d.tooltip(l, c), role: 'gridcell' });
      paint(cell, t[l]?.[c], d.pruned(l, c));
      return cell;
    });
    return el('div', { class: 'hm-row', role: 'row' }, el('span', { class: 'hm-label' }, `L${l}`), ...cells);
  });
  const legend = el('div', { class: 'legend' }, el('span', {}, 'less important'), el('span', { class: 'ramp' }), el('span', {}, 'more important'), el('span', { class: 'swatch pruned' }), el('span', {}, 'pruned'));
  return el('section', { class: 'heatmap', id: d.id }, el('h2', {}, d.title), el('div', { class: 'hm-grid', role: 'grid', 'aria-label': d.title }, ...rows), legend);
}
