import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createSession } from '../../src/engine/runtime/session';
import { gpuCandidates } from '../../src/engine/runtime/providers';
import { classifyIcd, webgpuAdapter } from '../../src/engine/runtime/adapter';
import { DeviceFeeds, cpuTile } from '../../src/engine/runtime/deviceFeeds';
import { ROOT, expectOptinError, feedsFor, fixture, tempDir } from './helpers';
import { loadModel } from '../../src/engine/onnx/model';
import { detectStructure } from '../../src/engine/structure/detect';
import { loadCalibration } from '../../src/engine/data/calibration';
import { gamma, klBound, mdBound, naiveRawTerms } from './naiveOptin';

/**
 * How far two providers' logits of the digits ViT may be apart: each logit is a float32 product over
 * the hidden size (64), so each side is off by at most gamma(64) max|z| (the bound scoreEquivalence
 * uses for the KL), the two by twice that.
 */
const logitTolerance = (z: Float32Array): number => 2 * gamma(64) * Math.max(...Array.from(z, Math.abs));

type RawScores = { raw: { heads: Array<{ md: number[]; kl: number[] }>; neurons: Array<{ md: number[]; kl: number[] }> } };

/** SwiftShader, the CPU Vulkan driver Debian's chromium ships: WebGPU runs on it without a GPU. */
const SWIFTSHADER = process.env.OPTIN_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
const CLI = path.join(ROOT, 'dist', 'cli.js');
const VIT = fixture('vit-digits/model-opset17.onnx');
const TINY = fixture('torch-bert-like-random/model-opset17.onnx');

function hasVulkanLoader(): boolean {
  return ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib/libvulkan.so.1'].some((f) => fs.existsSync(f));
}

/** Environment that makes Dawn see only `icd` (and gives it the runtime folder it wants). */
function gpuEnv(icd: string): NodeJS.ProcessEnv {
  const xdg = process.env.XDG_RUNTIME_DIR ?? tempDir();
  return { ...process.env, VK_ICD_FILENAMES: icd, XDG_RUNTIME_DIR: xdg };
}

/** Run `fn` with process.env replaced by `env`, then restore it. */
async function withEnv<T>(env: NodeJS.ProcessEnv, fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

function optin(env: NodeJS.ProcessEnv, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** An ICD manifest that points at SwiftShader under a hardware vendor's library name (to drive `auto` through its GPU path). */
function disguisedIcd(): string {
  const dir = tempDir();
  const lib = path.join(dir, 'libGLX_nvidia.so.0');
  fs.symlinkSync(path.join(path.dirname(SWIFTSHADER), 'libvk_swiftshader.so'), lib);
  const icd = path.join(dir, 'nvidia_icd.json');
  fs.writeFileSync(icd, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: lib, api_version: '1.0.5' } }));
  return icd;
}

