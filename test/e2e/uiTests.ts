import * as assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { closeMenus, explorerContextMenu, explorerContextMenuLabels, runCommand, screenshot, t, webview } from './ui';

/** One UI test: a name and a body that drives the workbench. */
export interface UiTest {
  name: string;
  run(page: Page): Promise<void>;
}

/** A model of a test workspace, what its panel must show and (when asked) the calibration quick pick. */
interface Sample {
  file: string; layers: number; heads: number; hidden: number; norm: 'pre' | 'post';
  /** The quick pick must preselect `first` and must not list `absent`. */
  pick?: { first: string; absent: string[] };
}
const TINY: Sample = { file: 'bert-tiny.onnx', layers: 2, heads: 4, hidden: 32, norm: 'post' };
const SST2: Sample = { file: 'bert-sst2.onnx', layers: 4, heads: 8, hidden: 256, norm: 'post', pick: { first: 'sst2-train.tsv', absent: ['digits-train', 'digits-train/0'] } };
const VIT: Sample = { file: 'vit-digits.onnx', layers: 4, heads: 4, hidden: 64, norm: 'pre', pick: { first: 'digits-train', absent: ['sst2-train.tsv', 'digits-train/0'] } };

/** Answer the calibration quick pick: check what it offers, accept the preselected entry. */
async function acceptCalibration(page: Page, pick: NonNullable<Sample['pick']>): Promise<void> {
  const rows = page.locator('.quick-input-list .monaco-list-row');
  await rows.first().waitFor({ timeout: t(60_000) });
  const labels = (await rows.locator('.label-name').allInnerTexts()).map((s) => s.trim());
  assert.equal(labels[0], pick.first, `preselected: ${labels.join(' | ')}`);
  for (const a of pick.absent) assert.ok(!labels.includes(a), `${a} must not be offered: ${labels.join(' | ')}`);
  await screenshot(page, `calibration-pick-${pick.first.replace(/[^a-z0-9]+/gi, '-')}`);
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: t(10_000) });
}

/** Right-click a model, watch the heatmap fill, pick the 50% preset, Apply, see the new file. */
async function pruneAndApply(page: Page, shot: string, m: Sample = TINY): Promise<void> {
  await explorerContextMenu(page, m.file, 'Prune with OPTIN');
  if (m.pick) await acceptCalibration(page, m.pick);
  await page.locator('.tab', { hasText: `OPTIN: ${m.file}` }).waitFor({ timeout: t(30_000) });
  const view = webview(page);
  await view.locator('h1', { hasText: m.file }).waitFor({ timeout: t(60_000) });
  const rows = view.locator('#layers vscode-data-grid-row:not([row-type="header"])');
  assert.equal(await rows.count(), m.layers);
  assert.match(await view.locator('.meta').innerText(), new RegExp(`${m.norm}-LN · hidden ${m.hidden} · ${m.layers} layers`));
  await view.locator('#plan').waitFor({ timeout: t(240_000) });
  assert.equal(await view.locator('#head-heatmap .hm-grid .cell').count(), m.layers * m.heads, 'one cell per layer x head');
  assert.ok(await view.locator('#neuron-heatmap .cell').count() > 0);
  const title = await view.locator('#head-heatmap .hm-grid .cell').first().getAttribute('title');
  assert.match(title ?? '', new RegExp(`^layer 0, head 0: importance [0-9.e+-]+, rank \\d+ of ${m.layers * m.heads}, (kept|pruned)$`));
  await screenshot(page, `${shot}-heatmap`);
  await closeMenus(page);
  await view.locator('#preset-50:not([disabled])').click();
  await view.locator('#budget-label', { hasText: 'keep 50% of MACs' }).waitFor({ timeout: t(10_000) });
  await view.locator('#plan-macs', { hasText: '(50.0%)' }).or(view.locator('#plan-macs', { hasText: '(49.' })).first().waitFor({ timeout: t(10_000) });
  await view.locator('#apply:not([disabled])').click();
  const applied = view.locator('#applied');
  await applied.waitFor({ timeout: t(240_000) });
  const out = m.file.replace('.onnx', '.optin-50.onnx');
  assert.match(await applied.innerText(), new RegExp(`${out.replace(/\./g, '\\.')}: outputs match the masked model within [0-9.e+-]+ \\(tolerance [0-9.e+-]+\\); measured [0-9.]+× faster \\(ideal [0-9.]+×\\)`));
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: out }).waitFor({ timeout: t(30_000) });
  await screenshot(page, `${shot}-applied`);
}

