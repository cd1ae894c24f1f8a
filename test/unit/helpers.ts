import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { OptinError } from '../../src/engine/errors';

/** Repository root (tests run from out/test/unit). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
/** The fixtures copied into the repo. */
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

/** Path of a fixture model. */
export function fixture(rel: string): string {
  return path.join(FIXTURES, 'models', rel);
}

// Every test file bundles this module; mocha loads them all in one process, so the folder list and
// its exit hook are registered once for all of them.
const shared = globalThis as unknown as { optinTestTemps?: string[] };
if (!shared.optinTestTemps) {
  const list: string[] = (shared.optinTestTemps = []);
  process.on('exit', () => { for (const d of list) fs.rmSync(d, { recursive: true, force: true }); });
}
const temps = shared.optinTestTemps;
ort.env.logLevel = 'error';

/** A fresh temporary folder removed after the process ends. */
export function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-test-'));
  temps.push(d);
  return d;
}

/** The built CLI (`dist/cli.js`). */
export const CLI = path.join(ROOT, 'dist', 'cli.js');

/** Run `optin ...args` in a child process: exit code and output. */
export function optin(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** sha256 of a file. */
export function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Assert that `fn` throws an OptinError with `code` whose message matches every pattern. */
export async function expectOptinError(fn: () => unknown, code: string, ...patterns: RegExp[]): Promise<OptinError> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof OptinError)) throw new Error(`expected OptinError(${code}), got ${err === undefined ? 'no error' : String(err)}`);
  if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`);
  for (const p of patterns) if (!p.test(err.message)) throw new Error(`message "${err.message}" does not match ${p}`);
  return err;
}

/** Deterministic feeds for every input of a session (ids in [0, vocab), masks of ones, noise images). */
export function feedsFor(session: ort.InferenceSession, batch = 2, seq = 5, vocab = 2): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const meta = session.inputMetadata as unknown as Array<{ name: string; isTensor: boolean; type: string; shape: Array<number | string> }>;
  for (const m of meta) {
    const dims = m.shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? batch : seq));
    const n = dims.reduce((a, b) => a * b, 1);
    const mask = /mask/i.test(m.name);
    if (m.type === 'int64') feeds[m.name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(mask ? 1 : Math.floor(rnd() * vocab))), dims);
    else if (m.type === 'int32') feeds[m.name] = new ort.Tensor('int32', Int32Array.from({ length: n }, () => (mask ? 1 : Math.floor(rnd() * vocab))), dims);
    else feeds[m.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, () => rnd() * 2 - 1), dims);
  }
  return feeds;
}

/** Run a model (path or bytes) on feeds and return every output as a plain array. */
export async function runModel(model: string | Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, number[]>> {
  const s = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data as Float32Array, Number)]));
  } finally {
    await s.release();
  }
}

/**
 * `optin prune --budget 0.6 --json` on a model (extra flags appended), checked as every fixture is:
 * exit 0, verified within its tolerance, the MACs recounted from the written graph equal the plan's
 * and are at most 60% of the original's, the original byte-identical. Returns the JSON report.
 */
export function pruneVerified(file: string, ...extra: string[]): any {
  const before = sha256(file);
  const out = path.join(tempDir(), 'p.onnx');
  const p = optin('prune', file, '--budget', '0.6', '--samples', '2', '--no-bench', '--out', out, '--json', ...extra);
  assert.equal(p.code, 0, p.stderr);
  const j = JSON.parse(p.stdout);
  assert.ok(j.apply.verification.maxAbsDiff <= j.apply.verification.tolerance, `verification ${j.apply.verification.maxAbsDiff} > ${j.apply.verification.tolerance}`);
  assert.equal(j.apply.macs.after, j.plan.macs.kept);
  assert.ok(j.apply.macs.after <= 0.6 * j.apply.macs.before * (1 + 1e-9), `MACs ${j.apply.macs.after} of ${j.apply.macs.before}`);
  assert.equal(sha256(file), before, 'the original is byte-identical');
  return { ...j, out };
}

/**
 * Largest difference between two decoders' logits [batch, seq, vocab] (inputs input_ids and
 * attention_mask) at the real tokens of a right-padded batch of three sentences, and the largest
 * logit there (the scale a tolerance is relative to).
 */
export async function realTokenLogitDiff(a: string, b: string, vocab: number): Promise<{ diff: number; scale: number }> {
  const lengths = [12, 5, 9], S = 12, B = 3;
  const ids = BigInt64Array.from({ length: B * S }, (_, i) => BigInt(3 + ((i * 7919) % 500)));
  const mask = BigInt64Array.from({ length: B * S }, (_, i) => (i % S < lengths[Math.floor(i / S)]! ? 1n : 0n));
  const run = async (file: string): Promise<Float32Array> => {
    const s = await ort.InferenceSession.create(file);
    try {
      const r = await s.run({ input_ids: new ort.Tensor('int64', ids, [B, S]), attention_mask: new ort.Tensor('int64', mask, [B, S]) });
      return r.logits!.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const [x, y] = [await run(a), await run(b)];
  let diff = 0, scale = 0;
  for (let r = 0; r < B; r++) for (let p = 0; p < lengths[r]!; p++) for (let j = 0; j < vocab; j++) {
    const k = (r * S + p) * vocab + j;
    diff = Math.max(diff, Math.abs(x[k]! - y[k]!));
    scale = Math.max(scale, Math.abs(x[k]!));
  }
  return { diff, scale };
}
