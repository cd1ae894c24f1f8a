import * as fs from 'node:fs';
import * as path from 'node:path';

/** The first `count` MNIST-scene training images (unlabelled) copied into `dir`, which is created: calibration images for the CNN benchmarks. */
export function copyScenes(root: string, dir: string, count: number): string {
  fs.mkdirSync(dir);
  const src = path.join(root, 'test', 'fixtures', 'data', 'mnist-scenes', 'train', 'images');
  for (const f of fs.readdirSync(src).sort().slice(0, count)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  return dir;
}
