import type { AppliedView, HostMessage, ModelSummary, PlanView, WebviewMessage } from '../src/shared/protocol';
import { button, el, fmt, grid, spinner } from './components';
import { heatmap } from './heatmap';
import { importanceRanks } from '../src/shared/ranks';

interface VsCodeApi {
  postMessage(m: WebviewMessage): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

/** Everything the panel shows; saved with setState so a reloaded webview comes back as it was. */
interface State {
  summary?: ModelSummary;
  heads: Array<number[] | undefined>;
  neurons: Array<number[] | undefined>;
  complete: boolean;
  warning?: string;
  plan?: PlanView;
  applied?: AppliedView;
  progress?: { done: number; total: number; eta?: number };
  status?: string;
  error?: string;
}

const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;
const summaryOnly = document.body.dataset.mode === 'summary';
const PRESETS: Array<[string, number]> = [['30%', 0.7], ['40%', 0.6], ['50%', 0.5], ['60%', 0.4]];
let state: State = { heads: [], neurons: [], complete: false, ...(vscode.getState() as Partial<State> | undefined) };
const post = (m: WebviewMessage): void => vscode.postMessage(m);

const BINS = 64;
function bins(width: number): number {
  return Math.min(width, BINS);
}
function binRange(width: number, b: number): [number, number] {
  const n = bins(width);
  return [Math.floor((b * width) / n), Math.floor(((b + 1) * width) / n)];
}

function summaryView(s: ModelSummary): HTMLElement[] {
  return [
    el('h1', {}, s.fileName),
    el('p', { class: 'meta' }, `${s.architecture} · ${s.modality} · ${s.norm}-LN · hidden ${s.hidden} · ${s.layers.length} layers · ${fmt(s.parameters)} parameters · ${fmt(s.totalMacs)} MACs at sequence length ${s.seqLen}`),
    grid(['Layer', 'Heads × size', 'QKV', 'FFN width', 'Activation', 'MACs'], s.layers.map((l, i) => [String(i), `${l.heads} × ${l.headSize}`, l.qkv, String(l.ffn), l.activation ?? '-', fmt(l.macs)]), 'layers'),
  ];
}

function headMap(s: ModelSummary): HTMLElement {
  const ranks = importanceRanks(state.heads);
  const total = s.layers.reduce((a, l) => a + l.heads, 0);
  return heatmap({
    id: 'head-heatmap', title: 'Head importance (layers × heads)', columns: s.layers.map((l) => l.heads), values: state.heads,
    tooltip: (l, h) => {
      const v = state.heads[l]?.[h];
      if (v === undefined) return `layer ${l}, head ${h}: not scored yet`;
      const kept = state.plan ? (state.plan.keepHeads[l]!.includes(h) ? 'kept' : 'pruned') : '';
      return `layer ${l}, head ${h}: importance ${v.toPrecision(4)}, rank ${ranks[l]![h]} of ${total}${kept ? `, ${kept}` : ''}`;
    },
    pruned: (l, h) => !!state.plan && !state.plan.keepHeads[l]!.includes(h),
  });
}

function neuronMap(s: ModelSummary): HTMLElement {
  const binned = state.neurons.map((row, l) => row && Array.from({ length: bins(s.layers[l]!.ffn) }, (_, b) => {
    const [a, z] = binRange(s.layers[l]!.ffn, b);
    return row.slice(a, z).reduce((x, y) => x + y, 0) / (z - a);
  }));
  const keptIn = (l: number, b: number): number => {
    if (!state.plan) return 1;
    const [a, z] = binRange(s.layers[l]!.ffn, b);
    return state.plan.keepNeurons[l]!.filter((j) => j >= a && j < z).length / (z - a);
  };
  return heatmap({
    id: 'neuron-heatmap', title: `FFN neuron importance (layers × ${BINS} bins of neurons)`, columns: s.layers.map((l) => bins(l.ffn)), values: binned,
    tooltip: (l, b) => {
      const [a, z] = binRange(s.layers[l]!.ffn, b);
      const v = binned[l]?.[b];
      if (v === undefined) return `layer ${l}, neurons ${a}–${z - 1}: not scored yet`;
      return `layer ${l}, neurons ${a}–${z - 1}: mean importance ${v.toPrecision(4)}${state.plan ? `, ${Math.round(keptIn(l, b) * (z - a))} of ${z - a} kept` : ''}`;
    },
    pruned: (l, b) => keptIn(l, b) < 0.5,
  });
}

function planControls(): HTMLElement {
  const p = state.plan!;
  const slider = el('input', { type: 'range', id: 'budget', min: '5', max: '100', step: '1', value: String(Math.round(p.budget * 100)), 'aria-label': 'Percent of MACs kept' }) as HTMLInputElement;
  const label = el('span', { id: 'budget-label' }, `keep ${Math.round(p.budget * 100)}% of MACs (${Math.round(100 - p.budget * 100)}% fewer FLOPs)`);
  slider.addEventListener('input', () => {
    label.textContent = `keep ${slider.value}% of MACs (${100 - Number(slider.value)}% fewer FLOPs)`;
    post({ type: 'setBudget', budget: Number(slider.value) / 100 });
  });
  const presets = PRESETS.map(([name, b]) => button(`preset-${name.replace('%', '')}`, `${name} fewer FLOPs`, () => post({ type: 'setBudget', budget: b }), 'secondary'));
  const s = state.summary!;
  const layers = grid(['Layer', 'Heads kept', 'Neurons kept'], s.layers.map((l, i) => [String(i), `${p.keepHeads[i]!.length} / ${l.heads}`, `${p.keepNeurons[i]!.length} / ${l.ffn}`]), 'plan-layers');
  return el('section', { id: 'plan' },
    el('h2', {}, 'Prune plan'),
    el('div', { class: 'row' }, slider, label),
    el('div', { class: 'row' }, ...presets),
    el('p', { id: 'plan-macs' }, `MACs ${fmt(p.macs.baseline)} → ${fmt(p.macs.kept)} (${((100 * p.macs.kept) / p.macs.baseline).toFixed(1)}%) at sequence length ${p.macs.seqLen.toFixed(1)} · prunable parameters ${fmt(p.parameters.before)} → ${fmt(p.parameters.after)}`),
    layers,
    el('div', { class: 'row' }, button('apply', 'Apply', () => post({ type: 'apply' })), button('export-plan', 'Export plan (JSON)', () => post({ type: 'exportPlan' }), 'secondary'), button('export-scores', 'Export scores (CSV)', () => post({ type: 'exportScores' }), 'secondary')),
  );
}

function appliedView(a: AppliedView): HTMLElement {
  return el('p', { id: 'applied', role: 'status' },
    `Wrote ${a.output}: outputs match the masked model within ${a.maxAbsDiff.toExponential(2)} (tolerance ${a.tolerance.toExponential(2)})` +
    `${a.speedup !== undefined ? `; measured ${a.speedup.toFixed(2)}× faster (ideal ${a.idealSpeedup.toFixed(2)}×)` : ''}; ${fmt(a.fileBytes.before)}B → ${fmt(a.fileBytes.after)}B${a.tuned ? '; mask-tuned' : ''}.`);
}

function render(): void {
  vscode.setState(state);
  const s = state.summary;
  if (state.error) {
    app.replaceChildren(el('p', { class: 'error', role: 'alert' }, state.error), button('show-log', 'Show Log', () => post({ type: 'showLog' }), 'secondary'));
    return;
  }
  if (!s) {
    app.replaceChildren(el('p', { id: 'status' }, state.status ?? 'Loading...'));
    return;
  }
  const parts: HTMLElement[] = summaryView(s);
  if (summaryOnly) {
    parts.push(el('div', { class: 'row' }, button('prune', 'Prune with OPTIN', () => post({ type: 'score' }))));
    app.replaceChildren(...parts);
    return;
  }
  const scoring = !!state.progress && !state.complete;
  if (scoring) {
    const p = state.progress!;
    parts.push(el('div', { class: 'row', id: 'progress' }, spinner(), el('span', {}, `Scoring: ${p.done} of ${p.total} elements${p.eta !== undefined ? `, about ${Math.ceil(p.eta)} s left` : ''}`), button('cancel', 'Cancel', () => post({ type: 'cancel' }), 'secondary')));
  } else if (!state.complete) {
    parts.push(el('div', { class: 'row' }, button('score', 'Score heads and neurons', () => post({ type: 'score' }))));
  }
  if (state.warning) parts.push(el('p', { class: 'warning' }, `⚠ ${state.warning}`));
  if (state.status) parts.push(el('p', { id: 'status' }, state.status));
  if (state.plan) parts.push(planControls());
  if (state.applied) parts.push(appliedView(state.applied));
  if (state.heads.some((r) => r) || state.complete) parts.push(headMap(s), neuronMap(s));
  app.replaceChildren(...parts);
}

function reveal(layer: number, head: number): void {
  document.querySelectorAll('.cell.revealed').forEach((c) => c.classList.remove('revealed'));
  const cell = document.querySelector<HTMLElement>(`#head-heatmap .cell[data-layer="${layer}"][data-col="${head}"]`);
  cell?.classList.add('revealed');
  cell?.scrollIntoView({ block: 'center' });
}

window.addEventListener('message', (ev: MessageEvent<HostMessage>) => {
  const m = ev.data;
  switch (m.type) {
    case 'summary': state = { ...state, summary: m.summary, error: undefined, status: undefined }; break;
    case 'status': state.status = m.text; break;
    case 'error': state.error = m.message; break;
    case 'progress': state.progress = { done: m.done, total: m.total, ...(m.eta !== undefined ? { eta: m.eta } : {}) }; state.complete = false; break;
    case 'layerScores': state.heads[m.layer] = m.heads; state.neurons[m.layer] = m.neurons; break;
    case 'scores': state = { ...state, heads: m.scores.heads, neurons: m.scores.neurons, complete: true, progress: undefined, ...(m.warning ? { warning: m.warning } : {}) }; break;
    case 'plan': state.plan = m.plan; break;
    case 'applied': state.applied = m.result; state.status = undefined; break;
    case 'reveal': reveal(m.layer, m.head); return;
  }
  render();
});

render();
post({ type: 'ready' });