describe('execution providers', function () {
  this.timeout(600_000);

  it('auto tries CUDA (when installed), then WebGPU, DirectML (Windows), CoreML (macOS); then the CPU', () => {
    assert.deepEqual(gpuCandidates('linux', 'x64', true), ['cuda', 'webgpu']);
    assert.deepEqual(gpuCandidates('linux', 'x64', false), ['webgpu']);
    assert.deepEqual(gpuCandidates('linux', 'arm64', false), []);
    assert.deepEqual(gpuCandidates('win32', 'x64', false), ['webgpu', 'dml']);
    assert.deepEqual(gpuCandidates('darwin', 'arm64', false), ['webgpu', 'coreml']);
  });

  it('names the WebGPU adapter from the Vulkan drivers and tells software ones apart', () => {
    const dir = tempDir();
    const icd = (name: string, lib: string): string => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, JSON.stringify({ ICD: { library_path: lib } }));
      return f;
    };
    assert.deepEqual(classifyIcd(icd('sw.json', './libvk_swiftshader.so')), { name: 'SwiftShader', software: true });
    assert.deepEqual(classifyIcd(icd('lvp_icd.x86_64.json', '/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so')), { name: 'lavapipe', software: true });
    icd('nvidia_icd.json', 'libGLX_nvidia.so.0');
    assert.deepEqual(webgpuAdapter('linux', {}, [dir]), { name: 'NVIDIA (Vulkan)', backend: 'vulkan', software: false }, 'a hardware driver wins over software ones');
    assert.deepEqual(webgpuAdapter('linux', { VK_ICD_FILENAMES: path.join(dir, 'sw.json') }, [dir]), { name: 'SwiftShader (Vulkan, software)', backend: 'vulkan', software: true });
    assert.equal(webgpuAdapter('linux', {}, [path.join(dir, 'none')]), undefined);
    assert.equal(webgpuAdapter('win32')?.backend, 'd3d12');
  });

  it('an explicit provider that is missing is one clear line', async () => {
    if (gpuCandidates().includes('cuda')) return;
    await expectOptinError(() => createSession(TINY, { ep: 'cuda', label: TINY }), 'runtime', /execution provider "cuda" is not usable/);
    const r = optin(process.env, 'score', TINY, '--ep', 'cuda', '--samples', '2', '--out', path.join(tempDir(), 'x.json'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^optin: .*execution provider "cuda" is not usable/m);
  });

  describe('WebGPU through SwiftShader (no GPU needed)', () => {
    before(function () {
      if (!fs.existsSync(SWIFTSHADER) || !hasVulkanLoader()) {
        const why = `SwiftShader (${SWIFTSHADER}, Debian chromium) or libvulkan.so.1 (Debian libvulkan1) is missing`;
        if (process.env.CI) throw new Error(`${why}; CI must run the WebGPU tests (scripts/test-all.sh installs both)`);
        console.log(`      (skipped: ${why})`);
        this.skip();
      }
    });

    it('auto never picks a software adapter: it falls back to the CPU and says why', async () => {
      const s = await withEnv(gpuEnv(SWIFTSHADER), () => createSession(TINY, { ep: 'auto', label: TINY }));
      await s.session.release();
      assert.equal(s.provider, 'cpu');
      assert.match(s.fallbackReason ?? '', /webgpu: its only adapter is SwiftShader \(Vulkan, software\), a CPU rasteriser/);
    });

    it('auto takes WebGPU on a hardware-looking adapter that passes the probe, and rejects one whose probe computes wrong', async () => {
      const icd = disguisedIcd();
      const good = await withEnv(gpuEnv(icd), () => createSession(TINY, { ep: 'auto', label: TINY }));
      await good.session.release();
      assert.equal(good.provider, 'webgpu', good.fallbackReason);
      assert.equal(good.device, 'NVIDIA (Vulkan)');
      const bad = await withEnv({ ...gpuEnv(icd), OPTIN_TEST_PROBE_PERTURB: 'webgpu' }, () => createSession(TINY, { ep: 'auto', label: TINY }));
      await bad.session.release();
      assert.equal(bad.provider, 'cpu');
      assert.match(bad.fallbackReason ?? '', /webgpu: its results differ from the CPU provider by 5\.\d+e-1 on a probe graph/);
      await withEnv({ ...gpuEnv(SWIFTSHADER), OPTIN_TEST_PROBE_PERTURB: 'webgpu' }, () =>
        expectOptinError(() => createSession(TINY, { ep: 'webgpu', label: TINY }), 'runtime', /execution provider "webgpu" is not usable: its results differ from the CPU provider/));
    });

    it('--ep webgpu runs the digits ViT with the outputs of the CPU provider', async () => {
      const s = await withEnv(gpuEnv(SWIFTSHADER), () => createSession(VIT, { ep: 'webgpu', label: VIT }));
      const c = await ort.InferenceSession.create(VIT);
      try {
        assert.equal(s.provider, 'webgpu');
        assert.equal(s.device, 'SwiftShader (Vulkan, software)');
        const feeds = feedsFor(c, 4);
        const a = (await s.session.run(feeds))[s.session.outputNames[0]!]!.data as Float32Array;
        const b = (await c.run(feeds))[c.outputNames[0]!]!.data as Float32Array;
        const diff = Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]!)));
        assert.ok(diff <= logitTolerance(b), `max |webgpu - cpu| = ${diff}, bound ${logitTolerance(b)}`);
        if (process.env.OPTIN_DEBUG_SCORES) console.log(`logits: difference / bound ${(diff / logitTolerance(b)).toFixed(4)}`);
      } finally {
        await s.session.release();
        await c.release();
      }
    });

    it('keeps shared inputs on the WebGPU device: tiled there once, read by another session, equal to the CPU tile', async () => {
      const s = await withEnv(gpuEnv(SWIFTSHADER), () => createSession(VIT, { ep: 'webgpu', label: VIT }));
      const c = await ort.InferenceSession.create(VIT);
      const dev = new DeviceFeeds('webgpu');
      try {
        const name = c.inputNames[0]!;
        const one = feedsFor(c, 1)[name]!;
        const t = { type: 'float32' as const, dims: [...one.dims], data: one.data as Float32Array };
        const onDevice = await dev.tiled('pixels', t, 3);
        assert.equal(onDevice.location, 'gpu-buffer');
        assert.deepEqual(onDevice.dims, [3, ...one.dims.slice(1)]);
        assert.equal(await dev.tiled('pixels', t, 3), onDevice, 'the same source and count reuse the device tensor');
        const a = (await s.session.run({ [name]: onDevice }))[s.session.outputNames[0]!]!.data as Float32Array;
        const b = (await c.run({ [name]: cpuTile(t, 3) }))[c.outputNames[0]!]!.data as Float32Array;
        assert.equal(a.length, b.length);
        const diff = Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]!)));
        assert.ok(diff <= logitTolerance(b), `max |device-fed webgpu - cpu| = ${diff}, bound ${logitTolerance(b)}`);
        assert.equal(new DeviceFeeds('cpu').onDevice, false);
        assert.equal((await new DeviceFeeds('cpu').tiled('pixels', t, 2)).location, 'cpu');
      } finally {
        await dev.close();
        await s.session.release();
        await c.release();
      }
    });

    for (const [name, model, extra] of [['digits ViT', VIT, ['--samples', '1']], ['tiny BERT (text)', TINY, ['--samples', '2']]] as const) {
      it(`optin score ${name} --ep webgpu gives the CPU's exact scores: every raw term within the sum of both sides' float32 bounds`, async () => {
        const dir = tempDir();
        const env = gpuEnv(SWIFTSHADER);
        const run = (ep: string): { heads: number[][]; neurons: number[][]; provider: string } => {
          const out = path.join(dir, `${ep}.json`);
          const r = optin(env, 'score', model, '--ep', ep, '--mode', 'exact', ...extra, '--out', out, '--quiet');
          assert.equal(r.code, 0, r.stderr);
          return JSON.parse(fs.readFileSync(out, 'utf8'));
        };
        const cpu = run('cpu'), gpu = run('webgpu') as ReturnType<typeof run> & { cpuNodes?: { count: number; ops: Record<string, number> } };
        assert.equal(gpu.provider, 'webgpu (SwiftShader (Vulkan, software))');
        assert.equal(cpu.provider, 'cpu');
        assert.ok(gpu.cpuNodes && (model !== VIT || gpu.cpuNodes.count > 0) && gpu.cpuNodes.count === Object.values(gpu.cpuNodes.ops).reduce((a, b) => a + b, 0), `nodes left to the CPU are reported: ${JSON.stringify(gpu.cpuNodes)}`);
        assert.equal((cpu as { cpuNodes?: unknown }).cpuNodes, undefined);
        assert.equal((gpu as { inputsOnDevice?: boolean }).inputsOnDevice, true, 'the masked runs read their shared inputs from the device');
        assert.equal((cpu as { inputsOnDevice?: boolean }).inputsOnDevice, undefined);
        // Each provider's raw terms are within their float32 bound of the exact values (scoreEquivalence.test.ts derives it
        // and checks the CPU against an independent reference), so the two differ by at most twice that bound.
        const m = loadModel(model);
        const st = await detectStructure(m);
        const ref = await naiveRawTerms(m, st, await loadCalibration(m.path, st, { samples: Number(extra[1]) }));
        const L = st.layers.length;
        let worst = 0;
        for (const kind of ['heads', 'neurons'] as const) {
          ref[kind].forEach((layer, l) => layer.forEach((e, i) => {
            const c = (cpu as unknown as RawScores).raw[kind][l]!, g = (gpu as unknown as RawScores).raw[kind][l]!;
            const bm = 2 * mdBound(e, st.hidden, ref.rows, l === L - 1 ? 1 : L - l - 1), bk = 2 * klBound(e, st.hidden, ref.logitScale);
            const dm = Math.abs(c.md[i]! - g.md[i]!), dk = Math.abs(c.kl[i]! - g.kl[i]!);
            assert.ok(dm <= bm && dk <= bk, `${kind} layer ${l} element ${i}: md ${c.md[i]} vs ${g.md[i]} (bound ${bm.toExponential(2)}), kl ${c.kl[i]} vs ${g.kl[i]} (bound ${bk.toExponential(2)})`);
            worst = Math.max(worst, bm ? dm / bm : 0, bk ? dk / bk : 0);
          }));
        }
        if (process.env.OPTIN_DEBUG_SCORES) console.log(`${name}: worst webgpu-cpu difference / bound ${worst.toFixed(4)}`);
      });
    }

    it('optin prune --ep webgpu verifies the pruned model on WebGPU', () => {
      const dir = tempDir();
      const r = optin(gpuEnv(SWIFTSHADER), 'prune', TINY, '--budget', '0.6', '--ranking', 'magnitude', '--ep', 'webgpu', '--no-bench', '--out', path.join(dir, 'p.onnx'), '--json');
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.apply.verification.provider, 'webgpu (SwiftShader (Vulkan, software))');
      assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance);
    });
  });
});
