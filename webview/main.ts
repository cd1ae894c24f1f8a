import type { HostMessage, ModelSummary, WebviewMessage } from '../src/shared/protocol';
import { el, fmt, grid } from './components';

interface VsCodeApi {
  postMessage(m: WebviewMessage): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;

function renderSummary(s: ModelSummary): void {
  app.replaceChildren(
    el('h1', {}, s.fileName),
    el('p', { class: 'meta' }, `${s.architecture} · ${s.modality} · ${s.norm}-LN · hidden ${s.hidden} · ${s.layers.length} layers · ${fmt(s.parameters)} parameters · ${fmt(s.totalMacs)} MACs at sequence length ${s.seqLen}`),
    grid(
      ['Layer', 'Heads × size', 'QKV', 'FFN width', 'Activation', 'MACs'],
      s.layers.map((l, i) => [String(i), `${l.heads} × ${l.headSize}`, l.qkv, String(l.ffn), l.activation ?? '-', fmt(l.macs)]),
      'layers',
    ),
  );
}

function renderError(message: string): void {
  const btn = el('vscode-button', { id: 'show-log' }, 'Show Log');
  btn.addEventListener('click', () => vscode.postMessage({ type: 'showLog' }));
  app.replaceChildren(el('p', { class: 'error', role: 'alert' }, message), btn);
}

window.addEventListener('message', (ev: MessageEvent<HostMessage>) => {
  const m = ev.data;
  switch (m.type) {
    case 'summary':
      vscode.setState({ summary: m.summary });
      renderSummary(m.summary);
      break;
    case 'status':
      app.replaceChildren(el('p', { id: 'status' }, m.text));
      break;
    case 'error':
      renderError(m.message);
      break;
  }
});

const saved = vscode.getState() as { summary?: ModelSummary } | undefined;
if (saved?.summary) renderSummary(saved.summary);
vscode.postMessage({ type: 'ready' });
