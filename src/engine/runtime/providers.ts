import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

/** Execution provider requested by the user. */
export type EpChoice = 'auto' | 'cpu' | 'cuda' | 'webgpu' | 'dml' | 'coreml';
/** A concrete execution provider. */
export type Provider = Exclude<EpChoice, 'auto'>;

/** Every provider name a user may give (`--ep`, `optin.executionProvider`). */
export const EP_CHOICES: EpChoice[] = ['auto', 'cpu', 'cuda', 'webgpu', 'dml', 'coreml'];

/** True when onnxruntime-node's CUDA provider libraries are installed next to its binding (they are an optional download). */
export function cudaInstalled(platform: NodeJS.Platform = process.platform, arch: string = process.arch): boolean {
  if (platform !== 'linux' || arch !== 'x64') return false;
  try {
    const bin = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', 'linux', 'x64');
    return fs.existsSync(path.join(bin, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

/**
 * Why this onnxruntime-node build cannot run `p` at all (undefined: it can). onnxruntime-node
 * silently drops providers it lacks and runs on the CPU, so this is checked before asking for one.
 */
export function providerMissing(p: Provider): string | undefined {
  if (p === 'cpu') return undefined;
  if (p === 'cuda') return cudaInstalled() ? undefined : 'onnxruntime-node\'s CUDA libraries are not installed (an optional download; see the README)';
  const list = (ort as unknown as { listSupportedBackends?: () => Array<{ name: string; bundled: boolean }> }).listSupportedBackends?.() ?? [];
  return list.some((b) => b.name === p && b.bundled) ? undefined : `this onnxruntime-node build for ${process.platform}-${process.arch} has no ${p} provider`;
}

/**
 * GPU providers `auto` tries, best first: CUDA when its libraries are present, WebGPU (bundled on
 * every desktop platform but Linux arm64), DirectML on Windows, CoreML on macOS. The CPU follows.
 */
export function gpuCandidates(platform: NodeJS.Platform = process.platform, arch: string = process.arch, cuda = cudaInstalled(platform, arch)): Provider[] {
  const out: Provider[] = [];
  if (cuda) out.push('cuda');
  if (!(platform === 'linux' && arch === 'arm64')) out.push('webgpu');
  if (platform === 'win32') out.push('dml');
  if (platform === 'darwin') out.push('coreml');
  return out;
}
