import * as assert from 'node:assert/strict';
import type { FrameLocator, Page } from 'playwright-core';
import { closeMenus, explorerContextMenuLabels, runCommand, runFromExplorer, screenshot, t, webview } from './ui';
import { contrast, parseColor } from '../../webview/colors';

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
  /** Held-out labelled examples Apply evaluates on (file examples minus calibration samples). */
  heldOut?: number;
}
const TINY: Sample = { file: 'bert-tiny.onnx', layers: 2, heads: 4, hidden: 32, norm: 'post' };
const SST2: Sample = { file: 'bert-sst2.onnx', layers: 4, heads: 8, hidden: 256, norm: 'post', pick: { first: 'sst2-train.tsv', absent: ['digits-train', 'digits-train/0', 'digits-train/1'] }, heldOut: 28 };
const VIT: Sample = { file: 'vit-digits.onnx', layers: 4, heads: 4, hidden: 64, norm: 'pre', pick: { first: 'digits-train', absent: ['sst2-train.tsv', 'digits-train/0', 'digits-train/1'] }, heldOut: 36 };

/** Answer the calibration quick pick: check what it offers, accept the preselected entry. */
async function acceptCalibration(page: Page, pick: NonNullable<Sample['pick']>): Promise<void> {
  const rows = page.locator('.quick-input-list .monaco-list-row');
  await rows.first().waitFor({ timeout: t(60_000) });
  const labels = (await rows.locator('.label-name').allInnerTexts()).map((s) => s.trim());
  assert.equal(labels[0], pick.first, `preselected: ${labels.join(' | ')}`);
  for (const a of pick.absent) assert.ok(!labels.includes(a), `${a} must not be offered: ${labels.join(' | ')}`);
  await screenshot(page, `calibration-pick-${pick.first.replace(/[^a-z0-9]+/gi, '-')}`);
  // A click, not Enter: the panel that opens beside the quick pick may hold the keyboard focus.
  await rows.first().click();
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: t(10_000) });
}

/** Right-click a model > Prune with OPTIN, answer the quick pick, wait for its panel's summary. */
async function openPanel(page: Page, m: Sample): Promise<FrameLocator> {
  await runFromExplorer(page, m.file, 'Prune with OPTIN', page.locator('.tab', { hasText: `OPTIN: ${m.file}` }));
  if (m.pick) await acceptCalibration(page, m.pick);
  await page.locator('.tab', { hasText: `OPTIN: ${m.file}` }).waitFor({ timeout: t(30_000) });
  const view = webview(page);
  await view.locator('h1', { hasText: m.file }).waitFor({ timeout: t(60_000) });
  assert.equal(await view.locator('#layers vscode-data-grid-row:not([row-type="header"])').count(), m.layers);
  assert.match(await view.locator('header .meta').first().innerText(), new RegExp(`${m.norm}-LN · hidden ${m.hidden} · ${m.layers} layers`));
  return view;
}

