import type { FrontierPoint, FrontierView, WebviewMessage } from '../src/shared/protocol';
import { formatBudget, pct } from '../src/shared/format';
import { button, el, svg } from './components';

const W = 300, H = 190, M = { l: 46, r: 12, t: 10, b: 34 };

function ticks(lo: number, hi: number, n = 4): number[] {
  return Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
}

interface Axis { label: string; of: (p: { speedup: number; macsRatio: number }) => number; lo: number; hi: number; fmt: (x: number) => string }

/**
 * The speed/accuracy frontier: accuracy (or agreement) against measured speedup, and against MACs
 * kept, with the dense model and every budget as points. Points are buttons (click, Enter or
 * Space selects that budget's plan) with their numbers as accessible labels; the current plan's
 * point is ringed.
 */
export class FrontierSection {
  readonly root: HTMLElement;
  private readonly plots: HTMLElement;
  private readonly caption: HTMLElement;
  private readonly files: HTMLElement;
  private key = '';

  constructor(private readonly post: (m: WebviewMessage) => void) {
    this.plots = el('div', { class: 'row frontier-plots' });
    this.caption = el('p', { class: 'meta', id: 'frontier-caption' });
    this.files = el('div', { class: 'row', id: 'frontier-files' });
    this.root = el('section', { id: 'frontier' }, el('h2', {}, 'Speed / accuracy frontier'), this.caption, this.files, this.plots);
  }

  /** Draw `f`, ringing the point of the plan at `budget`. */
  update(f: FrontierView, budget: number | undefined): void {
    const key = `${JSON.stringify(f)}|${budget}`;
    if (key === this.key) return;
    this.key = key;
    const focused = (document.activeElement as Element | null)?.getAttribute('data-point');
    const files = f.files.count
      ? `The ${f.files.count} sweep models (${(f.files.bytes / 1048576).toFixed(1)} MB) are in ${f.files.folder}.`
      : `The sweep models were deleted from ${f.files.folder}; the plans remain.`;
    this.caption.textContent = `${f.metric === 'accuracy' ? 'Accuracy' : f.metric === 'mIoU' ? 'Mean IoU' : 'Agreement with the original'} on ${f.examples} ${f.heldOut ? 'held-out ' : ''}examples of ${f.source}; medians of ${f.bench.runs} interleaved runs at ${f.bench.shape.replace(' x ', ' × ')} on ${f.bench.provider} (${f.bench.threads} threads). Click a point to select its plan; Apply writes it. ${files}`;
    this.files.replaceChildren(...(f.files.count ? [button('delete-sweep', 'Delete sweep models', () => this.post({ type: 'deleteSweep' }), 'secondary')] : []));
    const values = [f.dense.value, ...f.points.map((p) => p.value)];
    const vlo = Math.max(0, Math.floor((Math.min(...values) - 0.02) * 50) / 50), vhi = Math.min(1, Math.ceil((Math.max(...values) + 0.01) * 50) / 50);
    const smax = Math.max(1.5, Math.ceil(Math.max(...f.points.map((p) => p.speedup)) * 2) / 2);
    const axes: Axis[] = [
      { label: 'measured speedup (×)', of: (p) => p.speedup, lo: 1, hi: smax, fmt: (x) => `${x.toFixed(1)}×` },
      { label: 'MACs kept', of: (p) => p.macsRatio, lo: 1, hi: Math.max(0, Math.floor(Math.min(...f.points.map((p) => p.macsRatio)) * 10) / 10 - 0.05), fmt: (x) => `${Math.round(x * 100)}%` },
    ];
    this.plots.replaceChildren(...axes.map((a, i) => this.plot(f, a, vlo, vhi, budget, i)));
    if (focused) (this.plots.querySelector(`[data-point="${focused}"]`) as HTMLElement | SVGElement | null)?.focus();
  }

  private plot(f: FrontierView, a: Axis, vlo: number, vhi: number, budget: number | undefined, index: number): HTMLElement {
    const x = (v: number): number => M.l + ((v - a.lo) / (a.hi - a.lo)) * (W - M.l - M.r);
    const y = (v: number): number => H - M.b - ((v - vlo) / (vhi - vlo || 1)) * (H - M.t - M.b);
    const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'group', 'aria-label': `${f.metric} against ${a.label}`, class: 'frontier-plot', id: `frontier-plot-${index}` });
    for (const t of ticks(a.lo, a.hi)) g.append(svg('line', { x1: x(t), x2: x(t), y1: M.t, y2: H - M.b, class: 'grid' }), svg('text', { x: x(t), y: H - M.b + 14, 'text-anchor': 'middle', class: 'tick' }, a.fmt(t)));
    for (const t of ticks(vlo, vhi)) g.append(svg('line', { x1: M.l, x2: W - M.r, y1: y(t), y2: y(t), class: 'grid' }), svg('text', { x: M.l - 4, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, `${(100 * t).toFixed(0)}%`));
    g.append(svg('text', { x: (M.l + W - M.r) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis' }, a.label));
    const pts = [{ speedup: 1, macsRatio: 1, value: f.dense.value }, ...f.points].map((p) => ({ x: x(a.of(p)), y: y(p.value) }));
    g.append(svg('polyline', { points: pts.map((p) => `${p.x},${p.y}`).join(' '), class: 'frontier-line' }));
    g.append(svg('circle', { cx: pts[0]!.x, cy: pts[0]!.y, r: 5, class: 'dense-point' }, svg('title', {}, `dense model: ${f.metric} ${pct(f.dense.value)}, ${f.dense.medianMs.toFixed(2)} ms`)));
    const nodes = f.points.map((p, i) => this.point(f, p, pts[i + 1]!, budget, index));
    g.append(...nodes.filter((n) => !n.classList.contains('selected')), ...nodes.filter((n) => n.classList.contains('selected')));
    return el('div', { class: 'frontier-box' }, g);
  }

  private point(f: FrontierView, p: FrontierPoint, at: { x: number; y: number }, budget: number | undefined, plot: number): SVGElement {
    const label = `${formatBudget(p.budget)}: ${f.metric} ${pct(p.value)}, ${p.speedup.toFixed(2)}× faster (${p.medianMs.toFixed(2)} ms, p10-p90 ${p.p10Ms.toFixed(2)}-${p.p90Ms.toFixed(2)}), ${pct(p.macsRatio, 1)} of MACs`;
    const selected = budget !== undefined && Math.abs(budget - p.budget) < 1e-9;
    const node = svg('g', { class: `frontier-point${selected ? ' selected' : ''}`, tabindex: 0, role: 'button', 'aria-label': label, 'aria-pressed': String(selected), 'data-point': `${plot}-${p.budget}`, 'data-budget': p.budget },
      svg('title', {}, label),
      svg('circle', { cx: at.x, cy: at.y, r: selected ? 7 : 5 }),
      svg('text', { x: at.x + 7, y: at.y - 7, class: 'point-label' }, `${Math.round(p.budget * 100)}%`));
    const choose = (): void => this.post({ type: 'setBudget', budget: p.budget });
    node.addEventListener('click', choose);
    node.addEventListener('keydown', (e) => {
      const k = (e as KeyboardEvent).key;
      if (k === 'Enter' || k === ' ') { e.preventDefault(); choose(); }
    });
    return node;
  }
}
