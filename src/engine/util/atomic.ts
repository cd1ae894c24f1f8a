import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { OptinError } from '../errors';
import { removeStaleTemps, tempPathFor } from './temps';

const MB = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;

/** Free bytes for unprivileged writes on the filesystem holding `dir` (undefined when unknown). */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = fs.statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

/** The OptinError for a failed write of `out` (`bytes`: about how much it needed), naming the cause. */
export function writeError(out: string, e: unknown, bytes?: number): OptinError {
  if (e instanceof OptinError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    const free = freeBytes(path.dirname(out));
    return new OptinError('io', `cannot write ${out}: no space left on the device (${code})${bytes ? `; it needs about ${MB(bytes)}` : ''}${free !== undefined ? `, ${MB(free)} free in ${path.dirname(out)}` : ''}; nothing was written`);
  }
  return new OptinError('io', `cannot write ${out}: ${code ?? (e as Error).message}; nothing was written`);
}

/** Write a text file atomically (temp file in the same folder, then rename). */
export function writeFileAtomic(file: string, text: string): void {
  const abs = path.resolve(file);
  removeStaleTemps(path.dirname(abs));
  const tmp = tempPathFor(abs);
  try {
    fs.writeFileSync(tmp, text, { flag: 'wx' });
    fs.renameSync(tmp, abs);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw writeError(abs, e, Buffer.byteLength(text));
  }
}

/** sha256 of a file, streamed. */
export function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
