import * as assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { explorerContextMenu, explorerContextMenuLabels, runCommand, screenshot, webview } from './ui';

/** One UI test: a name and a body that drives the workbench. */
export interface UiTest {
  name: string;
  run(page: Page): Promise<void>;
}

/** UI tests against the extension loaded from the development folder. */
export const devTests: UiTest[] = [
  {
    name: 'explorer context menu shows "Prune with OPTIN" on an .onnx file only',
    async run(page) {
      await page.locator('.monaco-workbench').waitFor();
      // Wait until the development extension has registered its menus (the entry shows up).
      await explorerContextMenu(page, 'bert-tiny.onnx', 'Prune with OPTIN');
      await page.locator('.tab', { hasText: 'OPTIN: bert-tiny.onnx' }).waitFor({ timeout: 30_000 });
      const onnx = await explorerContextMenuLabels(page, 'bert-tiny.onnx');
      assert.ok(onnx.includes('Prune with OPTIN'), `menu was: ${onnx.join(', ')}`);
      const other = await explorerContextMenuLabels(page, 'notes.txt');
      assert.ok(!other.includes('Prune with OPTIN'), 'must not appear on other files');
    },
  },
  {
    name: 'right-click > Prune with OPTIN opens the panel with one row per layer',
    async run(page) {
      await explorerContextMenu(page, 'bert-tiny.onnx', 'Prune with OPTIN');
      await page.locator('.tab', { hasText: 'OPTIN: bert-tiny.onnx' }).waitFor({ timeout: 30_000 });
      const view = webview(page);
      await view.locator('h1', { hasText: 'bert-tiny.onnx' }).waitFor({ timeout: 60_000 });
      const rows = view.locator('#layers vscode-data-grid-row:not([row-type="header"])');
      assert.equal(await rows.count(), 2);
      assert.match(await view.locator('.meta').innerText(), /post-LN · hidden 32 · 2 layers/);
      await screenshot(page, 'panel-bert-tiny');
    },
  },
  {
    name: 'palette "OPTIN: Prune with OPTIN" on a decoder shows the refusal in the panel',
    async run(page) {
      await runCommand(page, 'OPTIN: Prune with OPTIN');
      const input = page.locator('.quick-input-widget input');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'gpt2-decoder.onnx' }).first().waitFor({ timeout: 20_000 });
      await input.fill('gpt2-decoder');
      await page.keyboard.press('Enter');
      await page.locator('.tab', { hasText: 'OPTIN: gpt2-decoder.onnx' }).waitFor({ timeout: 30_000 });
      const err = webview(page).locator('.error');
      await err.waitFor({ timeout: 60_000 });
      assert.match(await err.innerText(), /decoder-only/);
      await screenshot(page, 'panel-decoder-refused');
    },
  },
];

/** Smoke test against the installed VSIX (no development folder). */
export const vsixTests: UiTest[] = [
  {
    name: 'installed VSIX: right-click > Prune with OPTIN analyses the model',
    async run(page) {
      await explorerContextMenu(page, 'bert-tiny.onnx', 'Prune with OPTIN');
      const view = webview(page);
      await view.locator('h1', { hasText: 'bert-tiny.onnx' }).waitFor({ timeout: 60_000 });
      assert.equal(await view.locator('#layers vscode-data-grid-row:not([row-type="header"])').count(), 2);
      await screenshot(page, 'vsix-panel');
    },
  },
];
