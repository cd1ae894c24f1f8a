import type { HostMessage, WebviewMessage } from '../src/shared/protocol';
import { INITIAL, reduce, type State } from './state';
import { PanelView } from './view';

interface VsCodeApi {
  postMessage(m: WebviewMessage): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const post = (m: WebviewMessage): void => vscode.postMessage(m);
let state: State = { ...INITIAL, ...(vscode.getState() as Partial<State> | undefined) };
const view = new PanelView(document.getElementById('app')!, post, document.body.dataset.mode === 'summary');

function render(): void {
  vscode.setState(state);
  view.render(state);
}

window.addEventListener('message', (ev: MessageEvent<HostMessage>) => {
  const m = ev.data;
  if (m.type === 'reveal') return view.reveal(m.layer, m.head);
  state = reduce(state, m);
  render();
});

// VS Code swaps the body's theme class when the colour theme changes: repaint with the new background.
new MutationObserver(render).observe(document.body, { attributes: true, attributeFilter: ['class'] });

render();
post({ type: 'ready' });
