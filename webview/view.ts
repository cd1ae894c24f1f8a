import type { AppliedView, DataInfo, ModelSummary, WebviewMessage } from '../src/shared/protocol';
import { FrontierSection } from './frontier';
import { formatBudget, formatEta, pct } from '../src/shared/format';
import { importanceRanks } from '../src/shared/ranks';
import { button, el, fmt, grid, spinner } from './components';
import { Heatmap } from './heatmap';
import { PlanSection } from './planSection';
import type { State } from './state';

const BINS = 64;
const bins = (width: number): number => Math.min(width, BINS);
function binRange(width: number, b: number): [number, number] {
  const n = bins(width);
  return [Math.floor((b * width) / n), Math.floor(((b + 1) * width) / n)];
}

function dataLine(d: DataInfo): string {
  return `Scores from ${d.examples} examples of ${d.source} (${d.mode} mode on ${d.provider}, ${d.seconds.toFixed(0)} s).`;
}

function appliedText(a: AppliedView): HTMLElement[] {
  const lines = [
    `Wrote ${a.output} (${formatBudget(a.budget)}; ${fmt(a.fileBytes.before)}B → ${fmt(a.fileBytes.after)}B; ${a.tuned ? 'repaired: kept weights refit to the original outputs' : 'no repair (the optin.maskTuning and optin.channelRepair settings)'}).`,
    `Verified: outputs match the masked original within ${a.maxAbsDiff.toExponential(2)} (tolerance ${a.tolerance.toExponential(2)}).`,
  ];
  if (a.speedup !== undefined) {
    const tm = a.timing;
    lines.push(`Speed: measured ${a.speedup.toFixed(2)}× faster (ideal ${a.idealSpeedup.toFixed(2)}× from MACs)${tm ? `: ${tm.denseMs.toFixed(2)} → ${tm.prunedMs.toFixed(2)} ms (p10-p90 ${tm.p10Ms.toFixed(2)}-${tm.p90Ms.toFixed(2)}), medians of ${tm.runs} interleaved runs at ${tm.shape.replace(' x ', ' × ')} on ${tm.provider}, ${tm.threads} threads` : ''}.`);
  }
  if (a.latency) lines.push(`Latency: target ${pct(a.latency.target, 0)} of the dense model, predicted ${pct(a.latency.predicted, 1)}${a.latency.measured !== undefined ? `, measured ${pct(a.latency.measured, 1)}` : ''}.`);
  if (a.accuracy) lines.push(`Accuracy: ${pct(a.accuracy.before)} → ${pct(a.accuracy.after)} on ${a.accuracy.examples} held-out examples of ${a.accuracy.source} (not used for calibration).`);
  if (a.agreement) lines.push(`Agreement with the original: ${pct(a.agreement.rate)} of ${a.agreement.examples} examples of ${a.agreement.source}.`);
  if (a.comparisons?.length) {
    const what = { l1: 'L1-norm filters (uniform shares, same repair)', unrepaired: 'this plan without the repair' };
    lines.push(`Same budget, same examples: ${a.comparisons.map((c) => `${what[c.kind]} ${c.measure === 'agreement' ? 'agrees on ' : `${c.measure} `}${pct(c.value)}`).join('; ')}.`);
  }
  const out = lines.map((l, i) => el('p', { class: i === 0 ? 'ok' : '' }, i === 0 ? `✓ ${l}` : l));
  if (a.warning) out.push(el('p', { class: 'warn', role: 'alert' }, `⚠ Much worse than the original: ${a.warning.replace(/^the pruned model /, 'it ')}.`));
  return out;
}

/** The whole panel: a skeleton built once per model, updated in place from {@link State}. */
export class PanelView {
  private summary?: ModelSummary;
  private header = el('header', {});
  private phaseBox = el('div', { id: 'phase', class: 'row' });
  private phaseKey = '';
  private progressText?: HTMLElement;
  private notice = el('div', { id: 'notice' });
  private plan?: PlanSection;
  private planBox = el('div', {});
  private applied = el('div', { id: 'applied', role: 'status' });
  private lastApplied?: AppliedView;
  private lastPhase?: string;
  /** Scoring just ended: the plan's first control takes the focus once the plan is drawn. */
  private focusPlan = false;
  private frontier?: FrontierSection;
  private frontierBox = el('div', {});
  private headerKey = '';
  private heads?: Heatmap;
  private neurons?: Heatmap;
  private maps = el('div', {});

