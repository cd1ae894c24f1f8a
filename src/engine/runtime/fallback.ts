import { spawn } from 'node:child_process';
import type { Provider } from './providers';

/** Nodes a GPU provider leaves to the CPU, grouped by op type. */
export interface CpuNodes {
  count: number;
  /** Op type -> how many nodes of it. */
  ops: Record<string, number>;
  /** The first few node names, for the log. */
  examples: string[];
}

const LINE = /kernel not found in registries for Op type: (\S+) node name: (.*)$/;

/**
 * Which nodes of `model` the provider `ep` cannot run and hands to the CPU. onnxruntime reports this
 * only in its native log, so the session is created once more in a child process at info level and
 * its log is read.
 */
export function cpuFallbackNodes(model: string, ep: Provider, timeoutMs = 300_000): Promise<CpuNodes> {
  const ortPath = require.resolve('onnxruntime-node');
  const script = `const ort = require(${JSON.stringify(ortPath)});
ort.InferenceSession.create(${JSON.stringify(model)}, { executionProviders: [${JSON.stringify(ep)}, 'cpu'], logSeverityLevel: 1 })
  .then((s) => s.release(), (e) => { console.error('optin-fallback-error ' + String(e && e.message || e).split('\\n')[0]); process.exitCode = 3; });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      const failed = /optin-fallback-error (.*)/.exec(log);
      if (code !== 0) return reject(new Error(failed?.[1] ?? `the ${ep} log child exited with ${code}`));
      const out: CpuNodes = { count: 0, ops: {}, examples: [] };
      for (const l of log.split('\n')) {
        const m = LINE.exec(l);
        if (!m) continue;
        out.count++;
        out.ops[m[1]!] = (out.ops[m[1]!] ?? 0) + 1;
        if (out.examples.length < 5) out.examples.push(m[2]!.trim());
      }
      resolve(out);
    });
  });
}

/** "12 nodes on the CPU: Gather x5, Slice x4, Concat x3" (or "every node on webgpu"). */
export function describeCpuNodes(n: CpuNodes, ep: string): string {
  if (!n.count) return `every node runs on ${ep}`;
  const ops = Object.entries(n.ops).sort((a, b) => b[1] - a[1]).map(([op, k]) => `${op} x${k}`).join(', ');
  return `${n.count} node${n.count === 1 ? '' : 's'} run on the CPU instead of ${ep}: ${ops}`;
}
