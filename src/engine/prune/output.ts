import * as path from 'node:path';

/**
 * Default output path: `<dir>/<name>.optin-<pct>.onnx`, pct = budget in percent of MACs kept, or
 * `<name>.optin-latency-<pct>.onnx` for a latency target (percent of the dense latency).
 */
export function defaultOutput(model: string, budget: number, kind: 'macs' | 'latency' = 'macs'): string {
  const base = path.basename(model).replace(/\.onnx$/i, '');
  return path.join(path.dirname(path.resolve(model)), `${base}.optin-${kind === 'latency' ? 'latency-' : ''}${Math.round(budget * 100)}.onnx`);
}