  constructor(private readonly app: HTMLElement, private readonly post: (m: WebviewMessage) => void, private readonly summaryOnly: boolean) {
    app.replaceChildren(this.header, this.phaseBox, this.notice, this.planBox, this.applied, this.frontierBox, this.maps);
  }

  /** Bring the DOM up to date with `s`. */
  render(s: State): void {
    if (s.summary?.path !== this.summary?.path || s.summary?.layers.length !== this.summary?.layers.length) this.build(s.summary);
    if (s.summary) this.renderHeader(s.summary);
    this.renderPhase(s);
    if (this.summaryOnly || !s.summary) return;
    this.notice.replaceChildren(...(s.warning ? [el('p', { class: 'warning' }, `⚠ ${s.warning}`)] : []));
    if (s.plan && !this.plan) {
      this.plan = new PlanSection(s.summary, this.post);
      this.planBox.replaceChildren(this.plan.root);
    }
    if (!s.plan && this.plan) {
      this.plan = undefined;
      this.planBox.replaceChildren();
    }
    if (s.plan) this.plan!.update(s.plan, s.phase === 'scoring' || s.phase === 'applying');
    this.applied.replaceChildren(...(s.applied ? appliedText(s.applied) : []));
    // Focus follows the work: a new result takes it; when scoring ends, the plan's first control.
    if (s.applied && s.applied !== this.lastApplied) {
      this.applied.tabIndex = -1;
      this.applied.focus();
    }
    if (this.lastPhase === 'scoring' && s.phase === 'scored') this.focusPlan = true;
    const first = this.focusPlan ? this.planBox.querySelector<HTMLElement>('input, vscode-button, button') : null;
    if (first) {
      first.focus();
      this.focusPlan = false;
    }
    this.lastApplied = s.applied;
    this.lastPhase = s.phase;
    if (s.frontier) {
      if (!this.frontier) {
        this.frontier = new FrontierSection(this.post);
        this.frontierBox.replaceChildren(this.frontier.root);
      }
      this.frontier.update(s.frontier, s.plan?.budget);
    } else if (this.frontier) {
      this.frontier = undefined;
      this.frontierBox.replaceChildren();
    }
    this.renderMaps(s);
  }

  /** Outline one head (tree view / hover "reveal"). */
  reveal(layer: number, head: number): void {
    document.querySelectorAll('.cell.revealed').forEach((c) => c.classList.remove('revealed'));
    const cell = this.heads?.cell(layer, head);
    cell?.classList.add('revealed');
    cell?.scrollIntoView({ block: 'center' });
  }

  private build(summary?: ModelSummary): void {
    this.summary = summary;
    this.plan = undefined;
    this.planBox.replaceChildren();
    if (!summary) {
      this.header.replaceChildren();
      this.maps.replaceChildren();
      return;
    }
    this.headerKey = '';
    this.frontier = undefined;
    this.frontierBox.replaceChildren();
    this.renderHeader(summary);
    if (this.summaryOnly) return;
    if (summary.units === 'channels') {
      this.heads = undefined;
      this.neurons = new Heatmap('channel-heatmap', `Channel importance (blocks × up to ${BINS} bins of channels; bar: channels kept; curve: the block's channels sorted by importance, line at the cut)`, summary.layers.map((l) => bins(l.ffn)), true, summary.layers.map((l) => l.name ?? ''), 'channels');
      this.maps.replaceChildren(this.neurons.root);
      return;
    }
    const named = summary.layers.some((l) => l.name);
    const transformerRows = named ? summary.layers.filter((l) => !l.name) : summary.layers;
    this.heads = new Heatmap('head-heatmap', 'Head importance (layers × heads; bar: heads kept)', transformerRows.map((l) => l.heads));
    this.neurons = new Heatmap('neuron-heatmap', `FFN neuron importance (layers × up to ${BINS} bins of neurons${named ? '; named rows: channel groups outside the transformer, searched together with it' : ''}; bar: neurons kept; curve: the layer's neurons sorted by importance, line at the cut)`, summary.layers.map((l) => bins(l.ffn)), true, named ? summary.layers.map((l, i) => l.name ?? `L${i}`) : undefined);
    this.maps.replaceChildren(this.heads.root, this.neurons.root);
  }

