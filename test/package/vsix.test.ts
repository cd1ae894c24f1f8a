import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { readZip, type ZipEntry } from './zip';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const VSIX_DIR = path.join(ROOT, 'dist', 'vsix');
/** VS Code target -> [process.platform, process.arch] of the machines it installs on. */
const TARGETS: Record<string, [string, string]> = {
  'linux-x64': ['linux', 'x64'], 'linux-arm64': ['linux', 'arm64'], 'darwin-arm64': ['darwin', 'arm64'], 'win32-x64': ['win32', 'x64'], 'win32-arm64': ['win32', 'arm64'],
};
/** Modules sharp only tries when its prebuilt binary is missing (building from source, the wasm build). */
const NEVER_LOADED = new Set(['@img/sharp-libvips-dev', '@img/sharp-wasm32']);
const BUILTIN = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

interface Pkg { name: string; version: string; main?: string; exports?: unknown; os?: string[]; cpu?: string[]; optionalDependencies?: Record<string, string> }

class Vsix {
  readonly files = new Map<string, ZipEntry>();
  constructor(file: string) {
    for (const e of readZip(fs.readFileSync(file))) if (e.name.startsWith('extension/')) this.files.set(e.name.slice('extension/'.length), e);
  }
  has(p: string): boolean { return this.files.has(path.posix.normalize(p)); }
  text(p: string): string { return this.files.get(path.posix.normalize(p))!.read().toString('utf8'); }
  json<T>(p: string): T { return JSON.parse(this.text(p)) as T; }
}

