import * as path from 'node:path';

/**
 * Names that tell same-named models apart, as VS Code's editor tabs do: the file name alone when it
 * is unique, else the file name and as many of its folders as make it unique (`model.onnx ·
 * bert-sst2`, `model.onnx · a/bert`).
 */
export function distinctNames(files: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const byBase = new Map<string, string[]>();
  for (const f of new Set(files)) byBase.set(path.basename(f), [...(byBase.get(path.basename(f)) ?? []), f]);
  for (const [base, group] of byBase) {
    if (group.length === 1) {
      out.set(group[0]!, base);
      continue;
    }
    const parts = group.map((f) => path.dirname(f).split(path.sep).filter(Boolean));
    const suffix = (p: string[], n: number): string => p.slice(Math.max(0, p.length - n)).join('/');
    let n = 1;
    const longest = Math.max(...parts.map((p) => p.length));
    while (n < longest && new Set(parts.map((p) => suffix(p, n))).size < group.length) n++;
    group.forEach((f, i) => out.set(f, `${base} · ${suffix(parts[i]!, n)}`));
  }
  return out;
}

/** `file` itself when `exists` says it is free, else the first free `name-2.onnx`, `name-3.onnx`, ... beside it. */
export function freeName(file: string, exists: (p: string) => boolean): string {
  if (!exists(file)) return file;
  const ext = path.extname(file);
  const stem = file.slice(0, file.length - ext.length);
  for (let i = 2; ; i++) if (!exists(`${stem}-${i}${ext}`)) return `${stem}-${i}${ext}`;
}
