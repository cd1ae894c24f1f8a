/**
 * The extension's own scoring time in a real VS Code (run on demand: `npm run bench:extension
 * [-- --samples 32] [--mode auto|exact|fast]`, which installs the e2e tools as test:e2e does).
 * A workspace with the bundled SST-2 BERT, its tokenizer and the first `samples` training sentences;
 * code-server with the development extension; right-click > Prune with OPTIN, accept the calibration
 * data; prints the seconds from the click to the finished plan in the panel and the scoring time the
 * panel reports.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodeServer, launchBrowser, openWorkbench, tools } from '../test/e2e/harness';
import { runFromExplorer, webview } from '../test/e2e/ui';

const arg = (k: string, d: string): string => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };
const ROOT = path.resolve(__dirname, '..', '..');

function workspace(samples: number, mode: string): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-bench-ext-'));
  const src = path.join(ROOT, 'test', 'fixtures', 'models', 'bert-sst2');
  fs.copyFileSync(path.join(src, 'model-opset17.onnx'), path.join(ws, 'bert-sst2.onnx'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(src, f), path.join(ws, f));
  const lines = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'data', 'sst2', 'train.tsv'), 'utf8').split('\n');
  fs.writeFileSync(path.join(ws, 'sst2-train.tsv'), lines.slice(0, samples + 1).join('\n') + '\n');
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({
    'optin.calibration.samples': samples, 'optin.scoringMode': mode, 'optin.executionProvider': 'cpu',
    'workbench.secondarySideBar.defaultVisibility': 'hidden', 'chat.disableAIFeatures': true,
  }, null, 1));
  return ws;
}

async function main(): Promise<void> {
  const samples = Number(arg('samples', '32'));
  const mode = arg('mode', 'auto');
  const t = tools();
  const ws = workspace(samples, mode);
  const browser = await launchBrowser(t);
  const cs = await CodeServer.start(t);
  try {
    const page = await openWorkbench(browser, cs.url(ws, [['extensionDevelopmentPath', cs.remote(ROOT)]]));
    await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 120_000 });
    const t0 = performance.now();
    await runFromExplorer(page, 'bert-sst2.onnx', 'Prune with OPTIN', page.locator('.tab', { hasText: 'OPTIN: bert-sst2.onnx' }));
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: 'sst2-train.tsv' }).first();
    await row.waitFor({ timeout: 60_000 });
    await row.click();
    const view = webview(page);
    await view.locator('#plan').waitFor({ timeout: 30 * 60_000 });
    const wall = (performance.now() - t0) / 1000;
    const line = await view.locator('#data-line').innerText();
    console.log(`VS Code (code-server ${path.basename(t.dir)}), bundled SST-2 BERT, ${samples} sentences, optin.scoringMode ${mode}, cpu`);
    console.log(`panel: ${line.trim()}`);
    console.log(`right-click to plan in the panel: ${wall.toFixed(1)} s (target < 120 s)`);
  } finally {
    cs.stop();
    await browser.close();
    fs.rmSync(ws, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