/** Static require() and import() specifiers of a file, with how each is loaded. */
function requires(code: string): Array<{ spec: string; kind: 'require' | 'import' }> {
  return [...code.matchAll(/\b(require|import)\((['"])([^'"]+)\2\)/g)].map((m) => ({ spec: m[3]!, kind: m[1] as 'require' | 'import' }));
}

function splitSpec(spec: string): { name: string; sub: string } {
  const parts = spec.split('/');
  const n = spec.startsWith('@') ? 2 : 1;
  return { name: parts.slice(0, n).join('/'), sub: parts.slice(n).join('/') };
}

/** Package folder for `name` as Node would find it from `fromDir` inside the VSIX. */
function findPackage(v: Vsix, fromDir: string, name: string): string | undefined {
  for (let d = fromDir; ; d = path.posix.dirname(d)) {
    const candidate = path.posix.join(d, 'node_modules', name);
    if (v.has(`${candidate}/package.json`)) return candidate;
    if (d === '.' || d === '/' || d === '') return undefined;
  }
}

function exportTarget(exp: unknown, key: string, kind: 'require' | 'import'): string | undefined {
  if (typeof exp === 'string') return key === '.' ? exp : undefined;
  if (!exp || typeof exp !== 'object') return undefined;
  const e = (exp as Record<string, unknown>)[key];
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object') {
    const c = e as Record<string, unknown>;
    for (const k of ['node', kind, 'default']) {
      if (typeof c[k] === 'string') return c[k] as string;
      if (c[k] && typeof c[k] === 'object' && typeof (c[k] as Record<string, unknown>).default === 'string') return (c[k] as Record<string, string>).default;
    }
  }
  return undefined;
}

function resolveFile(v: Vsix, p: string): string | undefined {
  for (const c of [p, `${p}.js`, `${p}.cjs`, `${p}.json`, `${p}/index.js`, `${p}/index.cjs`]) if (v.has(c)) return path.posix.normalize(c);
  return undefined;
}

/**
 * Walk every static require() from the bundles through the VSIX and return the problems: modules
 * or files that are missing, and platform packages that do not belong to the target.
 */
function checkClosure(v: Vsix, target: string): { problems: string[]; externals: Set<string>; packages: Set<string> } {
  const [platform, arch] = TARGETS[target]!;
  const problems: string[] = [];
  const externals = new Set<string>();
  const packages = new Set<string>();
  const seen = new Set<string>();
  const queue = [...v.files.keys()].filter((f) => /^dist\/[^/]+\.js$/.test(f));
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!/\.(c?js)$/.test(file)) return;
    const dir = path.posix.dirname(file);
    for (const { spec, kind } of requires(v.text(file))) {
      if (BUILTIN.has(spec) || spec === 'vscode') continue;
      if (spec.startsWith('.')) {
        const f = resolveFile(v, path.posix.join(dir, spec));
        if (f) visit(f);
        else problems.push(`${file} requires ${spec}, which is not in the VSIX`);
        continue;
      }
      const { name, sub } = splitSpec(spec);
      if (/^dist\/[^/]+\.js$/.test(file)) externals.add(name);
      const pkgDir = findPackage(v, dir, name);
      if (!pkgDir) {
        const owner = file.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//)?.[1];
        const optional = owner ? v.json<Pkg>(`${owner}/package.json`).optionalDependencies ?? {} : {};
        const otherPlatform = name in optional && !name.endsWith(`-${target}`);
        if (!otherPlatform && !NEVER_LOADED.has(name)) problems.push(`${file} requires ${spec}, which is not in the VSIX`);
        continue;
      }
      packages.add(name);
      const pkg = v.json<Pkg>(`${pkgDir}/package.json`);
      if ((pkg.os && !pkg.os.includes(platform)) || (pkg.cpu && !pkg.cpu.includes(arch))) problems.push(`${name} is built for ${pkg.os}/${pkg.cpu}, not ${target}`);
      if (pkg.os || pkg.cpu) {
        for (const dep of Object.keys(pkg.optionalDependencies ?? {})) {
          if (!findPackage(v, pkgDir, dep)) problems.push(`${name} needs its native library ${dep}, which is not in the VSIX`);
          else packages.add(dep);
        }
      }
      const entry = exportTarget(pkg.exports, sub ? `./${sub}` : '.', kind) ?? (sub || pkg.main || 'index.js');
      const f = resolveFile(v, path.posix.join(pkgDir, entry));
      if (f) visit(f);
      else problems.push(`${spec} (required by ${file}) resolves to ${path.posix.join(pkgDir, entry)}, which is not in the VSIX`);
    }
  };
  for (const f of queue) visit(f);
  return { problems, externals, packages };
}

function extract(v: Vsix, dest: string): void {
  for (const [name, e] of v.files) {
    const out = path.join(dest, name);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, e.read());
  }
}

describe('VSIX packages', function () {
  this.timeout(300_000);
  const built = fs.existsSync(VSIX_DIR) ? fs.readdirSync(VSIX_DIR).filter((f) => f.endsWith('.vsix')) : [];
  const targetOf = (f: string): string => /^optin-vscode-(.+)-\d+\.\d+\.\d+\.vsix$/.exec(f)?.[1] ?? '?';

  it('one VSIX for every supported platform', () => {
    assert.deepEqual(built.map(targetOf).sort(), Object.keys(TARGETS).sort(), `built: ${built.join(', ')}`);
  });

  for (const target of Object.keys(TARGETS)) {
    it(`${target}: every module the bundles load is inside, with ${target} binaries only`, () => {
      const file = built.find((f) => targetOf(f) === target);
      assert.ok(file, `no VSIX for ${target}`);
      const v = new Vsix(path.join(VSIX_DIR, file));
      const { problems, externals, packages } = checkClosure(v, target);
      assert.deepEqual(problems, []);
      assert.ok(externals.has('onnxruntime-node') && externals.has('sharp'), `externals found: ${[...externals].join(', ')}`);
      assert.ok(packages.has(`@img/sharp-${target}`), `sharp's ${target} binary is inside (${[...packages].join(', ')})`);
      const [platform, arch] = TARGETS[target]!;
      const ortBins = [...v.files.keys()].filter((f) => /onnxruntime-node\/bin\/napi-v6\/.+\.node$/.test(f));
      assert.deepEqual(ortBins, [`dist/node_modules/onnxruntime-node/bin/napi-v6/${platform}/${arch}/onnxruntime_binding.node`]);
      assert.ok(v.has('dist/toolkit.min.js'), 'the webview toolkit is inside');
    });
  }

  it('the Marketplace face: the users\' README (any image it names inside the VSIX, no remote ones), the icon, the walkthrough and its screenshots', () => {
    const file = built.find((f) => targetOf(f) === 'linux-x64');
    assert.ok(file);
    const v = new Vsix(path.join(VSIX_DIR, file));
    const readmeName = [...v.files.keys()].find((f) => f.toLowerCase() === 'readme.md');
    assert.ok(readmeName, 'the VSIX has a README');
    const readme = v.text(readmeName);
    assert.doesNotMatch(readme, /scripts\/test-all\.sh|npm ci/, 'the VSIX README is the users\' one, not the developers\'');
    // VS Code's details page shows no image of an installed VSIX's README (relative paths and, since 1.103,
    // data URIs are dropped), so the screenshots live in the walkthrough; any image the README names must be inside.
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img[^>]+src=["']([^"']+)["']/g)].map((m) => m[1] ?? m[2]!);
    for (const img of images) {
      assert.ok(!/^[a-z]+:/i.test(img), `${img}: images are packaged so they render offline`);
      assert.ok(v.has(img), `${img} is referenced by README.md but not in the VSIX`);
    }
    const manifest = v.json<{ icon?: string; categories: string[]; description: string; contributes: { walkthroughs?: Array<{ steps: Array<{ media: { image?: string; markdown?: string } }> }> } }>('package.json');
    assert.ok(manifest.icon && v.has(manifest.icon), `icon ${manifest.icon} is inside`);
    assert.match(manifest.description, /transformers.*CNNs.*segmentation/);
    const steps = manifest.contributes.walkthroughs?.flatMap((w) => w.steps) ?? [];
    assert.ok(steps.length >= 5, 'a walkthrough of open, data, score, apply, sweep');
    assert.ok(steps.filter((st) => st.media.image).length >= 3, 'the walkthrough shows the panel');
    for (const st of steps) {
      const media = st.media.image ?? st.media.markdown;
      assert.ok(media && v.has(media), `walkthrough media ${media} is inside`);
    }
  });

  it('the linux-x64 VSIX, unpacked, decodes a digit image with sharp and runs the digits ViT with onnxruntime', function () {
    if (`${process.platform}-${process.arch}` !== 'linux-x64') this.skip();
    const file = built.find((f) => targetOf(f) === 'linux-x64');
    assert.ok(file);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-vsix-unpacked-'));
    try {
      extract(new Vsix(path.join(VSIX_DIR, file)), dir);
      const digits = path.join(ROOT, 'test', 'fixtures', 'data', 'digits', 'train');
      const cls = fs.readdirSync(digits).sort()[0]!;
      const image = path.join(digits, cls, fs.readdirSync(path.join(digits, cls)).sort()[0]!);
      const model = path.join(ROOT, 'test', 'fixtures', 'models', 'vit-digits', 'model-opset17.onnx');
      const script = `
        const sharp = require('sharp'); const ort = require('onnxruntime-node');
        (async () => {
          const { data, info } = await sharp(${JSON.stringify(image)}).greyscale().resize(8, 8).raw().toBuffer({ resolveWithObject: true });
          const s = await ort.InferenceSession.create(${JSON.stringify(model)});
          const x = new ort.Tensor('float32', Float32Array.from(data, (b) => b / 255 * 2 - 1), [1, 1, 8, 8]);
          const out = await s.run({ [s.inputNames[0]]: x });
          console.log(JSON.stringify({ w: info.width, h: info.height, sharp: require.resolve('sharp'), ort: require.resolve('onnxruntime-node'), logits: out[s.outputNames[0]].dims }));
        })().catch((e) => { console.error(e.message); process.exit(1); });`;
      const r = spawnSync(process.execPath, ['-e', script], { cwd: path.join(dir, 'dist'), encoding: 'utf8', env: { ...process.env, NODE_PATH: '' } });
      assert.equal(r.status, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.w, 8);
      assert.ok(j.sharp.startsWith(dir) && j.ort.startsWith(dir), `modules loaded from the unpacked VSIX: ${j.sharp}, ${j.ort}`);
      assert.deepEqual(j.logits, [1, 10]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
