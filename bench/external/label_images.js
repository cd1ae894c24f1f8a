// Checks the converted ONNX model against the original TensorFlow.js model on a few images (when
// @tensorflow/tfjs can be required), then labels every image of OUT/pool with the ONNX model's
// prediction and splits them into OUT/train/<class>/ (calibration) and OUT/test/<class>/ (ImageFolder).
// Usage: node label_images.js DUMP_DIR MODEL.onnx OUT CLASSES(comma-separated) CALIBRATION_COUNT
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ort = require('onnxruntime-node');
const sharp = require('sharp');

async function pixels(file, size) {
  const { data } = await sharp(file).removeAlpha().resize(size, size).raw().toBuffer({ resolveWithObject: true });
  return Float32Array.from(data, (v) => v / 255);
}

async function main() {
  const [dump, model, out, classList, calibrationCount] = process.argv.slice(2);
  const classes = classList.split(',');
  const session = await ort.InferenceSession.create(model);
  const size = session.inputMetadata?.[0]?.shape?.[1] ?? 224;
  const files = fs.readdirSync(path.join(out, 'pool')).filter((f) => f.endsWith('.jpg')).sort();
  const run = async (batch) => {
    const x = new Float32Array(batch.length * size * size * 3);
    for (let i = 0; i < batch.length; i++) x.set(await pixels(path.join(out, 'pool', batch[i]), size), i * size * size * 3);
    const r = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [batch.length, size, size, 3]) });
    return { x, y: r[session.outputNames[0]].data };
  };
  let tf;
  try { tf = require('@tensorflow/tfjs'); } catch { console.log('(@tensorflow/tfjs not installed: conversion not compared with the original)'); }
  if (tf) {
    const meta = JSON.parse(fs.readFileSync(path.join(dump, 'topology.json'), 'utf8'));
    const bin = fs.readFileSync(path.join(dump, 'weights.bin'));
    const original = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: meta.topology, weightSpecs: meta.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })),
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
    }));
    const probe = files.filter((_, i) => i % Math.floor(files.length / 8) === 0).slice(0, 8);
    const { x, y } = await run(probe);
    const ref = original.predict(tf.tensor(x, [probe.length, size, size, 3])).dataSync();
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i] - y[i]));
    console.log(`ONNX vs TensorFlow.js on ${probe.length} images: max |difference| of the outputs ${worst.toExponential(2)}`);
    if (!(worst < 1e-3)) throw new Error('the converted model does not match the original');
  }
  const counts = new Map();
  for (const split of ['train', 'test']) for (const c of classes) fs.mkdirSync(path.join(out, split, c), { recursive: true });
  const order = files.map((f, i) => [f, (i * 2654435761) % 4294967296]).sort((a, b) => a[1] - b[1]).map(([f]) => f);
  for (let i = 0; i < order.length; i += 16) {
    const batch = order.slice(i, i + 16);
    const { y } = await run(batch);
    batch.forEach((f, b) => {
      const row = Array.from(y.slice(b * classes.length, (b + 1) * classes.length));
      const label = classes[row.indexOf(Math.max(...row))];
      const split = i + b < Number(calibrationCount) ? 'train' : 'test';
      fs.copyFileSync(path.join(out, 'pool', f), path.join(out, split, label, f));
      counts.set(`${split} ${label}`, (counts.get(`${split} ${label}`) ?? 0) + 1);
    });
  }
  console.log([...counts].sort().map(([k, v]) => `${k}: ${v}`).join(', '));
}

main().catch((e) => { console.error(e.message); process.exit(1); });
