// Dumps a TensorFlow.js layers model shipped as UMD .js files (as the nsfwjs package ships them)
// to topology.json and weights.bin (float32, dequantized, in manifest order).
// Usage: node dump_tfjs.js MODEL_DIR OUT_DIR
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [dir, out] = process.argv.slice(2);
if (!dir || !out) { console.error('usage: node dump_tfjs.js MODEL_DIR OUT_DIR'); process.exit(2); }
const model = require(path.resolve(dir, 'model.min.js'));
const manifest = model.weightsManifest;
const bytes = Buffer.concat(manifest.flatMap((g) => g.paths.map((p) => Buffer.from(require(path.resolve(dir, `${p}.min.js`)), 'base64'))));
const index = [];
const floats = [];
let at = 0;
for (const w of manifest.flatMap((g) => g.weights)) {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  const q = w.quantization;
  if (!q) { values.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + 4 * n))); at += 4 * n; }
  else if (q.dtype === 'uint8') { for (let i = 0; i < n; i++) values[i] = q.min + q.scale * bytes[at + i]; at += n; }
  else throw new Error(`${w.name}: quantization ${q.dtype} not handled`);
  index.push({ name: w.name, shape: w.shape, offset: floats.reduce((a, f) => a + f.length, 0) });
  floats.push(values);
}
if (at !== bytes.length) throw new Error(`read ${at} of ${bytes.length} weight bytes`);
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'topology.json'), JSON.stringify({ topology: model.modelTopology, weights: index }));
fs.writeFileSync(path.join(out, 'weights.bin'), Buffer.concat(floats.map((f) => Buffer.from(f.buffer))));
console.log(`${index.length} tensors, ${floats.reduce((a, f) => a + f.length, 0)} values -> ${out}`);
