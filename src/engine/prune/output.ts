import * as path from 'node:path';

/** Default output path: `<dir>/<name>.optin-<pct>.onnx`, pct = budget in percent of MACs kept. */
export function defaultOutput(model: string, budget: number): string {
  const base = path.basename(model).replace(/\.onnx$/i, '');
  return path.join(path.dirname(path.resolve(model)), `${base}.optin-${Math.round(budget * 100)}.onnx`);
}
