import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TensorProto } from './schema';
import { OptinError } from '../errors';

/** Where a model's external-data files live, plus an open-file cache. */
export interface ExternalDataContext {
  /** Folder of the model file; every external location is resolved against it. */
  readonly baseDir: string;
  /** Model file, for error messages. */
  readonly modelPath: string;
}

/** Parsed external_data entries of a tensor. */
export interface ExternalRef {
  location: string;
  offset: number;
  length: number | undefined;
}

/** Parse a tensor's external_data key/value list. */
export function externalRef(t: TensorProto): ExternalRef {
  let location = '';
  let offset = 0;
  let length: number | undefined;
  for (const e of t.externalData) {
    if (e.key === 'location') location = e.value;
    else if (e.key === 'offset') offset = Number(e.value);
    else if (e.key === 'length') length = Number(e.value);
  }
  if (!location) throw new OptinError('corrupt', `tensor "${t.name}" is marked external but names no location`);
  if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
    throw new OptinError('corrupt', `tensor "${t.name}" has an invalid external offset/length`);
  }
  return { location, offset, length };
}

/** Resolve an external location inside the model folder; refuse paths that escape it. */
export function resolveExternalPath(ctx: ExternalDataContext, location: string, tensorName: string): string {
  const base = path.resolve(ctx.baseDir);
  const full = path.resolve(base, location);
  const rel = path.relative(base, full);
  if (path.isAbsolute(location) || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new OptinError(
      'io',
      `${ctx.modelPath}: tensor "${tensorName}" points to external data "${location}" outside the model folder; refused`,
    );
  }
  return full;
}

/** Read the bytes of an external tensor from its side file. */
export function readExternal(t: TensorProto, ctx: ExternalDataContext): Uint8Array {
  const ref = externalRef(t);
  const file = resolveExternalPath(ctx, ref.location, t.name);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new OptinError('io', `${ctx.modelPath}: external data file "${ref.location}" for tensor "${t.name}" is missing`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const length = ref.length ?? size - ref.offset;
    if (ref.offset + length > size) {
      throw new OptinError(
        'corrupt',
        `${ctx.modelPath}: external data "${ref.location}" is truncated (tensor "${t.name}" needs bytes ${ref.offset}..${ref.offset + length}, file has ${size})`,
      );
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, done, length - done, ref.offset + done);
      if (n <= 0) break;
      done += n;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, length);
  } finally {
    fs.closeSync(fd);
  }
}