/** With scores in the panel: heatmap cells, the 50% preset, Apply; the written model's evidence and the explorer entry. */
async function presetAndApply(page: Page, view: FrameLocator, shot: string, m: Sample): Promise<void> {
  await view.locator('#plan').waitFor({ timeout: t(300_000) });
  assert.equal(await view.locator('#head-heatmap .hm-grid .cell').count(), m.layers * m.heads, 'one cell per layer x head');
  assert.equal(await view.locator('#head-heatmap .cell.unscored').count(), 0, 'every head scored');
  const title = await view.locator('#head-heatmap .hm-grid .cell').first().getAttribute('title');
  assert.match(title ?? '', new RegExp(`^layer 0, head 0: importance [0-9.e+-]+, rank \\d+ of ${m.layers * m.heads}, (kept|pruned)$`));
  await screenshot(page, `${shot}-heatmap`);
  await closeMenus(page);
  await view.locator('#preset-50').click();
  await view.locator('#budget-label', { hasText: 'keep 50% of MACs' }).waitFor({ timeout: t(10_000) });
  await view.locator('#plan-macs', { hasText: /\((50\.0|49\.\d)% kept\)/ }).waitFor({ timeout: t(10_000) });
  await view.locator('#apply:not([disabled])').click();
  const applied = view.locator('#applied');
  await applied.locator('p', { hasText: 'Verified' }).waitFor({ timeout: t(300_000) });
  const out = m.file.replace('.onnx', '.optin-50.onnx');
  const text = await applied.innerText();
  assert.match(text, new RegExp(`Wrote \\S*${out.replace(/\./g, '\\.')} \\(keep 50% of MACs;`));
  assert.match(text, /Verified: outputs match the masked original within [0-9.e+-]+ \(tolerance [0-9.e+-]+\)/);
  assert.match(text, /Speed: measured [0-9.]+× faster \(ideal [0-9.]+× from MACs\): [0-9.]+ → [0-9.]+ ms \(p10-p90 [0-9.]+-[0-9.]+\), medians of 10 interleaved runs at batch 8 (× \d+ tokens|images of \d+x\d+) on cpu, \d+ threads\./);
  if (m.heldOut) {
    const acc = new RegExp(`Accuracy: ([0-9.]+)% → ([0-9.]+)% on ${m.heldOut} held-out examples of \\S+ \\(not used for calibration\\)`).exec(text);
    assert.ok(acc, text);
    // More than 5 points lost: the panel says so in words, with what to try; otherwise it says nothing of the kind.
    const lost = Number(acc[1]) - Number(acc[2]);
    const warn = applied.locator('p.warn');
    if (lost > 5.05) assert.match(await warn.innerText(), new RegExp(`^⚠ Much worse than the original: it lost ${lost.toFixed(1)} points of accuracy \\([0-9.]+% -> [0-9.]+%\\) on ${m.heldOut} examples; `));
    else if (lost < 4.95) assert.equal(await warn.count(), 0, text);
  }
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: out }).waitFor({ timeout: t(30_000) });
  await screenshot(page, `${shot}-applied`);
}

/** The SST-2 flow: text-only quick pick, Cancel mid-scoring, Score again, preset, Apply with held-out accuracy. */
async function sst2Flow(page: Page, shot: string): Promise<void> {
  const view = await openPanel(page, SST2);
  const cancel = view.locator('#cancel');
  await view.locator('#progress-text', { hasText: /Scoring: \d+ of \d+ elements/ }).waitFor({ timeout: t(120_000) });
  await closeMenus(page);
  await cancel.click();
  const again = view.locator('#score', { hasText: 'Score again' });
  await again.waitFor({ timeout: t(120_000) });
  assert.match(await view.locator('#phase').innerText(), /Scoring cancelled; nothing was written/);
  assert.equal(await view.locator('#cancel').count(), 0, 'no dead Cancel button');
  await screenshot(page, `${shot}-cancelled`);
  await again.click();
  await acceptCalibration(page, SST2.pick!);
  await view.locator('#cancel').waitFor({ timeout: t(60_000) });
  await presetAndApply(page, view, shot, SST2);
  assert.match(await view.locator('#data-line').innerText(), /Scores from 4 examples of sst2-train\.tsv \(\w+ mode on cpu, \d+ s\)/);
}

