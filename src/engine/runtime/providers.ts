/** Execution provider requested by the user. */
export type EpChoice = 'auto' | 'cpu' | 'cuda' | 'dml' | 'coreml';

/** GPU providers worth trying on this platform, best first. */
export function gpuCandidates(platform: NodeJS.Platform = process.platform): Array<'cuda' | 'dml' | 'coreml'> {
  if (platform === 'win32') return ['cuda', 'dml'];
  if (platform === 'darwin') return ['coreml'];
  return ['cuda'];
}
