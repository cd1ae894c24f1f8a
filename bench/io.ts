/**
 * Model IO memory benchmark (run on demand: npm run bench:io). Builds a ~415 MB model (the SST-2
 * BERT plus a 373 MB extra initializer), then in fresh processes measures peak RSS and time of
 * decoding it and of decoding + writing it back out, and checks the copy decodes identically.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create, equals } from '@bufbuild/protobuf';
import { loadModel } from '../src/engine/onnx/model';
import { saveModel } from '../src/engine/onnx/writer';
import { DataType, ModelProtoSchema, TensorProtoSchema } from '../src/engine/onnx/schema';

const root = path.resolve(__dirname, '..', '..');
const [mode, a, b] = process.argv.slice(2);
const mb = (n: number): string => `${(n / 1048576).toFixed(0)} MB`;

if (mode === 'compare') {
  console.log(String(equals(ModelProtoSchema, loadModel(a!).proto, loadModel(b!).proto)));
} else if (mode === 'load') {
  const t = performance.now();
  loadModel(a!);
  console.log(JSON.stringify({ ms: performance.now() - t, maxRss: process.resourceUsage().maxRSS * 1024 }));
} else if (mode === 'save') {
  const t = performance.now();
  saveModel(loadModel(a!), b!);
  console.log(JSON.stringify({ ms: performance.now() - t, maxRss: process.resourceUsage().maxRSS * 1024 }));
} else if (mode === 'make') {
  const big = a!;
  {
    const m = loadModel(path.join(root, 'test/fixtures/models/bert-sst2/model-opset17.onnx'));
    const n = 98_000_000;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i += 1024) data[i] = i;
    m.proto.graph!.initializer.push(create(TensorProtoSchema, { name: 'optin_bench_extra', dims: [BigInt(n)], dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer) }));
    saveModel(m, big);
  }
} else {
  // The parent stays small: peak RSS is inherited across fork, so every heavy step runs in a child.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optin-io-'));
  try {
    const big = path.join(dir, 'big.onnx');
    execFileSync(process.execPath, [__filename, 'make', big], { stdio: 'inherit' });
    const size = fs.statSync(big).size;
    const run = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [__filename, ...args], { encoding: 'utf8' })) as { ms: number; maxRss: number };
    const base = JSON.parse(execFileSync(process.execPath, ['-e', 'console.log(JSON.stringify({maxRss: process.resourceUsage().maxRSS*1024}))'], { encoding: 'utf8' })) as { maxRss: number };
    const load = run('load', big);
    const copy = path.join(dir, 'copy.onnx');
    const save = run('save', big, copy);
    const same = execFileSync(process.execPath, [__filename, 'compare', big, copy], { encoding: 'utf8' }).trim();
    console.log(`model ${mb(size)} (node baseline RSS ${mb(base.maxRss)})`);
    console.log(`decode:          ${load.ms.toFixed(0)} ms, peak RSS ${mb(load.maxRss)} (${(load.maxRss / size).toFixed(2)}x the file)`);
    console.log(`decode + write:  ${save.ms.toFixed(0)} ms, peak RSS ${mb(save.maxRss)} (${(save.maxRss / size).toFixed(2)}x the file)`);
    console.log(`copy decodes identical to the source: ${same}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
