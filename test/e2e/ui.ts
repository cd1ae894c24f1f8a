import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';

/** Folder where UI tests leave screenshots. */
export const OUTPUT = path.resolve(process.env.OPTIN_TEST_OUTPUT ?? 'test-output');

/** Run a command from the command palette by its title (F1, type, Enter). */
export async function runCommand(page: Page, title: string): Promise<void> {
  await closeMenus(page);
  await page.locator('.monaco-workbench').click({ position: { x: 700, y: 10 } }).catch(() => undefined);
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: t(10_000) });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ timeout: t(10_000) });
  await row.click();
}

/**
 * Timeout for one wait, scaled for loaded machines: OPTIN_E2E_SLOW (default 3 under CI, else 1)
 * multiplies every UI wait, so a busy 2-core runner gets more time without any fixed sleeps.
 */
export function t(ms: number): number {
  const f = Number(process.env.OPTIN_E2E_SLOW ?? (process.env.CI ? 3 : 1));
  return Math.round(ms * (Number.isFinite(f) && f > 0 ? f : 1));
}

/** Close any open context menu (and quick input, unless told not to) and wait until nothing blocks the pointer. */
export async function closeMenus(page: Page, opts: { quickInput?: boolean } = {}): Promise<void> {
  const keepQuickInput = opts.quickInput === false;
  const blockers = [page.locator('.context-view .monaco-menu'), page.locator('.context-view-block')];
  if (!keepQuickInput) blockers.push(page.locator('.quick-input-widget'));
  const anyOpen = async (): Promise<boolean> => (await Promise.all(blockers.map((b) => b.first().isVisible()))).some(Boolean);
  const closed = (ms: number): Promise<unknown> => Promise.all(blockers.map((b) => b.first().waitFor({ state: 'hidden', timeout: ms }).catch(() => undefined)));
  // An empty spot of the activity bar: clicking there closes a menu (and nothing else happens).
  const clickOutside = async (): Promise<void> => {
    const vp = page.viewportSize() ?? { width: 1400, height: 900 };
    await page.mouse.click(24, Math.round(vp.height * 0.55));
  };
  for (let i = 0; i < 5 && (await anyOpen()); i++) {
    // Escape would also dismiss a quick pick that opened meanwhile (e.g. the calibration data pick).
    if (!keepQuickInput) {
      await page.keyboard.press('Escape');
      await closed(t(1_000));
    }
    // Escape goes to the webview when it has focus; a click outside the menu closes it too.
    if (await anyOpen()) {
      await clickOutside();
      await closed(t(1_000));
    }
  }
  for (const b of blockers) await b.first().waitFor({ state: 'hidden', timeout: t(10_000) });
}

/**
 * Open the context menu of a file's explorer row and wait until its entries are shown and stay up.
 * Under load a menu can close as soon as it opens (a webview that finishes loading takes focus,
 * the explorer re-renders the row); then the right-click is repeated, up to `timeoutMs`.
 */
async function openContextMenu(page: Page, fileName: string, timeoutMs = t(60_000)): Promise<void> {
  const row = page.locator(`.explorer-folders-view .monaco-list-row[aria-label^="${fileName}"]`).first();
  const label = page.locator('.context-view .monaco-menu .action-label').first();
  for (let attempt = 1, end = Date.now() + timeoutMs; ; attempt++) {
    await closeMenus(page);
    await row.waitFor({ timeout: t(30_000) });
    await row.click({ button: 'right' });
    if (await label.waitFor({ timeout: t(5_000) }).then(() => true, () => false)) {
      await page.waitForTimeout(300);
      if (await label.isVisible()) return;
    }
    if (Date.now() > end) throw new Error(`the context menu of ${fileName} did not stay open (${attempt} right-clicks)`);
    console.log(`    (right-click ${attempt} on ${fileName}: the context menu did not stay open)`);
  }
}

/**
 * Right-click a file's row in the explorer and pick a context-menu entry. Retries for up to
 * `timeoutMs`, because extensions register their menu entries a moment after the workbench appears.
 * After the click the menu is given time to close by itself (its action runs first); only a menu
 * that is still up after that is closed by hand.
 */
export async function explorerContextMenu(page: Page, fileName: string, entry: string, timeoutMs = t(60_000)): Promise<void> {
  const item = page.locator('.context-view .monaco-menu .action-item', { hasText: entry }).first();
  for (const end = Date.now() + timeoutMs; ; ) {
    await openContextMenu(page, fileName);
    if (await item.isVisible()) break;
    if (Date.now() > end) throw new Error(`"${entry}" never appeared in the context menu of ${fileName}`);
    await closeMenus(page);
    await page.waitForTimeout(1000);
  }
  await item.click();
  const gone = await page.locator('.context-view .monaco-menu').first().waitFor({ state: 'hidden', timeout: t(10_000) }).then(() => true, () => false);
  if (!gone) await closeMenus(page, { quickInput: false });
}

/**
 * Run a file's context-menu entry and wait until `opened` shows. Under heavy load a fresh workbench
 * sometimes closes the menu without running the entry (seen in CI under load, never on a quiet
 * machine); then the entry is chosen again, and the third try runs the same command from the
 * palette ("OPTIN: <entry>", picking the file), so a flaky menu cannot hide what comes after it.
 */
export async function runFromExplorer(page: Page, fileName: string, entry: string, opened: Locator): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (attempt < 3) {
      await explorerContextMenu(page, fileName, entry);
    } else {
      console.log(`    (the context menu did not run "${entry}" twice; running it from the palette)`);
      await runCommand(page, `OPTIN: ${entry}`);
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: fileName }).first();
      await row.waitFor({ timeout: t(20_000) });
      await row.click();
      // The model list must be gone before the caller reads the next quick pick (else it reads stale rows).
      await row.waitFor({ state: 'detached', timeout: t(20_000) }).catch(() => undefined);
    }
    if (await opened.first().waitFor({ timeout: t(20_000) }).then(() => true, () => false)) return;
    if (attempt === 3) throw new Error(`"${entry}" on ${fileName} did not open anything, from the context menu (twice) or the palette`);
    console.log(`    (retry ${attempt}: "${entry}" on ${fileName} opened nothing)`);
  }
}

/** Labels of the explorer context menu for a file (the menu is closed again). */
export async function explorerContextMenuLabels(page: Page, fileName: string, timeoutMs = t(60_000)): Promise<string[]> {
  // A menu can close between "shown" and the read (a webview that finishes loading takes focus): an
  // empty read is that, not an empty menu (the explorer's own entries are always there), so open it again.
  for (let attempt = 1, end = Date.now() + timeoutMs; ; attempt++) {
    await openContextMenu(page, fileName);
    const labels = (await page.locator('.context-view .monaco-menu .action-label').allInnerTexts()).map((s) => s.trim()).filter(Boolean);
    await closeMenus(page);
    if (labels.length) return labels;
    if (Date.now() > end) throw new Error(`the context menu of ${fileName} closed before its entries could be read (${attempt} tries)`);
    console.log(`    (read ${attempt} of the context menu of ${fileName}: it closed before its entries were read)`);
  }
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
