// One esbuild script for every bundle: extension host, engine worker, CLI, webview, and (--tests) the test suites.
import * as esbuild from 'esbuild';
import { readdirSync, existsSync, rmSync, mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');
const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', target: 'node20' };
const nodeExternal = ['vscode', 'onnxruntime-node', 'mocha', 'sharp', 'playwright-core'];

const builds = [
  { ...common, platform: 'node', format: 'cjs', entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', external: nodeExternal },
  { ...common, platform: 'node', format: 'cjs', entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', external: nodeExternal },
  { ...common, platform: 'browser', format: 'iife', target: 'es2022', entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js' },
];
{
  builds.push({ ...common, platform: 'node', format: 'cjs', entryPoints: ['src/engine/worker/entry.ts'], outfile: 'dist/engineWorker.js', external: nodeExternal });
}

if (args.has('--bench')) {
  const bench = readdirSync('bench').filter((f) => f.endsWith('.ts')).map((f) => join('bench', f));
  builds.push({ ...common, platform: 'node', format: 'cjs', entryPoints: bench, outdir: 'out/bench', external: nodeExternal });
}

if (args.has('--tests')) {
  rmSync('out', { recursive: true, force: true });
  const list = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f)) : []);
  const unit = list('test/unit');
  if (unit.length) builds.push({ ...common, platform: 'node', format: 'cjs', entryPoints: unit, outdir: 'out/test/unit', external: nodeExternal });
  const pack = list('test/package').filter((f) => f.endsWith('.test.ts'));
  if (pack.length) builds.push({ ...common, platform: 'node', format: 'cjs', entryPoints: pack, outdir: 'out/test/package', external: nodeExternal });
  const suite = list('test/suite');
  if (suite.length) builds.push({ ...common, platform: 'node', format: 'cjs', entryPoints: suite, outdir: 'out/test/suite', external: nodeExternal });
  const e2e = list('test/e2e');
  if (e2e.length) builds.push({ ...common, platform: 'node', format: 'cjs', entryPoints: ['test/e2e/run.ts'], outdir: 'out/test/e2e', external: nodeExternal });
  const electron = list('test/electron');
  if (electron.length) builds.push({ ...common, platform: 'node', format: 'cjs', entryPoints: electron, outdir: 'out/test/electron', external: [...nodeExternal, '@vscode/test-electron'] });
}

await Promise.all(builds.map((b) => esbuild.build(b)));
// The webview toolkit is loaded by the webview from dist/, so the VSIX needs no copy of its package.
mkdirSync('dist', { recursive: true });
copyFileSync('node_modules/@vscode/webview-ui-toolkit/dist/toolkit.min.js', 'dist/toolkit.min.js');