/** Drag the budget slider with the mouse, then step it with the arrow keys; focus stays on it. */
async function sliderTest(page: Page): Promise<void> {
  const view = webview(page);
  const slider = view.locator('#budget');
  await slider.scrollIntoViewIfNeeded();
  const box = (await slider.boundingBox())!;
  const v0 = Number(await slider.inputValue());
  const x0 = box.x + (box.width * (v0 - 5)) / 95, y = box.y + box.height / 2;
  await page.mouse.move(x0, y);
  await page.mouse.down();
  await page.mouse.move(x0 - 100, y, { steps: 12 });
  await page.mouse.up();
  const v1 = Number(await slider.inputValue());
  assert.ok(v0 - v1 >= 20, `dragging 100 px moved the slider from ${v0} to ${v1}`);
  await view.locator('#budget-label', { hasText: `keep ${v1}% of MACs` }).waitFor({ timeout: t(10_000) });
  await view.locator('#plan-macs', { hasText: new RegExp(`\\((${v1}\\.0|${v1 - 1}\\.\\d)% kept\\)`) }).waitFor({ timeout: t(10_000) });
  await slider.focus();
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
  await view.locator('#plan-macs', { hasText: new RegExp(`\\((${v1 - 5}\\.0|${v1 - 6}\\.\\d)% kept\\)`) }).waitFor({ timeout: t(10_000) });
  assert.equal(Number(await slider.inputValue()), v1 - 5);
  assert.equal(await view.locator('#budget:focus').count(), 1, 'focus stays on the slider');
  await view.locator('#budget-label', { hasText: `keep ${v1 - 5}% of MACs` }).waitFor({ timeout: t(10_000) });
  assert.equal(await view.locator('#applied p').count(), 0, 'the written model\'s result is cleared when the plan moves');
  await view.locator('#preset-60').click();
  await view.locator('#budget-label', { hasText: 'keep 60% of MACs' }).waitFor({ timeout: t(10_000) });
}

