import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Browser } from 'playwright-core';
import { CodeServer, launchBrowser, openWorkbench, tools, type Tools } from './harness';
import { OUTPUT, screenshot, t as scaled } from './ui';
import { devTests, layoutTests, sampleTests, vsixTests, type UiTest } from './uiTests';
import { materialize } from '../fixtures/materialize';

/**
 * Real-VS-Code test runner: starts code-server, runs the extension's mocha suite inside the
 * real extension host, then drives the workbench with Playwright. Prints "N passed, N failed".
 * Usage: node out/test/e2e/run.js [--vsix path/to.vsix | --host-only | --dev-ui-only | --samples-only | --layout-only] (OPTIN_TEST_GREP filters the extension host suite)
 */
const ROOT = path.resolve(__dirname, '..', '..', '..');
const FIX = path.join(ROOT, 'test', 'fixtures', 'models');

interface Tally { passed: number; failed: number; failures: string[] }

function makeWorkspace(): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-ws-'));
  fs.copyFileSync(path.join(FIX, 'torch-bert-like-random', 'model-opset17.onnx'), path.join(ws, 'bert-tiny.onnx'));
  // The engine process aborts while scoring this copy (OPTIN_FAULT_INJECT in the extension host's environment).
  fs.copyFileSync(path.join(FIX, 'torch-bert-like-random', 'model-opset17.onnx'), path.join(ws, 'crash.onnx'));
  fs.copyFileSync(path.join(FIX, 'gpt2-decoder', 'model.onnx'), path.join(ws, 'gpt2-decoder.onnx'));
  fs.copyFileSync(path.join(FIX, 'ort-bert-toy', 'model.onnx'), path.join(ws, 'bert-toy.onnx'));
  fs.copyFileSync(path.join(FIX, 'torch-bert-like-random', 'model-opset14.onnx'), path.join(ws, 'bert-tiny-14.onnx'));
  fs.copyFileSync(path.join(FIX, 'resnet-mnist', 'model-opset17.onnx'), path.join(ws, 'resnet-mnist.onnx'));
  fs.copyFileSync(path.join(FIX, 'llama-sst2', 'model.onnx'), path.join(ws, 'llama-decoder.onnx'));
  // Its export with the key/value cache (random weights from the skeleton), for decode-step latency targets.
  fs.copyFileSync(materialize(path.join(FIX, 'llama-sst2', 'model-with-past.skeleton.onnx')), path.join(ws, 'llama-cached.onnx'));
  // A hybrid (Swin stages + an FPN-style head) in its own folder, with its preprocessor config.
  fs.mkdirSync(path.join(ws, 'swin'));
  fs.copyFileSync(path.join(FIX, 'swin-fpn-scenes', 'model-opset17.onnx'), path.join(ws, 'swin', 'swin-fpn-scenes.onnx'));
  fs.copyFileSync(path.join(FIX, 'swin-fpn-scenes', 'preprocessor_config.json'), path.join(ws, 'swin', 'preprocessor_config.json'));
  fs.writeFileSync(path.join(ws, 'notes.txt'), 'not a model\n');
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'optin.calibration.data': 'synthetic', 'optin.calibration.samples': 4, 'optin.executionProvider': 'cpu', 'optin.existingOutput': 'replace' }, null, 1));
  return ws;
}

/**
 * The bundled samples as a user has them: the SST-2 BERT with its tokenizer and a few training
 * sentences, and the digits ViT with its preprocessor config and an image folder of digits. No
 * calibration setting: the quick pick offers the data that fits each model.
 */
function makeSampleWorkspace(): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-sample-'));
  const src = path.join(FIX, 'bert-sst2');
  fs.copyFileSync(path.join(src, 'model-opset17.onnx'), path.join(ws, 'bert-sst2.onnx'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(src, f), path.join(ws, f));
  const train = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'data', 'sst2', 'train.tsv'), 'utf8').split('\n').slice(0, 33).join('\n') + '\n';
  fs.writeFileSync(path.join(ws, 'sst2-train.tsv'), train);
  fs.copyFileSync(path.join(FIX, 'vit-digits', 'model-opset17.onnx'), path.join(ws, 'vit-digits.onnx'));
  fs.copyFileSync(path.join(FIX, 'vit-digits', 'preprocessor_config.json'), path.join(ws, 'preprocessor_config.json'));
  const digits = path.join(ROOT, 'test', 'fixtures', 'data', 'digits', 'train');
  for (const c of fs.readdirSync(digits)) {
    fs.mkdirSync(path.join(ws, 'digits-train', c), { recursive: true });
    for (const f of fs.readdirSync(path.join(digits, c)).sort().slice(0, 4)) fs.copyFileSync(path.join(digits, c, f), path.join(ws, 'digits-train', c, f));
  }
  fs.mkdirSync(path.join(ws, '.vscode'));
  // These flows apply the same budgets more than once: replace without asking (the layout suite tests the question).
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'optin.calibration.samples': 4, 'optin.executionProvider': 'cpu', 'optin.existingOutput': 'replace', 'workbench.secondarySideBar.defaultVisibility': 'hidden', 'chat.disableAIFeatures': true }, null, 1));
  return ws;
}