  private renderHeader(summary: ModelSummary): void {
    const key = `${summary.path}|${summary.seqLen}|${summary.seqLenSource}|${summary.totalMacs}`;
    if (key === this.headerKey) return;
    this.headerKey = key;
    if (summary.units === 'channels') {
      this.header.replaceChildren(
        el('h1', {}, summary.fileName),
        el('p', { class: 'meta' }, `${summary.architecture} · ${summary.modality} · ${summary.layers.length} prunable channel groups · ${fmt(summary.parameters)} parameters · ${fmt(summary.totalMacs)} prunable MACs`),
        el('p', { class: 'meta', id: 'seq-len' }, 'Every MAC count here is per example (one image); a group\'s channels are cut together in every convolution that carries them.'),
        ...(summary.note ? [el('p', { class: 'warning', id: 'model-note' }, `⚠ ${summary.note}`)] : []),
        grid(['Block', 'Channels', 'MACs'], summary.layers.map((l) => [l.name ?? '', String(l.ffn), fmt(l.macs)]), 'layers'));
      return;
    }
    const where = { fixed: 'the model\'s token count', calibration: 'the calibration data\'s mean length', default: 'a default until calibration data is chosen' }[summary.seqLenSource];
    this.header.replaceChildren(
      el('h1', {}, summary.fileName),
      el('p', { class: 'meta' }, `${summary.architecture} · ${summary.modality} · ${summary.norm}-LN · hidden ${summary.hidden} · ${summary.layers.length} layers · ${fmt(summary.parameters)} parameters · ${fmt(summary.totalMacs)} MACs`),
      el('p', { class: 'meta', id: 'seq-len' }, summary.perLayerGeometry
        ? 'Every MAC count here is per example (one image), each layer at its own measured width, positions and attention window.'
        : `Every MAC count here is at sequence length ${Number.isInteger(summary.seqLen) ? summary.seqLen : summary.seqLen.toFixed(1)} (${where}).`),
      grid(['Layer', 'Heads × size', 'QKV', 'FFN width', 'Activation', 'MACs'], summary.layers.map((l, i) => [l.name ?? String(i), l.heads ? (l.group ? `${l.heads} KV × ${l.group} q × ${l.headSize}` : `${l.heads} × ${l.headSize}`) : '-', l.qkv, String(l.ffn), l.activation ?? '-', fmt(l.macs)]), 'layers'));
  }

  private renderPhase(s: State): void {
    const key = `${s.phase}|${s.message ?? ''}|${s.data?.source ?? ''}|${!!s.summary}`;
    if (key !== this.phaseKey) {
      this.phaseKey = key;
      const focused = (document.activeElement as HTMLElement | null)?.id;
      this.phaseBox.replaceChildren(...this.phaseContent(s));
      const again = focused ? document.getElementById(focused) : null;
      if (again && this.phaseBox.contains(again)) again.focus();
      else if (focused && !document.getElementById(focused)) this.phaseBox.querySelector<HTMLElement>('vscode-button')?.focus();
    }
    if (this.progressText) {
      const p = s.progress;
      this.progressText.textContent = p ? `Scoring: ${p.done} of ${p.total} elements${p.eta !== undefined ? `, ${formatEta(p.eta)}` : ''}` : 'Scoring: starting...';
    }
  }

  private phaseContent(s: State): HTMLElement[] {
    this.progressText = undefined;
    const score = (label: string): HTMLElement => button('score', label, () => this.post({ type: 'score' }), s.phase === 'idle' ? 'primary' : 'secondary');
    const log = (): HTMLElement => button('show-log', 'Show Log', () => this.post({ type: 'showLog' }), 'secondary');
    const data = s.data ? [el('span', { class: 'meta', id: 'data-line' }, dataLine(s.data))] : [];
    // Sweeping needs scores only: it stays offered while earlier scores hold (after a cancelled or failed re-score too).
    const sweep = (): HTMLElement[] => (s.plan ? [button('sweep', s.frontier ? 'Sweep budgets again' : 'Sweep budgets (speed / accuracy)', () => this.post({ type: 'sweep' }), 'secondary')] : []);
    if (this.summaryOnly) {
      if (s.phase === 'refused') return [el('p', { class: 'error', role: 'alert' }, s.message ?? 'This model cannot be pruned.'), log()];
      return s.summary ? [button('prune', 'Prune with OPTIN', () => this.post({ type: 'score' }))] : [el('span', { id: 'status' }, s.message ?? 'Loading...')];
    }
    switch (s.phase) {
      case 'analysing': return [spinner(), el('span', { id: 'status' }, s.message ?? 'Analysing the model...')];
      case 'refused': return [el('p', { class: 'error', role: 'alert' }, s.message ?? 'This model cannot be pruned.'), log()];
      case 'idle': return [score(s.summary?.units === 'channels' ? 'Score channels' : 'Score heads and neurons')];
      case 'scoring':
        this.progressText = el('span', { id: 'progress-text', 'aria-live': 'polite' });
        return [spinner(), this.progressText, button('cancel', 'Cancel', () => this.post({ type: 'cancel' }), 'secondary')];
      case 'applying': return [spinner(), el('span', { id: 'status' }, s.message ?? 'Writing, verifying and timing the pruned model...'), button('cancel', 'Cancel', () => this.post({ type: 'cancel' }), 'secondary')];
      case 'cancelled': return [el('span', { id: 'status' }, s.message ?? 'Scoring cancelled; nothing was written.'), ...data, score('Score again'), ...sweep()];
      case 'failed': return [el('p', { class: 'error', role: 'alert' }, s.message ?? 'Failed.'), ...data, score('Score again'), ...sweep(), log()];
      case 'scored':
      case 'applied': return [...data, score('Score again'), ...sweep()];
    }
  }