/** Read-at-a-glance details: one sequence length, kept-share bars, sorted neuron curves, keyboard-reachable cells. */
async function glanceTest(page: Page): Promise<void> {
  const view = webview(page);
  assert.match(await view.locator('#seq-len').innerText(), /^Every MAC count here is at sequence length [\d.]+ \(the calibration data's mean length\)\.$/);
  assert.doesNotMatch(await view.locator('#plan-macs').innerText(), /sequence length/, 'the plan does not restate a second sequence length');
  const shares = await view.locator('#head-heatmap .share-text').allInnerTexts();
  assert.equal(shares.length, SST2.layers);
  for (const x of shares) assert.match(x, /^\d+\/8$/);
  assert.equal(await view.locator('#neuron-heatmap .curve-svg').count(), SST2.layers);
  assert.match((await view.locator('#neuron-heatmap .curve-svg').first().getAttribute('aria-label')) ?? '', /^layer 0: 1024 neurons sorted by importance, \d+ kept \(cut after rank \d+\)$/);
  const first = view.locator('#head-heatmap .cell[data-layer="0"][data-col="0"]');
  await first.focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowDown');
  const focused = view.locator('#head-heatmap .cell:focus');
  assert.equal(await focused.getAttribute('data-layer'), '1');
  assert.equal(await focused.getAttribute('data-col'), '1');
  assert.match((await focused.getAttribute('aria-label')) ?? '', /^layer 1, head 1: importance [0-9.e+-]+, rank \d+ of 32, (kept|pruned)$/);
}

/** Sweep budgets: the frontier plots accuracy against speedup and MACs; clicking (or Enter on) a point selects its plan; Apply writes it. */
async function frontierTest(page: Page, shot: string): Promise<void> {
  const view = webview(page);
  await closeMenus(page);
  await view.locator('#sweep').click();
  const points = view.locator('#frontier-plot-0 .frontier-point');
  await points.nth(4).waitFor({ timeout: t(600_000) });
  assert.equal(await points.count(), 5);
  assert.equal(await view.locator('#frontier-plot-1 .frontier-point').count(), 5);
  assert.match(await view.locator('#frontier-caption').innerText(), /^Accuracy on 28 held-out examples of sst2-train\.tsv; medians of 10 interleaved runs at batch 8 × \d+ tokens on cpu \(\d+ threads\)\./);
  assert.match(await view.locator('#frontier-caption').innerText(), /The 5 sweep models \([\d.]+ MB\) are in \S*bert-sst2\.optin-sweep\.$/);
  assert.match((await points.first().getAttribute('aria-label')) ?? '', /^keep 90% of MACs: accuracy [\d.]+%, [\d.]+× faster \([\d.]+ ms, p10-p90 [\d.]+-[\d.]+\), [\d.]+% of MACs$/);
  await view.locator('#frontier').evaluate((e) => e.scrollIntoView({ block: 'start' }));
  await screenshot(page, `${shot}-frontier`);
  // Clicked on the MACs plot, where points are 10 points apart (on the speedup plot, timing noise may stack two).
  await view.locator('#frontier-plot-1 .frontier-point[data-budget="0.7"]').click();
  await view.locator('#budget-label', { hasText: 'keep 70% of MACs' }).waitFor({ timeout: t(10_000) });
  await view.locator('#frontier-plot-0 .frontier-point.selected[data-budget="0.7"]').waitFor({ timeout: t(10_000) });
  await view.locator('#frontier-plot-0 .frontier-point[data-budget="0.5"]').focus();
  await page.keyboard.press('Enter');
  await view.locator('#budget-label', { hasText: 'keep 50% of MACs' }).waitFor({ timeout: t(10_000) });
  await view.locator('#frontier-plot-1 .frontier-point.selected[data-budget="0.5"]').waitFor({ timeout: t(10_000) });
  assert.equal(await view.locator('#frontier-plot-0 .frontier-point[data-budget="0.5"]:focus').count(), 1, 'focus stays on the point after its plan arrives');
  await view.locator('#apply:not([disabled])').click();
  await view.locator('#applied p', { hasText: 'Verified' }).waitFor({ timeout: t(300_000) });
  assert.match(await view.locator('#applied').innerText(), /Wrote \S*bert-sst2\.optin-50\.onnx \(keep 50% of MACs;/);
  // A latency target: the table is measured on this machine, then the plan says what it predicts.
  await view.locator('#latency-50').click();
  const latency = view.locator('#plan-latency', { hasText: /^Latency target 50% of the dense model: predicted [\d.]+ of [\d.]+ ms \(\d+\.\d%\) at batch 8 × \d+ tokens on cpu; Apply measures it\.$/ });
  await latency.waitFor({ timeout: t(120_000) });
  const predicted = Number(/\((\d+\.\d)%\)/.exec(await latency.innerText())![1]);
  assert.ok(predicted <= 50.05, `predicted ${predicted}% of the dense latency`);
  await view.locator('#preset-60').click();
  await view.locator('#plan-latency').waitFor({ state: 'hidden', timeout: t(10_000) });
  await view.locator('#budget-label', { hasText: 'keep 60% of MACs' }).waitFor({ timeout: t(10_000) });
  // The sweep's models can be deleted from the panel (after a confirmation); the frontier and its plans stay.
  await view.locator('#delete-sweep').click();
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: t(30_000) });
  assert.match(await dialog.innerText(), /Delete the 5 models of this sweep \([\d.]+ MB in \S*bert-sst2\.optin-sweep\)\?/);
  await dialog.locator('.monaco-button', { hasText: 'Delete' }).click();
  await view.locator('#frontier-caption', { hasText: /The sweep models were deleted from \S*bert-sst2\.optin-sweep; the plans remain\./ }).waitFor({ timeout: t(30_000) });
  assert.equal(await view.locator('#delete-sweep').count(), 0);
  assert.equal(await view.locator('#frontier-plot-0 .frontier-point').count(), 5, 'the frontier stays');
}

/** Switch the colour theme from the palette, as a user does. */
async function setTheme(page: Page, theme: string): Promise<void> {
  await runCommand(page, 'Preferences: Color Theme');
  const input = page.locator('.quick-input-widget input');
  await input.fill(theme);
  await page.locator('.quick-input-list .monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${theme}$`) }) }).first().waitFor({ timeout: t(10_000) });
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: t(10_000) });
}

/** Rendered colours of the most and least important head cells and the webview background. */
async function extremes(view: FrameLocator): Promise<{ hi: string; lo: string; bg: string }> {
  return view.locator('#head-heatmap .cell[data-score]').evaluateAll((cells) => {
    const sorted = [...cells].sort((a, b) => Number((a as HTMLElement).dataset.score) - Number((b as HTMLElement).dataset.score));
    const color = (e: Element): string => getComputedStyle(e).backgroundColor;
    return { hi: color(sorted[sorted.length - 1]!), lo: color(sorted[0]!), bg: getComputedStyle(document.body).getPropertyValue('--vscode-editor-background') };
  });
}

