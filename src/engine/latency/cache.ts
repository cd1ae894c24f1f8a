import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { OnnxModel } from '../onnx/model';
import type { ModelStructure } from '../structure/types';
import { sha256File, writeFileAtomic } from '../util/atomic';
import { measureLatencyTable, type LatencyOptions } from './measure';
import type { LatencyTable } from './table';

/** Folder of cached latency tables: $OPTIN_CACHE_DIR, else $XDG_CACHE_HOME/optin, else ~/.cache/optin. */
export function cacheDir(): string {
  if (process.env.OPTIN_CACHE_DIR) return process.env.OPTIN_CACHE_DIR;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'optin');
}

function cacheFile(sha: string, o: LatencyOptions): string {
  return path.join(cacheDir(), 'latency', `${sha.slice(0, 24)}-${o.ep ?? 'cpu'}-b${o.batch ?? 32}-s${o.seqLen ?? 48}-t${o.threads ?? 0}-r${o.runs ?? 'auto'}${o.decode ? '-decode' : ''}.json`);
}

/**
 * The model's latency table for these options: read from the cache (keyed by the model's sha256,
 * provider choice, batch, sequence length, threads, runs and phase) or measured and cached.
 * `fresh` measures again and replaces the cached table.
 */
export async function latencyTableFor(model: OnnxModel, st: ModelStructure, opts: LatencyOptions & { fresh?: boolean } = {}): Promise<{ table: LatencyTable; cached: boolean; file: string }> {
  const file = cacheFile(sha256File(model.path), opts);
  if (!opts.fresh && fs.existsSync(file)) {
    try {
      const t = JSON.parse(fs.readFileSync(file, 'utf8')) as LatencyTable;
      if (t.schema === 'optin-latency' && t.floor && t.layers?.length === st.layers.length && (t.phase === 'decode') === !!opts.decode) return { table: { ...t, model: { ...t.model, path: model.path } }, cached: true, file };
    } catch {
      // unreadable cache entries are measured again
    }
  }
  const table = await measureLatencyTable(model, st, opts);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, JSON.stringify(table) + '\n');
  } catch {
    // a read-only cache folder only costs a new measurement next time
  }
  return { table, cached: false, file };
}
