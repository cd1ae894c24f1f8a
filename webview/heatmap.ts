import { el } from './components';
import { SCALE, importanceColor, parseColor, scalePosition } from './colors';

/** What one update of a heatmap shows. */
export interface HeatmapValues {
  /** One row per layer; undefined until the layer is scored. */
  values: Array<number[] | undefined>;
  /** The fixed scale's anchor (a typical score); undefined before any score arrived. */
  anchor?: number;
  /** Exact tooltip (and accessible label) of a cell. */
  tooltip: (layer: number, col: number) => string;
  /** True when the cell is pruned by the current plan. */
  pruned: (layer: number, col: number) => boolean;
}

/** The editor background the webview is drawn on (from the theme's CSS variables). */
export function themeBackground(): [number, number, number] {
  const v = getComputedStyle(document.body).getPropertyValue('--vscode-editor-background');
  return parseColor(v) ?? parseColor(getComputedStyle(document.body).backgroundColor) ?? [30, 30, 30];
}

/**
 * A layers x columns heatmap whose cells are created once and repainted in place, so updates never
 * move focus or scroll; unscored cells are outlined and empty, pruned cells hatched.
 */
export class Heatmap {
  readonly root: HTMLElement;
  private readonly cells: HTMLElement[][];
  private readonly ramp: HTMLElement;

  constructor(id: string, title: string, columns: number[]) {
    this.cells = columns.map((n, l) => Array.from({ length: n }, (_, c) => el('div', { class: 'cell unscored', 'data-layer': String(l), 'data-col': String(c), role: 'gridcell' })));
    const rows = this.cells.map((cells, l) => el('div', { class: 'hm-row', role: 'row' }, el('span', { class: 'hm-label' }, `L${l}`), ...cells));
    this.ramp = el('span', { class: 'ramp' });
    const legend = el('div', { class: 'legend' },
      el('span', {}, `less important (≤ 1/${10 ** SCALE.below} of layer 0's median)`), this.ramp, el('span', {}, `more important (≥ ${Math.round(10 ** SCALE.above)}×)`),
      el('span', { class: 'swatch unscored' }), el('span', {}, 'not scored yet'), el('span', { class: 'swatch pruned' }), el('span', {}, 'pruned'));
    this.root = el('section', { class: 'heatmap', id }, el('h2', {}, title), el('div', { class: 'hm-grid', role: 'grid', 'aria-label': title }, ...rows), legend);
  }

  /** Repaint every cell from `v`. */
  update(v: HeatmapValues): void {
    const bg = themeBackground();
    this.ramp.style.background = `linear-gradient(90deg, ${[0, 0.25, 0.5, 0.75, 1].map((t) => importanceColor(t, bg)).join(', ')})`;
    this.cells.forEach((row, l) => row.forEach((cell, c) => {
      const score = v.values[l]?.[c];
      const scored = score !== undefined && v.anchor !== undefined;
      cell.classList.toggle('unscored', !scored);
      cell.style.backgroundColor = scored ? importanceColor(scalePosition(score, v.anchor!), bg) : '';
      if (scored) cell.dataset.score = String(score);
      else delete cell.dataset.score;
      cell.classList.toggle('pruned', scored && v.pruned(l, c));
      const tip = v.tooltip(l, c);
      cell.title = tip;
      cell.setAttribute('aria-label', tip);
    }));
  }

  /** The cell of a layer and column. */
  cell(layer: number, col: number): HTMLElement | undefined {
    return this.cells[layer]?.[col];
  }
}