/** The heatmap in three themes: screenshots, and a contrast of at least 3:1 between the extreme cells. */
async function themesTest(page: Page, shot: string): Promise<void> {
  const view = webview(page);
  await view.locator('#plan').evaluate((e) => e.scrollIntoView({ block: 'start' }));
  const themes: Array<[string, string]> = [['Light Modern', 'vscode-light'], ['Dark High Contrast', 'vscode-high-contrast'], ['Dark Modern', 'vscode-dark']];
  const seen: string[] = [];
  for (const [theme, cls] of themes) {
    await setTheme(page, theme);
    await view.locator(`body.${cls}`).waitFor({ timeout: t(20_000) });
    let e = await extremes(view);
    for (let i = 0; i < 20 && contrast(parseColor(e.hi)!, parseColor(e.bg) ?? [0, 0, 0]) < contrast(parseColor(e.lo)!, parseColor(e.bg) ?? [0, 0, 0]); i++) {
      await page.waitForTimeout(250);
      e = await extremes(view);
    }
    const ratio = contrast(parseColor(e.hi)!, parseColor(e.lo)!);
    seen.push(`${theme}: ${e.hi} vs ${e.lo} on ${e.bg.trim()} = ${ratio.toFixed(2)}:1`);
    assert.ok(ratio >= 3, `most vs least important cell in ${theme}: ${seen.at(-1)}`);
    assert.ok(contrast(parseColor(e.hi)!, parseColor(e.bg)!) >= 3, `most important cell vs background in ${theme}: ${seen.at(-1)}`);
    await screenshot(page, `${shot}-theme-${theme.toLowerCase().replace(/ /g, '-')}`);
  }
  console.log(`    contrast: ${seen.join('; ')}`);
}

/** The ViT on its image folder: the quick pick preselects the folder (not its class subfolders). */
async function vitFlow(page: Page, shot: string): Promise<void> {
  await runCommand(page, 'View: Close All Editors');
  const view = await openPanel(page, VIT);
  await presetAndApply(page, view, shot, VIT);
}

/** Panel tests on the bundled samples (SST-2 BERT with sentences, digits ViT with images), run on the dev host and on the installed VSIX. */
export function sampleTests(shot: string): UiTest[] {
  return [
    { name: `${shot}: SST-2 BERT: quick pick offers only text data; Cancel mid-scoring shows a working "Score again"; preset; Apply shows held-out accuracy and speed`, run: (p) => sst2Flow(p, `${shot}-sst2`) },
    { name: `${shot}: the budget slider drags with the mouse and steps with arrow keys, keeping focus; moving it clears the written result`, run: sliderTest },
    { name: `${shot}: one sequence length, kept-share bars, sorted neuron curves; heatmap cells reachable with the arrow keys`, run: glanceTest },
    { name: `${shot}: Sweep budgets plots accuracy against measured speedup and MACs; a point (click or Enter) selects its plan; Apply writes it`, run: (p) => frontierTest(p, shot) },
    { name: `${shot}: heatmap in Light Modern, Dark High Contrast and Dark Modern: most vs least important cells at least 3:1`, run: (p) => themesTest(p, shot) },
    { name: `${shot}: digits ViT scored on its image folder (quick pick preselects it); Apply writes a verified model with held-out accuracy`, run: (p) => vitFlow(p, `${shot}-vit`) },
  ];
}

