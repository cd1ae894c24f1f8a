import { el, svg } from './components';
import { SCALE, importanceColor, parseColor, scalePosition } from './colors';

const CURVE_W = 90, CURVE_H = 16;

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
  /** Kept and total elements of a layer under the plan (drawn as a bar beside the row). */
  share?: (layer: number) => { kept: number; total: number } | undefined;
  /** A layer's scores sorted from most to least important and how many the plan keeps (drawn as a curve with the cut). */
  curve?: (layer: number) => { sorted: number[]; kept: number } | undefined;
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
  private readonly shares: HTMLElement[];
  private readonly curves: HTMLElement[];
  private active: [number, number] = [0, 0];
  private readonly rowNames?: string[];

  constructor(id: string, title: string, columns: number[], withCurves = false, labels?: string[], private readonly unit = 'neurons') {
    this.rowNames = labels;
    this.cells = columns.map((n, l) => Array.from({ length: n }, (_, c) => el('div', { class: 'cell unscored', 'data-layer': String(l), 'data-col': String(c), role: 'gridcell', tabindex: l === 0 && c === 0 ? '0' : '-1' })));
    this.shares = columns.map((_, l) => el('span', { class: 'share-wrap', 'data-layer': String(l) }, el('span', { class: 'share' }, el('span', { class: 'share-fill' })), el('span', { class: 'share-text' })));
    this.curves = columns.map((_, l) => el('span', { class: 'curve', 'data-layer': String(l) }));
    const rows = this.cells.map((cells, l) => el('div', { class: 'hm-row', role: 'row' }, el('span', { class: labels ? 'hm-label named' : 'hm-label', ...(labels ? { title: labels[l]! } : {}) }, labels ? labels[l]! : `L${l}`), this.shares[l]!, ...(withCurves ? [this.curves[l]!] : []), ...cells));
    this.ramp = el('span', { class: 'ramp' });
    const legend = el('div', { class: 'legend' },
      el('span', {}, `less important (≤ 1/${10 ** SCALE.below} of layer 0's median)`), this.ramp, el('span', {}, `more important (≥ ${Math.round(10 ** SCALE.above)}×)`),
      el('span', { class: 'swatch unscored' }), el('span', {}, 'not scored yet'), el('span', { class: 'swatch pruned' }), el('span', {}, 'pruned'));
    const g = el('div', { class: 'hm-grid', role: 'grid', 'aria-label': `${title}; arrow keys move between cells` }, ...rows);
    g.addEventListener('keydown', (e) => this.onKey(e));
    g.addEventListener('focusin', (e) => {
      const t = e.target as HTMLElement;
      if (t.classList.contains('cell')) this.setActive(Number(t.dataset.layer), Number(t.dataset.col), false);
    });
    this.root = el('section', { class: 'heatmap', id }, el('h2', {}, title), g, legend);
  }

  private setActive(l: number, c: number, focus: boolean): void {
    const row = this.cells[l];
    if (!row?.length) return;
    const col = Math.max(0, Math.min(row.length - 1, c));
    this.cell(...this.active)?.setAttribute('tabindex', '-1');
    this.active = [l, col];
    const cell = row[col]!;
    cell.setAttribute('tabindex', '0');
    if (focus) cell.focus();
  }

  private onKey(e: KeyboardEvent): void {
    const [l, c] = this.active;
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [l, c - 1], ArrowRight: [l, c + 1], ArrowUp: [Math.max(0, l - 1), c], ArrowDown: [Math.min(this.cells.length - 1, l + 1), c],
      Home: [l, 0], End: [l, Number.MAX_SAFE_INTEGER],
    };
    const to = moves[e.key];
    if (!to) return;
    e.preventDefault();
    this.setActive(to[0], to[1], true);
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
    this.shares.forEach((bar, l) => {
      const sh = v.share?.(l);
      bar.classList.toggle('empty', !sh);
      if (!sh) return;
      const f = sh.total ? sh.kept / sh.total : 0;
      (bar.querySelector('.share-fill') as HTMLElement).style.width = `${(100 * f).toFixed(1)}%`;
      (bar.querySelector('.share-text') as HTMLElement).textContent = `${sh.kept}/${sh.total}`;
      bar.title = `${this.rowNames?.[l] ?? `layer ${l}`}: keeps ${sh.kept} of ${sh.total} (${Math.round(100 * f)}%)`;
      bar.setAttribute('aria-label', bar.title);
    });
    this.curves.forEach((box, l) => {
      const cv = v.curve?.(l);
      box.replaceChildren(...(cv && cv.sorted.length ? [curveSvg(cv.sorted, cv.kept, `${this.rowNames?.[l] ?? `layer ${l}`}: ${cv.sorted.length} ${this.unit}`)] : []));
    });
  }

  /** The cell of a layer and column. */
  cell(layer: number, col: number): HTMLElement | undefined {
    return this.cells[layer]?.[col];
  }
}

/** A layer's sorted importances on a log scale, with the plan's cut as a vertical line. */
function curveSvg(sorted: number[], kept: number, what: string): SVGElement {
  const pos = sorted.map((x) => Math.log10(Math.max(x, 1e-12)));
  const hi = Math.max(...pos), lo = Math.min(...pos);
  const n = sorted.length;
  const x = (i: number): number => (n > 1 ? (i / (n - 1)) * (CURVE_W - 2) + 1 : CURVE_W / 2);
  const y = (v: number): number => (hi > lo ? 1 + (1 - (v - lo) / (hi - lo)) * (CURVE_H - 2) : CURVE_H / 2);
  const step = Math.max(1, Math.floor(n / CURVE_W));
  const pts: string[] = [];
  for (let i = 0; i < n; i += step) pts.push(`${x(i).toFixed(1)},${y(pos[i]!).toFixed(1)}`);
  const label = `${what} sorted by importance, ${kept} kept (cut after rank ${kept})`;
  const cut = x(Math.max(0, Math.min(n - 1, kept - 0.5)));
  return svg('svg', { width: CURVE_W, height: CURVE_H, viewBox: `0 0 ${CURVE_W} ${CURVE_H}`, role: 'img', 'aria-label': label, class: 'curve-svg' },
    svg('title', {}, label),
    svg('polyline', { points: pts.join(' '), class: 'curve-line' }),
    ...(kept < n ? [svg('line', { x1: cut, x2: cut, y1: 0, y2: CURVE_H, class: 'curve-cut' })] : []));
}
