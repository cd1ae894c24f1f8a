import * as fs from 'node:fs';
import * as path from 'node:path';
import { OptinError } from '../errors';

/** One text example: a sentence, an optional second segment and an optional integer label. */
export interface TextExample {
  text: string;
  textPair?: string;
  label?: number;
}

const TEXT_KEYS = ['sentence', 'text', 'sentence1', 'question', 'premise'];
const PAIR_KEYS = ['sentence2', 'text_pair', 'hypothesis'];

function parseLabel(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(String(v).trim());
  if (!Number.isInteger(n)) throw new OptinError('data', `${where}: label "${String(v)}" is not an integer`);
  return n;
}

function splitLine(line: string, sep: string): string[] {
  if (sep === '\t') return line.split('\t');
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (q) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; }
      else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === sep) { out.push(cur); cur = ''; }
    else cur += c;
  }
  out.push(cur);
  return out;
}

function fromRecord(rec: Record<string, unknown>, where: string, file: string): TextExample {
  const key = TEXT_KEYS.find((k) => typeof rec[k] === 'string');
  if (!key) throw new OptinError('data', `${where}: no text column; expected one of ${TEXT_KEYS.join(', ')} in ${path.basename(file)}`);
  const pairKey = PAIR_KEYS.find((k) => typeof rec[k] === 'string');
  const label = parseLabel(rec.label, where);
  return { text: rec[key] as string, ...(pairKey ? { textPair: rec[pairKey] as string } : {}), ...(label !== undefined ? { label } : {}) };
}

/**
 * Read text examples from .tsv/.csv (header with sentence|text, optional sentence2|text_pair,
 * optional label), .jsonl (same keys) or .txt (one example per line).
 * @param limit keep only the first `limit` examples (after `skip`)
 * @param skip pass over this many examples first
 * @throws OptinError('data') naming the file and line for every problem
 */
export function readTextExamples(file: string, limit?: number, skip = 0): TextExample[] {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OptinError('data', `cannot read calibration data ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const ext = path.extname(file).toLowerCase();
  const lines = raw.split(/\r?\n/).filter((l) => l.trim() !== '');
  const out: TextExample[] = [];
  const max = (limit ?? Infinity) + skip;
  if (ext === '.txt') {
    for (const l of lines) { if (out.length >= max) break; out.push({ text: l }); }
  } else if (ext === '.jsonl') {
    for (let i = 0; i < lines.length && out.length < max; i++) {
      let rec: unknown;
      try { rec = JSON.parse(lines[i]!); } catch { throw new OptinError('data', `${file}:${i + 1}: not valid JSON`); }
      if (!rec || typeof rec !== 'object') throw new OptinError('data', `${file}:${i + 1}: expected a JSON object`);
      out.push(fromRecord(rec as Record<string, unknown>, `${file}:${i + 1}`, file));
    }
  } else if (ext === '.tsv' || ext === '.csv') {
    const sep = ext === '.tsv' ? '\t' : ',';
    if (lines.length === 0) throw new OptinError('data', `${file} is empty; expected a header line and examples`);
    const header = splitLine(lines[0]!, sep).map((h) => h.trim());
    if (!header.some((h) => TEXT_KEYS.includes(h))) {
      throw new OptinError('data', `${file}: header "${header.join(sep === '\t' ? '\\t' : ',')}" has no text column (expected ${TEXT_KEYS.slice(0, 2).join(' or ')})`);
    }
    for (let i = 1; i < lines.length && out.length < max; i++) {
      const cells = splitLine(lines[i]!, sep);
      const rec: Record<string, unknown> = {};
      header.forEach((h, j) => { rec[h] = cells[j]; });
      out.push(fromRecord(rec, `${file}:${i + 1}`, file));
    }
  } else {
    throw new OptinError('data', `${file}: unsupported calibration file type "${ext}"; use .tsv, .csv, .jsonl or .txt`);
  }
  if (out.length <= skip) throw new OptinError('data', skip ? `${file} holds no examples beyond the first ${skip}` : `${file} holds no examples`);
  return out.slice(skip);
}
