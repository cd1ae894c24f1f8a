import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';

/** Folder where UI tests leave screenshots. */
export const OUTPUT = path.resolve(process.env.OPTIN_TEST_OUTPUT ?? 'test-output');

/** Run a command from the command palette by its title (F1, type, Enter). */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.locator('.monaco-workbench').click({ position: { x: 700, y: 10 } }).catch(() => undefined);
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ timeout: 10_000 });
  await row.click();
}

/**
 * Right-click a file's row in the explorer and pick a context-menu entry. Retries for up to
 * `timeoutMs`, because extensions register their menu entries a moment after the workbench appears.
 */
export async function explorerContextMenu(page: Page, fileName: string, entry: string, timeoutMs = 60_000): Promise<void> {
  const row = page.locator(`.explorer-folders-view .monaco-list-row[aria-label^="${fileName}"]`).first();
  await row.waitFor({ timeout: 30_000 });
  const item = page.locator('.monaco-menu .action-item', { hasText: entry }).first();
  for (const end = Date.now() + timeoutMs; ; ) {
    await row.click({ button: 'right' });
    await page.locator('.monaco-menu .action-label').first().waitFor({ timeout: 10_000 });
    if (await item.isVisible()) break;
    await page.keyboard.press('Escape');
    if (Date.now() > end) throw new Error(`"${entry}" never appeared in the context menu of ${fileName}`);
    await page.waitForTimeout(1000);
  }
  await item.click();
}

/** Labels of the explorer context menu for a file (the menu is closed again). */
export async function explorerContextMenuLabels(page: Page, fileName: string): Promise<string[]> {
  const row = page.locator(`.explorer-folders-view .monaco-list-row[aria-label^="${fileName}"]`).first();
  await row.waitFor({ timeout: 30_000 });
  await row.click({ button: 'right' });
  const items = page.locator('.monaco-menu .action-label');
  await items.first().waitFor({ timeout: 10_000 });
  const labels = (await items.allInnerTexts()).map((s) => s.trim()).filter(Boolean);
  await page.keyboard.press('Escape');
  return labels;
}

/** The DOM of the active webview (outer iframe, then VS Code's inner active-frame). */
export function webview(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').last().frameLocator('#active-frame');
}

/** Save a screenshot under test-output/ and return its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(OUTPUT, { recursive: true });
  const file = path.join(OUTPUT, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}