  private renderMaps(s: State): void {
    const summary = s.summary!;
    if (!this.neurons) return;
    const what = summary.units === 'channels' ? { row: (l: number) => summary.layers[l]!.name ?? `block ${l}`, unit: 'channels' } : { row: (l: number) => summary.layers[l]!.name ?? `layer ${l}`, unit: 'neurons' };
    if (this.heads) this.renderHeads(s);
    this.renderNeurons(s, what);
  }

  private renderHeads(s: State): void {
    const summary = s.summary!;
    if (!this.heads) return;
    const headRanks = importanceRanks(s.heads);
    const totalHeads = summary.layers.reduce((a, l) => a + l.heads, 0);
    const plan = s.plan;
    this.heads.update({
      values: s.heads, ...(s.anchor ? { anchor: s.anchor.heads } : {}),
      tooltip: (l, h) => {
        const v = s.heads[l]?.[h];
        if (v === undefined) return `layer ${l}, head ${h}: not scored yet`;
        const fate = plan ? (plan.keepHeads[l]!.includes(h) ? ', kept' : ', pruned') : '';
        return `layer ${l}, head ${h}: importance ${v.toPrecision(4)}, rank ${headRanks[l]![h]} of ${totalHeads}${fate}`;
      },
      pruned: (l, h) => !!plan && !plan.keepHeads[l]!.includes(h),
      share: (l) => (plan ? { kept: plan.keepHeads[l]!.length, total: summary.layers[l]!.heads } : undefined),
    });
  }

  private renderNeurons(s: State, what: { row: (l: number) => string; unit: string }): void {
    const summary = s.summary!;
    const plan = s.plan;
    if (!this.neurons) return;
    const binned = s.neurons.map((row, l) => row && Array.from({ length: bins(summary.layers[l]!.ffn) }, (_, b) => {
      const [a, z] = binRange(summary.layers[l]!.ffn, b);
      return row.slice(a, z).reduce((x, y) => x + y, 0) / (z - a);
    }));
    const keptIn = (l: number, b: number): number => {
      if (!plan) return 1;
      const [a, z] = binRange(summary.layers[l]!.ffn, b);
      return plan.keepNeurons[l]!.filter((j) => j >= a && j < z).length / (z - a);
    };
    this.neurons.update({
      values: binned, ...(s.anchor ? { anchor: s.anchor.neurons } : {}),
      tooltip: (l, b) => {
        const [a, z] = binRange(summary.layers[l]!.ffn, b);
        const v = binned[l]?.[b];
        if (v === undefined) return `${what.row(l)}, ${what.unit} ${a}–${z - 1}: not scored yet`;
        return `${what.row(l)}, ${what.unit} ${a}–${z - 1}: mean importance ${v.toPrecision(4)}${plan ? `, ${Math.round(keptIn(l, b) * (z - a))} of ${z - a} kept` : ''}`;
      },
      pruned: (l, b) => keptIn(l, b) < 0.5,
      share: (l) => (plan ? { kept: plan.keepNeurons[l]!.length, total: summary.layers[l]!.ffn } : undefined),
      curve: (l) => {
        const row = s.neurons[l];
        return row ? { sorted: [...row].sort((a, b) => b - a), kept: plan ? plan.keepNeurons[l]!.length : row.length } : undefined;
      },
    });
  }
}