/**
 * Models and data in sibling folders, as people keep them: three models all named model.onnx under
 * models/<name>/, their data under data/ with train and test splits.
 */
function makeLayoutWorkspace(): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-layout-'));
  const put = (from: string, to: string): void => {
    fs.mkdirSync(path.dirname(path.join(ws, to)), { recursive: true });
    fs.copyFileSync(from, path.join(ws, to));
  };
  for (const f of ['model-opset17.onnx', 'tokenizer.json', 'tokenizer_config.json']) put(path.join(FIX, 'bert-sst2', f), `models/bert-sst2/${f.endsWith('.onnx') ? 'model.onnx' : f}`);
  for (const f of ['model-opset17.onnx', 'preprocessor_config.json']) put(path.join(FIX, 'vit-digits', f), `models/vit-digits/${f.endsWith('.onnx') ? 'model.onnx' : f}`);
  put(path.join(FIX, 'resnet-mnist', 'model-opset17.onnx'), 'models/resnet-mnist/model.onnx');
  if (fs.existsSync(path.join(FIX, 'resnet-mnist', 'preprocessor_config.json'))) put(path.join(FIX, 'resnet-mnist', 'preprocessor_config.json'), 'models/resnet-mnist/preprocessor_config.json');
  const sst2 = path.join(ROOT, 'test', 'fixtures', 'data', 'sst2');
  fs.mkdirSync(path.join(ws, 'data', 'sst2'), { recursive: true });
  for (const [from, to, n] of [['train.tsv', 'train.tsv', 33], ['test.tsv', 'test.tsv', 41]] as const) {
    fs.writeFileSync(path.join(ws, 'data', 'sst2', to), fs.readFileSync(path.join(sst2, from), 'utf8').split('\n').slice(0, n).join('\n') + '\n');
  }
  for (const split of ['train', 'test']) {
    const digits = path.join(ROOT, 'test', 'fixtures', 'data', 'digits', split);
    for (const c of fs.readdirSync(digits)) {
      for (const f of fs.readdirSync(path.join(digits, c)).sort().slice(0, 3)) put(path.join(digits, c, f), `data/digits/${split}/${c}/${f}`);
    }
  }
  fs.writeFileSync(path.join(ws, 'notes.txt'), 'models in models/, their data in data/\n');
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'optin.calibration.samples': 4, 'optin.executionProvider': 'cpu', 'workbench.secondarySideBar.defaultVisibility': 'hidden', 'chat.disableAIFeatures': true }, null, 1));
  return ws;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`${what} timed out after ${ms / 1000} s`)), ms); });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Copy code-server's log and the workbench/extension-host logs next to a failure's screenshot. */
