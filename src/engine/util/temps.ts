import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';

/**
 * Temporary files of atomic writes live beside their destination (so the final rename is atomic)
 * and are named `.<destination name>.<pid>.<8 hex>.tmp`. The pid lets any later run tell a stale
 * file of a killed process from one a live process is still writing.
 */
const TEMP = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** A fresh temporary path beside `target`, owned by this process. */
export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tempsIn(dir: string): Array<{ file: string; pid: number }> {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = TEMP.exec(n);
    return m ? [{ file: path.join(dir, n), pid: Number(m[1]) }] : [];
  });
}

/** Remove temporary files left in `dir` by processes that no longer run; returns what was removed. */
export function removeStaleTemps(dir: string): string[] {
  const gone: string[] = [];
  for (const t of tempsIn(dir)) {
    if (alive(t.pid)) continue;
    fs.rmSync(t.file, { force: true });
    gone.push(t.file);
  }
  return gone;
}

/** Remove the temporary files in `dir` of this process and of `others` (its engine process) when a run is interrupted by a signal. */
export function removeOwnTemps(dir: string, others: ReadonlyArray<number | undefined> = []): string[] {
  const mine = tempsIn(dir).filter((t) => t.pid === process.pid || others.includes(t.pid));
  for (const t of mine) fs.rmSync(t.file, { force: true });
  return mine.map((t) => t.file);
}
