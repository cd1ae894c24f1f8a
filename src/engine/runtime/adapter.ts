import * as fs from 'node:fs';
import * as path from 'node:path';

/** The GPU adapter WebGPU (Dawn) will use, as far as the system tells without opening it. */
export interface AdapterInfo {
  /** e.g. "NVIDIA (Vulkan)", "SwiftShader (Vulkan, software)", "default D3D12 adapter". */
  name: string;
  backend: 'vulkan' | 'd3d12' | 'metal';
  /** A CPU rasteriser (SwiftShader, lavapipe): much slower than the CPU provider; `auto` never picks it. */
  software: boolean;
}

const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/share/vulkan/icd.d'];

/** Vulkan drivers (ICD manifests) the Vulkan loader will see: VK_ICD_FILENAMES / VK_DRIVER_FILES, else the standard folders. */
export function vulkanIcds(env: NodeJS.ProcessEnv = process.env, dirs = ICD_DIRS): string[] {
  const forced = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  if (forced) return forced.split(':').filter(Boolean);
  return dirs.flatMap((d) => {
    try {
      return fs.readdirSync(d).filter((f) => f.endsWith('.json')).map((f) => path.join(d, f));
    } catch {
      return [];
    }
  });
}

/** Name and kind of one Vulkan ICD manifest, from its driver library's name. */
export function classifyIcd(manifest: string): { name: string; software: boolean } {
  let lib = path.basename(manifest);
  try {
    const j = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { ICD?: { library_path?: string } };
    lib = path.basename(j.ICD?.library_path ?? lib);
  } catch {
    /* unreadable manifest: classify by its file name */
  }
  const s = `${path.basename(manifest)} ${lib}`.toLowerCase();
  if (s.includes('swiftshader')) return { name: 'SwiftShader', software: true };
  if (/lvp|lavapipe/.test(s)) return { name: 'lavapipe', software: true };
  if (s.includes('mock')) return { name: 'mock Vulkan driver', software: true };
  if (s.includes('nvidia')) return { name: 'NVIDIA', software: false };
  if (/radeon|amd/.test(s)) return { name: 'AMD', software: false };
  if (s.includes('intel')) return { name: 'Intel', software: false };
  return { name: lib.replace(/\.(so(\.\d+)*|dll|json)$/i, ''), software: false };
}

/**
 * The adapter WebGPU would run on, named from the installed drivers (not queried from the device):
 * on Linux the best Vulkan driver present (NVIDIA, AMD, Intel, other hardware, then software, as
 * Dawn prefers discrete GPUs and refuses CPU ones unless it is the only choice), on Windows D3D12,
 * on macOS Metal; undefined on Linux without any Vulkan driver. A driver without its hardware
 * fails when the session is created, and `auto` then falls back with that reason.
 */
export function webgpuAdapter(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env, dirs = ICD_DIRS): AdapterInfo | undefined {
  if (platform === 'win32') return { name: 'default D3D12 adapter', backend: 'd3d12', software: false };
  if (platform === 'darwin') return { name: 'default Metal adapter', backend: 'metal', software: false };
  const rank = (i: { name: string; software: boolean }): number => (i.software ? 9 : [...['NVIDIA', 'AMD', 'Intel'], i.name].indexOf(i.name));
  const icds = vulkanIcds(env, dirs).map(classifyIcd).sort((a, b) => rank(a) - rank(b));
  const best = icds[0];
  return best ? { name: `${best.name} (Vulkan${best.software ? ', software' : ''})`, backend: 'vulkan', software: best.software } : undefined;
}
