import * as fs from 'node:fs';
import * as path from 'node:path';

/** File extensions read as images. */
export const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp', '.tif', '.tiff']);
/** File extensions read as text examples (`.jsonl` may also hold named feeds). */
export const TEXT_EXT = new Set(['.tsv', '.csv', '.txt', '.jsonl']);

const isImage = (name: string): boolean => IMAGE_EXT.has(path.extname(name).toLowerCase());

function entries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/**
 * Images an image folder holds: directly, or one level down in class subfolders (ImageFolder
 * layout). 0 for a folder that is not an image folder.
 */
export function imageCount(dir: string): number {
  const list = entries(dir);
  const direct = list.filter((e) => e.isFile() && isImage(e.name)).length;
  if (direct) return direct;
  return list.filter((e) => e.isDirectory()).reduce((a, e) => a + entries(path.join(dir, e.name)).filter((f) => f.isFile() && isImage(f.name)).length, 0);
}
