// Build one VSIX per platform. Each VSIX is packed from a staging folder holding the bundles, the
// media and, under dist/node_modules, every runtime package the bundles load (onnxruntime-node with
// only that platform's binaries, sharp with that platform's prebuilt binary and libvips). Packages
// of other platforms are fetched from the npm registry with `npm pack` (cached in ~/.cache/optin-vsix).
// Usage: node scripts/package.mjs [linux-x64 ...]   (default: all supported targets)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const TARGETS = {
  'linux-x64': { ort: 'linux/x64', sharp: 'linux-x64', libvips: true },
  'linux-arm64': { ort: 'linux/arm64', sharp: 'linux-arm64', libvips: true },
  'darwin-arm64': { ort: 'darwin/arm64', sharp: 'darwin-arm64', libvips: true },
  'win32-x64': { ort: 'win32/x64', sharp: 'win32-x64', libvips: false },
  'win32-arm64': { ort: 'win32/arm64', sharp: 'win32-arm64', libvips: false },
};
const SKIP = /(\.md|\.d\.ts|\.d\.cts|\.map|\.mjs)$/i;
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(TARGETS);
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const sharpPkg = JSON.parse(readFileSync('node_modules/sharp/package.json', 'utf8'));
const cache = join(process.env.OPTIN_VSIX_CACHE ?? join(homedir(), '.cache', 'optin-vsix'));

/** Folder of an npm package for this build: node_modules when installed, else fetched once with npm pack. */
function packageDir(name, version) {
  const local = join('node_modules', name);
  if (existsSync(join(local, 'package.json')) && JSON.parse(readFileSync(join(local, 'package.json'), 'utf8')).version === version) return local;
  const dest = join(cache, `${name.replace('/', '__')}-${version}`);
  if (!existsSync(join(dest, 'package.json'))) {
    mkdirSync(cache, { recursive: true });
    const tgz = execFileSync('npm', ['pack', `${name}@${version}`, '--silent', '--pack-destination', cache], { encoding: 'utf8' }).trim().split('\n').pop();
    rmSync(`${dest}.partial`, { recursive: true, force: true });
    mkdirSync(`${dest}.partial`, { recursive: true });
    execFileSync('tar', ['xzf', join(cache, tgz), '-C', `${dest}.partial`, '--strip-components=1']);
    rmSync(dest, { recursive: true, force: true });
    execFileSync('mv', [`${dest}.partial`, dest]);
  }
  return dest;
}

/** Runtime packages of a target: [name, source folder, paths inside it to ship ('' = all)]. */
function runtimePackages(t) {
  const sharpBin = `@img/sharp-${t.sharp}`;
  const list = [
    ['onnxruntime-common', 'node_modules/onnxruntime-common', ['package.json', 'dist/cjs']],
    ['onnxruntime-node', 'node_modules/onnxruntime-node', ['package.json', 'dist', `bin/napi-v6/${t.ort}`]],
    ['sharp', 'node_modules/sharp', ['package.json', 'LICENSE', 'dist']],
    ['@img/colour', 'node_modules/@img/colour', ['']],
    ['detect-libc', 'node_modules/detect-libc', ['']],
    ['semver', 'node_modules/semver', ['']],
    [sharpBin, packageDir(sharpBin, sharpPkg.optionalDependencies[sharpBin]), ['']],
  ];
  if (t.libvips) {
    const lib = `@img/sharp-libvips-${t.sharp}`;
    list.push([lib, packageDir(lib, sharpPkg.optionalDependencies[lib]), ['']]);
  }
  return list;
}

mkdirSync('dist/vsix', { recursive: true });
execFileSync(process.execPath, ['scripts/build.mjs', '--production'], { stdio: 'inherit' });
for (const name of wanted) {
  const t = TARGETS[name];
  if (!t) throw new Error(`unknown target ${name}; known: ${Object.keys(TARGETS).join(', ')}`);
  const stage = join('dist', 'stage', name);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, 'dist'), { recursive: true });
  const manifest = { ...pkg, scripts: {}, devDependencies: {} };
  writeFileSync(join(stage, 'package.json'), JSON.stringify(manifest, null, 2));
  // The VSIX carries the users' README (README.vsix.md), not the developers' one.
  cpSync('README.vsix.md', join(stage, 'README.md'));
  for (const f of ['CHANGELOG.md', 'LICENSE']) cpSync(f, join(stage, f));
  cpSync('media', join(stage, 'media'), { recursive: true });
  for (const f of readdirSync('dist').filter((f) => f.endsWith('.js'))) cpSync(join('dist', f), join(stage, 'dist', f));
  for (const [pkgName, src, parts] of runtimePackages(t)) {
    const dest = join(stage, 'dist', 'node_modules', pkgName);
    for (const part of parts) {
      const from = join(src, part);
      if (!existsSync(from)) throw new Error(`${from} is missing; run npm ci first`);
      cpSync(from, join(dest, part), { recursive: true, filter: (p) => statSync(p).isDirectory() || !SKIP.test(p) || /LICENSE/i.test(p) });
    }
  }
  writeFileSync(join(stage, '.vscodeignore'), '');
  const out = join('dist', 'vsix', `${pkg.name}-${name}-${pkg.version}.vsix`);
  rmSync(out, { force: true });
  execFileSync(process.execPath, [join(process.cwd(), 'node_modules/@vscode/vsce/vsce'), 'package', '--target', name, '--no-dependencies', '--out', join(process.cwd(), out), '--allow-missing-repository', '--skip-license', '--no-rewrite-relative-links'], { cwd: stage, stdio: ['ignore', 'inherit', 'inherit'] });
  console.log(`${name}: ${out} ${(statSync(out).size / 1048576).toFixed(1)} MB`);
}