/** A CNN: right-click > Prune with OPTIN shows blocks x channel bins, plans and applies like a transformer. */
async function cnnFlow(page: Page): Promise<void> {
  await runCommand(page, 'View: Close All Editors');
  const file = 'resnet-mnist.onnx';
  await runFromExplorer(page, file, 'Prune with OPTIN', page.locator('.tab', { hasText: `OPTIN: ${file}` }));
  const view = webview(page);
  await view.locator('h1', { hasText: file }).waitFor({ timeout: t(60_000) });
  assert.match(await view.locator('header .meta').first().innerText(), /cnn · vision · 6 prunable channel groups/);
  assert.equal(await view.locator('#layers vscode-data-grid-row:not([row-type="header"])').count(), 6);
  await view.locator('#plan').waitFor({ timeout: t(300_000) });
  assert.equal(await view.locator('#head-heatmap').count(), 0, 'no head heatmap for a CNN');
  const rows = view.locator('#channel-heatmap .hm-row');
  assert.equal(await rows.count(), 6);
  assert.equal((await rows.first().locator('.hm-label').innerText()).trim(), 'layer1.0.conv1');
  assert.equal(await view.locator('#channel-heatmap .cell.unscored').count(), 0, 'every channel scored');
  const title = await view.locator('#channel-heatmap .hm-grid .cell').first().getAttribute('title');
  assert.match(title ?? '', /^layer1\.0\.conv1, channels 0–\d+: mean importance [0-9.e+-]+, \d+ of \d+ kept$/);
  await view.locator('#channel-heatmap').scrollIntoViewIfNeeded();
  await screenshot(page, 'cnn-heatmap');
  await closeMenus(page);
  await view.locator('#preset-50').click();
  await view.locator('#plan-macs', { hasText: /\((50\.0|4[89]\.\d)% kept\)/ }).waitFor({ timeout: t(10_000) });
  assert.equal(await view.locator('#plan-latency').count() + await view.locator('#latency-50').count(), 1, 'no latency targets for channel groups (only the hidden status line)');
  assert.equal((await view.locator('#plan-layers vscode-data-grid-row:not([row-type="header"])').first().innerText()).split(/\s+/)[0], 'layer1.0.conv1');
  await view.locator('#apply:not([disabled])').click();
  const applied = view.locator('#applied');
  await applied.locator('p', { hasText: 'Verified' }).waitFor({ timeout: t(300_000) });
  assert.match(await applied.innerText(), /Wrote \S*resnet-mnist\.optin-50\.onnx \(keep 50% of MACs; .*; repaired: kept weights refit to the original outputs\)/, 'channel groups are repaired by default (optin.channelRepair)');
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'resnet-mnist.optin-50.onnx' }).waitFor({ timeout: t(30_000) });
  await screenshot(page, 'cnn-applied');
}

