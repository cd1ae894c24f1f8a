import type { ModelSummary, PlanView, WebviewMessage } from '../src/shared/protocol';
import { formatBudget } from '../src/shared/format';
import { button, el, fmt, grid } from './components';

const PRESETS = [70, 60, 50, 40];
const LATENCY = [70, 50, 35];

/**
 * The plan controls: budget slider and presets, MACs, kept heads/neurons per layer, warnings and
 * the Apply/Export buttons. Built once and updated in place so the slider can be dragged and keeps
 * keyboard focus while plans come back from the host.
 */
export class PlanSection {
  readonly root: HTMLElement;
  private readonly slider: HTMLInputElement;
  private readonly label: HTMLElement;
  private readonly macs: HTMLElement;
  private readonly latency: HTMLElement;
  private readonly warnings: HTMLElement;
  private readonly table: HTMLElement;
  private readonly actions: HTMLElement[];

  constructor(private readonly summary: ModelSummary, post: (m: WebviewMessage) => void) {
    this.slider = el('input', { type: 'range', id: 'budget', min: '5', max: '100', step: '1', 'aria-label': 'Percent of MACs to keep' }) as HTMLInputElement;
    this.label = el('span', { id: 'budget-label', 'aria-live': 'polite' });
    this.slider.addEventListener('input', () => {
      const b = Number(this.slider.value) / 100;
      this.label.textContent = formatBudget(b);
      post({ type: 'setBudget', budget: b });
    });
    const presets = PRESETS.map((p) => button(`preset-${p}`, `keep ${p}%`, () => {
      this.slider.value = String(p);
      this.label.textContent = formatBudget(p / 100);
      post({ type: 'setBudget', budget: p / 100 });
    }, 'secondary'));
    const latency = LATENCY.map((p) => button(`latency-${p}`, p === 50 ? '2× faster' : `${p}% of the time`, () => post({ type: 'setLatency', target: p / 100 }), 'secondary'));
    this.latency = el('p', { id: 'plan-latency', 'aria-live': 'polite' });
    this.macs = el('p', { id: 'plan-macs' });
    this.warnings = el('div', { id: 'plan-warnings' });
    this.table = el('div', { id: 'plan-table' });
    this.actions = [
      button('apply', 'Apply', () => post({ type: 'apply' })),
      button('export-plan', 'Export plan (JSON)', () => post({ type: 'exportPlan' }), 'secondary'),
      button('export-scores', 'Export scores (CSV)', () => post({ type: 'exportScores' }), 'secondary'),
    ];
    this.root = el('section', { id: 'plan' },
      el('h2', {}, 'Prune plan'),
      el('div', { class: 'row' }, this.slider, this.label),
      el('div', { class: 'row', role: 'group', 'aria-label': 'Budget presets' }, el('span', { class: 'meta' }, 'Presets:'), ...presets),
      ...(summary.units === 'channels' ? [] : [el('div', { class: 'row', role: 'group', 'aria-label': 'Latency targets (measured on this machine)' }, el('span', { class: 'meta' }, 'Latency targets:'), ...latency)]),
      this.latency, this.macs, this.warnings, this.table,
      el('div', { class: 'row' }, ...this.actions));
  }

  /** Show plan `p`; `busy` disables Apply while a job runs. */
  update(p: PlanView, busy: boolean): void {
    const pct = Math.round(p.budget * 100);
    if (document.activeElement !== this.slider && this.slider.value !== String(pct)) this.slider.value = String(pct);
    if (document.activeElement !== this.slider) this.label.textContent = formatBudget(p.budget);
    this.macs.textContent = `MACs ${fmt(p.macs.baseline)} → ${fmt(p.macs.kept)} (${((100 * p.macs.kept) / p.macs.baseline).toFixed(1)}% kept)${p.parameters ? ` · prunable parameters ${fmt(p.parameters.before)} → ${fmt(p.parameters.after)}` : ''}`;
    const l = p.latency;
    this.latency.hidden = !l;
    this.latency.textContent = l ? `Latency target ${Math.round(l.target * 100)}% of the dense model: predicted ${l.predictedMs.toFixed(2)} of ${l.denseMs.toFixed(2)} ms (${((100 * l.predictedMs) / l.denseMs).toFixed(1)}%) at ${l.shape.replace(' x ', ' × ')} on ${l.provider}; Apply measures it.` : '';
    this.warnings.replaceChildren(...p.warnings.map((w) => el('p', { class: 'warning' }, `⚠ ${w}`)));
    const s = this.summary;
    this.table.replaceChildren(s.units === 'channels'
      ? grid(['Block', 'Channels kept'], s.layers.map((l, i) => [l.name ?? String(i), `${p.keepNeurons[i]!.length} / ${l.ffn}`]), 'plan-layers')
      : grid(['Layer', 'Heads kept', 'Neurons kept'], s.layers.map((l, i) => [l.name ?? String(i), l.heads ? `${p.keepHeads[i]!.length} / ${l.heads}${l.group ? ' KV groups' : ''}` : '-', `${p.keepNeurons[i]!.length} / ${l.ffn}`]), 'plan-layers'));
    for (const b of this.actions.slice(0, 1)) b.toggleAttribute('disabled', busy);
  }
}