/** UI tests against the extension loaded from the development folder. */
export const devTests: UiTest[] = [
  {
    name: 'explorer context menu shows "Prune with OPTIN" on an .onnx file only',
    async run(page) {
      await page.locator('.monaco-workbench').waitFor();
      // Wait until the development extension has registered its menus (the entry shows up).
      await explorerContextMenu(page, 'bert-tiny.onnx', 'Prune with OPTIN');
      await page.locator('.tab', { hasText: 'OPTIN: bert-tiny.onnx' }).waitFor({ timeout: t(30_000) });
      const onnx = await explorerContextMenuLabels(page, 'bert-tiny.onnx');
      assert.ok(onnx.includes('Prune with OPTIN'), `menu was: ${onnx.join(', ')}`);
      const other = await explorerContextMenuLabels(page, 'notes.txt');
      assert.ok(!other.includes('Prune with OPTIN'), 'must not appear on other files');
    },
  },
  {
    name: 'right-click > Prune with OPTIN: summary, live heatmap (layers x heads cells), budget preset, Apply writes a model that runs',
    run: (page) => pruneAndApply(page, 'panel'),
  },
  {
    name: 'OPTIN tree view lists heads with score, rank and fate; clicking one highlights it in the heatmap',
    async run(page) {
      const pane = page.locator('.pane', { has: page.locator('.pane-header h3.title', { hasText: /^OPTIN$/ }) });
      const header = pane.locator('.pane-header');
      if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
      await pane.locator('.monaco-list-row', { hasText: 'bert-tiny.onnx' }).waitFor({ timeout: t(20_000) });
      await pane.locator('.monaco-list-row', { hasText: 'layer 0' }).click();
      const head = pane.locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: /^head 1$/ }) }).first();
      await head.waitFor({ timeout: t(10_000) });
      assert.match(await head.innerText(), /head 1\s*[0-9.e+-]+ · rank \d+\/8 · (kept|pruned)/);
      await head.click();
      await webview(page).locator('#head-heatmap .cell.revealed[data-layer="0"][data-col="1"]').waitFor({ timeout: t(20_000) });
      await screenshot(page, 'tree-reveal');
    },
  },
  {
    name: 'palette "OPTIN: Prune with OPTIN" on a decoder shows the refusal in the panel',
    async run(page) {
      await runCommand(page, 'View: Close All Editors');
      await runCommand(page, 'OPTIN: Prune with OPTIN');
      const input = page.locator('.quick-input-widget input');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'gpt2-decoder.onnx' }).first().waitFor({ timeout: t(20_000) });
      await input.fill('gpt2-decoder');
      await page.keyboard.press('Enter');
      await page.locator('.tab', { hasText: 'OPTIN: gpt2-decoder.onnx' }).waitFor({ timeout: t(30_000) });
      const err = webview(page).locator('.error');
      await err.waitFor({ timeout: t(60_000) });
      assert.match(await err.innerText(), /decoder-only/);
      await screenshot(page, 'panel-decoder-refused');
    },
  },
];

/** Smoke test against the installed VSIX (no development folder). */
export const vsixTests: UiTest[] = [
  {
    name: 'installed VSIX: right-click the bundled SST-2 BERT > the quick pick offers only text data > its sentences, heatmap, preset, Apply writes a verified faster model',
    run: (page) => pruneAndApply(page, 'vsix', SST2),
  },
  {
    name: 'installed VSIX: right-click the digits ViT > the quick pick offers its image folder (sharp inside the VSIX) > heatmap, preset, Apply writes a verified model',
    run: async (page) => {
      await runCommand(page, 'View: Close All Editors');
      await pruneAndApply(page, 'vsix-vit', VIT);
    },
  },
];