/** UI tests against the extension loaded from the development folder, on the small test workspace. */
export const devTests: UiTest[] = [
  {
    name: 'explorer context menu shows "Prune with OPTIN" on an .onnx file only',
    async run(page) {
      await page.locator('.monaco-workbench').waitFor();
      await runFromExplorer(page, 'bert-tiny.onnx', 'Prune with OPTIN', page.locator('.tab', { hasText: 'OPTIN: bert-tiny.onnx' }));
      const onnx = await explorerContextMenuLabels(page, 'bert-tiny.onnx');
      assert.ok(onnx.includes('Prune with OPTIN'), `menu was: ${onnx.join(', ')}`);
      const other = await explorerContextMenuLabels(page, 'notes.txt');
      assert.ok(!other.includes('Prune with OPTIN'), 'must not appear on other files');
    },
  },
  {
    name: 'right-click > Prune with OPTIN: summary, live heatmap (layers x heads cells), budget preset, Apply writes a model that runs',
    run: async (page) => presetAndApply(page, await openPanel(page, TINY), 'panel', TINY),
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
  { name: 'a CNN (ResNet): right-click > Prune with OPTIN shows blocks x channel bins; preset; Apply writes a verified, smaller model', run: cnnFlow },
];

/** Tests only the installed VSIX can answer: what a user sees of the package before using it. */
export const vsixTests: UiTest[] = [
  {
    name: 'vsix: the extension\'s details page renders its README and icon (no broken image); the walkthrough lists open, data, score, apply, sweep and renders its screenshots',
    async run(page) {
      await runCommand(page, 'View: Close All Editors');
      await runCommand(page, 'View: Show Extensions');
      const row = page.locator('.extensions-viewlet .monaco-list-row', { hasText: 'OPTIN' }).first();
      await row.waitFor({ timeout: t(30_000) });
      await row.click();
      const editor = page.locator('.extension-editor');
      await editor.waitFor({ timeout: t(30_000) });
      assert.match(await editor.locator('.header .name').first().innerText(), /OPTIN/);
      const icon = editor.locator('.header .icon').first();
      await icon.waitFor({ timeout: t(10_000) });
      assert.ok(await icon.evaluate((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth > 0), 'the icon renders');
      const readme = webview(page);
      await readme.locator('h1', { hasText: 'OPTIN' }).waitFor({ timeout: t(30_000) });
      await readme.locator('h2', { hasText: 'Start in 30 seconds' }).waitFor({ timeout: t(10_000) });
      assert.equal(await readme.locator('img').count(), 0, 'no image placeholder on the details page (VS Code shows none of an installed README)');
      await screenshot(page, 'vsix-details');
      await runCommand(page, 'View: Close All Editors');
      await runCommand(page, 'Welcome: Open Walkthrough...');
      const pick = page.locator('.quick-input-list .monaco-list-row', { hasText: 'Get started with OPTIN' }).first();
      await pick.waitFor({ timeout: t(20_000) });
      await pick.click();
      for (const step of ['Open a model', 'Pick calibration data', 'Score heads, neurons and channels', 'Choose a budget and apply', 'Sweep the frontier']) {
        await page.locator('.getting-started-step', { hasText: step }).first().waitFor({ timeout: t(20_000) });
      }
      // A step with a screenshot: the image is read from the installed extension and renders.
      await page.locator('.getting-started-step', { hasText: 'Choose a budget and apply' }).first().click();
      const shot = page.locator('.getting-started-media img[alt^="The panel after Apply"]').first();
      await shot.waitFor({ state: 'attached', timeout: t(20_000) });
      await page.waitForFunction((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth > 0, await shot.elementHandle(), { timeout: t(20_000) });
      await screenshot(page, 'vsix-walkthrough');
    },
  },
];

/** Open a model from the palette by its workspace-relative path (three files share one name here); other panels stay open. */
async function openByPath(page: Page, rel: string): Promise<void> {
  // With a panel active, the palette command acts on that panel's model: make a text file the active editor first.
  await runCommand(page, 'Go to File...');
  await page.locator('.quick-input-widget input').fill('notes.txt');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'notes.txt' }).first().click();
  // The tab may be open already from an earlier case: wait until it is the active one.
  await page.locator('.tab.active', { hasText: 'notes.txt' }).waitFor({ timeout: t(20_000) });
  await runCommand(page, 'OPTIN: Prune with OPTIN');
  await page.locator('.quick-input-widget input').fill(rel);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: rel }).first();
  await row.waitFor({ timeout: t(20_000) });
  await row.click();
  await row.waitFor({ state: 'detached', timeout: t(20_000) }).catch(() => undefined);
}

/** The calibration quick pick's rows: label and description. */
async function pickRows(page: Page): Promise<Array<{ label: string; description: string }>> {
  const rows = page.locator('.quick-input-list .monaco-list-row');
  await rows.first().waitFor({ timeout: t(60_000) });
  const out: Array<{ label: string; description: string }> = [];
  for (let i = 0; i < (await rows.count()); i++) {
    out.push({ label: (await rows.nth(i).locator('.label-name').innerText()).trim(), description: (await rows.nth(i).locator('.label-description').innerText().catch(() => '')).trim() });
  }
  return out;
}

