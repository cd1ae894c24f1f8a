/** Thin component layer over @vscode/webview-ui-toolkit so the toolkit can be swapped out. */

/** Create an element with attributes and text/children. */
export function el(tag: string, attrs: Record<string, string>, ...children: Array<string | Node>): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** A data grid (vscode-data-grid) with a header row. */
export function grid(header: string[], rows: string[][], id: string): HTMLElement {
  const g = el('vscode-data-grid', { id, 'aria-label': id, 'generate-header': 'none' });
  const mk = (cells: string[], head: boolean): HTMLElement =>
    el('vscode-data-grid-row', head ? { 'row-type': 'header' } : {},
      ...cells.map((c, i) => el('vscode-data-grid-cell', { 'grid-column': String(i + 1), ...(head ? { 'cell-type': 'columnheader' } : {}) }, c)));
  g.append(mk(header, true), ...rows.map((r) => mk(r, false)));
  return g;
}

/** A toolkit button. */
export function button(id: string, label: string, onClick: () => void, appearance: 'primary' | 'secondary' = 'primary'): HTMLElement {
  const b = el('vscode-button', { id, appearance }, label);
  b.addEventListener('click', onClick);
  return b;
}

/** A toolkit progress ring. */
export function spinner(): HTMLElement {
  return el('vscode-progress-ring', {});
}

/** 1234567 -> "1.23 M". */
export function fmt(n: number): string {
  for (const [v, u] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']] as const) if (Math.abs(n) >= v) return `${(n / v).toFixed(2)} ${u}`;
  return String(Math.round(n * 100) / 100);
}

const NS = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes. */
export function svg(tag: string, attrs: Record<string, string | number>, ...children: Array<Element | string>): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}
