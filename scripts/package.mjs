// Build one VSIX per platform, each carrying only its platform's onnxruntime binaries.
// Usage: node scripts/package.mjs [linux-x64 ...]   (default: all supported targets)
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, statSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const TARGETS = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(TARGETS);
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const base = readFileSync('.vscodeignore', 'utf8');
mkdirSync('dist/vsix', { recursive: true });
execFileSync(process.execPath, ['scripts/build.mjs', '--production'], { stdio: 'inherit' });
for (const t of wanted) {
  const dir = TARGETS[t];
  if (!dir) throw new Error(`unknown target ${t}; known: ${Object.keys(TARGETS).join(', ')}`);
  const ignore = join('dist', `.vscodeignore-${t}`);
  writeFileSync(ignore, `${base}!node_modules/onnxruntime-node/bin/napi-v6/${dir}/**\n`);
  const out = join('dist', 'vsix', `${pkg.name}-${t}-${pkg.version}.vsix`);
  rmSync(out, { force: true });
  execFileSync(process.execPath, ['node_modules/@vscode/vsce/vsce', 'package', '--target', t, '--ignoreFile', ignore, '--out', out, '--allow-missing-repository', '--skip-license', '--no-rewrite-relative-links'], { stdio: ['ignore', 'inherit', 'inherit'] });
  console.log(`${t}: ${out} ${(statSync(out).size / 1048576).toFixed(1)} MB`);
}