/** Tests on a workspace that keeps models and data in sibling folders (models/<name>/model.onnx, data/). */
export const layoutTests: UiTest[] = [
  {
    name: 'sibling folders: the calibration pick offers the right data first for a text, a vision and a CNN model; same-named models get distinct tab titles',
    async run(page) {
      const cases = [
        { rel: 'models/bert-sst2/model.onnx', first: '../../data/sst2/train.tsv', title: 'OPTIN: model.onnx · bert-sst2' },
        { rel: 'models/vit-digits/model.onnx', first: '../../data/digits/train', title: 'OPTIN: model.onnx · vit-digits' },
        { rel: 'models/resnet-mnist/model.onnx', first: '../../data/digits/train', title: 'OPTIN: model.onnx · resnet-mnist' },
      ];
      await runCommand(page, 'View: Close All Editors');
      for (const c of cases) {
        await openByPath(page, c.rel);
        const rows = await pickRows(page);
        assert.equal(rows[0]?.label, c.first, `${c.rel}: ${rows.map((r) => r.label).join(' | ')}`);
        assert.match(rows[0]!.description, /nearby folder/);
        const test = rows.findIndex((r) => /test/.test(r.label));
        assert.equal(test, rows.length - 3, `${c.rel}: the test split is offered last (before Browse and Synthetic): ${rows.map((r) => r.label).join(' | ')}`);
        await screenshot(page, `layout-pick-${c.rel.split('/')[1]}`);
        await page.keyboard.press('Escape');
        await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: t(10_000) });
      }
      // Three panels of same-named models open at once: each title names its folder.
      for (const c of cases) await page.locator('.tab', { hasText: c.title }).waitFor({ timeout: t(30_000) });
      await screenshot(page, 'layout-titles');
    },
  },
  {
    name: 'sibling folders: scoring ends with the focus on the budget; "Score again" offers the last choice first; Apply evaluates on the test split beside the training data, leaves the focus on its result, asks before overwriting',
    async run(page) {
      await runCommand(page, 'View: Close All Editors');
      await openByPath(page, 'models/bert-sst2/model.onnx');
      let rows = await pickRows(page);
      const testRow = rows.findIndex((r) => r.label === '../../data/sst2/test.tsv');
      assert.ok(testRow > 0, rows.map((r) => r.label).join(' | '));
      await page.locator('.quick-input-list .monaco-list-row').nth(testRow).click();
      const view = webview(page);
      const again = view.locator('#score', { hasText: 'Score again' });
      await again.waitFor({ timeout: t(300_000) });
      assert.match(await view.locator('#data-line').innerText(), /examples of test\.tsv/);
      await view.locator('#budget:focus').waitFor({ timeout: t(10_000) });
      await closeMenus(page);
      await again.click();
      rows = await pickRows(page);
      assert.deepEqual(rows[0], { label: '../../data/sst2/test.tsv', description: 'last used for this model' }, rows.map((r) => `${r.label} (${r.description})`).join(' | '));
      const trainRow = rows.findIndex((r) => r.label === '../../data/sst2/train.tsv');
      await page.locator('.quick-input-list .monaco-list-row').nth(trainRow).click();
      await view.locator('#data-line', { hasText: /examples of train\.tsv/ }).waitFor({ timeout: t(300_000) });
      await view.locator('#apply:not([disabled])').click();
      const applied = view.locator('#applied');
      await applied.locator('p', { hasText: 'Verified' }).waitFor({ timeout: t(300_000) });
      assert.match(await applied.innerText(), /held-out examples of test\.tsv/);
      await view.locator('#applied:focus').waitFor({ timeout: t(10_000) });
      await screenshot(page, 'layout-applied-focus');
      // Apply again at the same budget: asked before anything is overwritten; Keep Both writes beside it.
      await view.locator('#apply:not([disabled])').click();
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ timeout: t(30_000) });
      assert.match(await dialog.innerText(), /model\.optin-60\.onnx exists already/);
      await dialog.locator('.monaco-button', { hasText: 'Keep Both' }).click();
      await applied.locator('p', { hasText: /Wrote \S*model\.optin-60-2\.onnx/ }).waitFor({ timeout: t(300_000) });
      await view.locator('#applied:focus').waitFor({ timeout: t(10_000) });
    },
  },
];