function keepLogs(cs: CodeServer, tag: string): void {
  const dest = path.join(OUTPUT, `${tag}-logs`);
  try {
    fs.mkdirSync(dest, { recursive: true });
    fs.copyFileSync(cs.logFile, path.join(dest, 'code-server.log'));
    const logs = path.join(cs.tmp, 'ud', 'logs');
    if (fs.existsSync(logs)) fs.cpSync(logs, path.join(dest, 'workbench'), { recursive: true });
    console.log(`  logs kept in ${dest}`);
  } catch (e) {
    console.log(`  could not keep logs: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function extensionSuite(t: Tools, browser: Browser, ws: string): Promise<Tally> {
  const cs = await CodeServer.start(t);
  const resultFile = path.join(cs.tmp, 'result.json');
  try {
    const env = { OPTIN_TEST_RESULT: resultFile, OPTIN_FAULT_INJECT: 'abort:crash.onnx:scoring layer 1', ...(process.env.OPTIN_TEST_GREP ? { OPTIN_TEST_GREP: process.env.OPTIN_TEST_GREP } : {}) };
    const url = cs.url(ws, [
      ['extensionDevelopmentPath', cs.remote(ROOT)],
      ['extensionTestsPath', cs.remote(path.join(ROOT, 'out', 'test', 'suite', 'index'))],
      ['extensionEnvironment', JSON.stringify(env)],
    ]);
    const page = await browser.newPage();
    const exit = new Promise<number>((resolve) => {
      void page.exposeFunction('codeAutomationExit', (code: number) => resolve(code));
    });
    await page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
      if (process.env.OPTIN_E2E_VERBOSE) console.log(`[host ${type}]`, ...args);
    });
    await page.goto(url);
    const code = await withTimeout(exit, scaled(10 * 60_000), 'extension test suite');
    if (!fs.existsSync(resultFile)) {
      keepLogs(cs, 'FAILED-extension-suite');
      return { passed: 0, failed: 1, failures: [`extension suite exited with ${code} without results; code-server log tail:\n${fs.readFileSync(cs.logFile, 'utf8').slice(-2000)}`] };
    }
    const r = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as Tally;
    if (r.failed > 0) keepLogs(cs, 'FAILED-extension-suite');
    return r;
  } finally {
    cs.stop();
  }
}

async function uiSuite(t: Tools, browser: Browser, ws: string, tests: UiTest[], opts: { extensionsDir?: string; dev: boolean }): Promise<Tally> {
  const cs = await CodeServer.start(t, opts.extensionsDir ? { extensionsDir: opts.extensionsDir } : {});
  const tally: Tally = { passed: 0, failed: 0, failures: [] };
  try {
    const url = cs.url(ws, opts.dev ? [['extensionDevelopmentPath', cs.remote(ROOT)]] : undefined);
    const page = await openWorkbench(browser, url);
    await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: scaled(60_000) });
    for (const test of tests) {
      try {
        await withTimeout(test.run(page), scaled(240_000), test.name);
        tally.passed++;
        console.log(`  ✔ ${test.name}`);
      } catch (e) {
        tally.failed++;
        const msg = `${test.name}: ${e instanceof Error ? e.message : String(e)}`;
        tally.failures.push(msg);
        console.log(`  ✘ ${msg}`);
        const tag = `FAILED-${test.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`;
        await screenshot(page, tag).catch(() => undefined);
        keepLogs(cs, tag);
      }
      await page.keyboard.press('Escape').catch(() => undefined);
    }
  } finally {
    cs.stop();
  }
  return tally;
}

function installVsix(t: Tools, vsix: string): string {
  const ext = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-vsix-ext-'));
  const r = spawnSync(t.node24, [t.codeServer, '--extensions-dir', ext, '--install-extension', path.resolve(vsix)], {
    encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: path.join(ext, '.xdg') },
  });
  if (r.status !== 0) throw new Error(`installing ${vsix} failed:\n${r.stdout}\n${r.stderr}`);
  return ext;
}

/** OPTIN_UI_GREP keeps only the UI tests whose name matches (for running one while developing it). */
function only(tests: UiTest[]): UiTest[] {
  const re = process.env.OPTIN_UI_GREP ? new RegExp(process.env.OPTIN_UI_GREP) : undefined;
  return re ? tests.filter((x) => re.test(x.name)) : tests;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const vsixIdx = args.indexOf('--vsix');
  const vsix = vsixIdx >= 0 ? args[vsixIdx + 1] : undefined;
  const t = tools();
  const ws = makeWorkspace();
  const samples = makeSampleWorkspace();
  const layout = makeLayoutWorkspace();
  const browser = await launchBrowser(t);
  const total: Tally = { passed: 0, failed: 0, failures: [] };
  const add = (name: string, r: Tally): void => {
    console.log(`${name}: ${r.passed} passed, ${r.failed} failed`);
    for (const f of r.failures) console.log(`  FAIL ${f}`);
    total.passed += r.passed;
    total.failed += r.failed;
  };
  try {
    if (vsix) {
      add('installed VSIX, bundled samples', await uiSuite(t, browser, samples, only([...sampleTests('vsix'), ...vsixTests]), { extensionsDir: installVsix(t, vsix), dev: false }));
    } else if (args.includes('--dev-ui-only')) {
      add('workbench UI', await uiSuite(t, browser, ws, devTests, { dev: true }));
    } else if (args.includes('--host-only')) {
      add('extension host', await extensionSuite(t, browser, ws));
    } else if (args.includes('--layout-only')) {
      add('sibling folders UI', await uiSuite(t, browser, layout, only(layoutTests), { dev: true }));
    } else if (args.includes('--samples-only')) {
      add('panel UI, bundled samples', await uiSuite(t, browser, samples, sampleTests('dev'), { dev: true }));
    } else {
      console.log('extension host suite (mocha in a real VS Code):');
      add('extension host', await extensionSuite(t, browser, ws));
      console.log('workbench UI tests (Playwright):');
      add('workbench UI', await uiSuite(t, browser, ws, devTests, { dev: true }));
      console.log('panel UI tests on the bundled samples (Playwright):');
      add('panel UI, bundled samples', await uiSuite(t, browser, samples, sampleTests('dev'), { dev: true }));
      console.log('UI tests on models and data in sibling folders (Playwright):');
      add('sibling folders UI', await uiSuite(t, browser, layout, layoutTests, { dev: true }));
    }
  } finally {
    await browser.close();
    for (const d of [ws, samples, layout]) fs.rmSync(d, { recursive: true, force: true });
  }
  console.log(`e2e: ${total.passed} passed, ${total.failed} failed`);
  return total.failed > 0 || total.passed === 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`e2e runner failed: ${e instanceof Error ? e.stack : String(e)}`);
    console.log('e2e: 0 passed, 1 failed');
    process.exit(1);
  },
);
