import { requireFloatWeights } from './structure/linear';
import * as fs from 'node:fs';
import { inputSizeFor } from './data/inputSize';
import * as path from 'node:path';
import { OptinError } from './errors';
import { loadModel, type OnnxModel } from './onnx/model';
import { analyzeModel } from './analyze';
import type { ModelStructure } from './structure/types';
import { loadCalibration, type DataModel, type DataOptions } from './data/calibration';
import { freeBytes } from './util/atomic';
import { removeStaleTemps } from './util/temps';
import { TEXT_EXT } from './data/kinds';
import { outputProjections } from './structure/layer';

/** What a run is about to read and write; checked before any scoring starts. */
export interface PreflightRequest {
  model: string;
  /** Calibration data (no `data` = synthetic). */
  data?: DataOptions;
  /** Labelled evaluation data, when the run evaluates. */
  evalData?: DataOptions;
  /** The pruned model's path: must be writable, not a folder, not the input, with room for about the model's size. */
  out?: string;
  /** Small files the run writes (scores, plans): writable and not folders. */
  files?: string[];
  /** A repair that rewrites transformer weights (refused up front for block-quantized weights). */
  repair?: '--tune' | '--refit';
}

/** What preflight found. */
export interface PreflightReport {
  model: string;
  modality: ModelStructure['modality'];
  /** Bytes the pruned model may need at most (the input model's size, external data included). */
  modelBytes: number;
  /** Free bytes where the pruned model goes, when an output was given and the OS reports it. */
  freeBytes?: number;
  /** Stale temporary files of killed runs removed from the output folders. */
  removedTemps: string[];
}

const MB = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;

function modelBytes(m: OnnxModel): number {
  const dir = path.dirname(m.path);
  const data = new Set<string>();
  for (const t of m.proto.graph!.initializer) {
    const loc = t.externalData.find((e) => e.key === 'location');
    if (loc) data.add(path.join(dir, loc.value));
  }
  return m.fileBytes + [...data].reduce((a, f) => a + (fs.existsSync(f) ? fs.statSync(f).size : 0), 0);
}

/** One line saying what data a model takes, e.g. `text (inputs input_ids, attention_mask)`. */
export function modalityWords(st: DataModel): string {
  const names = st.inputs.map((i) => `${i.name} [${i.shape.join(',')}]`).join(', ');
  if (st.modality === 'text') return `a text model (inputs ${names})`;
  if (st.modality === 'vision') return `a vision model (input ${names})`;
  return `a model of named tensors (inputs ${names})`;
}

function wanted(st: DataModel): string {
  if (st.modality === 'text') return 'a .tsv/.csv/.txt/.jsonl file of sentences (or a feeds .jsonl)';
  if (st.modality === 'vision') return 'an image folder (one subfolder per class, or images directly) or a feeds .jsonl';
  return 'a feeds .jsonl (one JSON object of input tensors per line)';
}

async function checkData(m: OnnxModel, st: DataModel, d: DataOptions | undefined, what: string): Promise<void> {
  if (!d?.data) return;
  const p = path.resolve(d.data);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch (e) {
    throw new OptinError('data', `${what} ${p} cannot be read (${(e as NodeJS.ErrnoException).code}); ${m.path} is ${modalityWords(st)} and takes ${wanted(st)}`);
  }
  const ext = path.extname(p).toLowerCase();
  if (stat.isDirectory() && st.modality !== 'vision') {
    throw new OptinError('data', `${what} ${p} is a folder, but ${m.path} is ${modalityWords(st)}: give ${wanted(st)}`);
  }
  if (stat.isDirectory()) {
    const pre = d.preprocessor ?? path.join(path.dirname(m.path), 'preprocessor_config.json');
    if (!fs.existsSync(pre)) {
      throw new OptinError('data', `no ${path.basename(pre)} at ${pre}: images are resized and normalised as the model was trained (size, mean, std), so put the model's Hugging Face preprocessor_config.json next to it or pass --preprocessor FILE`);
    }
  }
  if (stat.isFile()) {
    if (stat.size === 0) throw new OptinError('data', `${what} ${p} is empty`);
    if (st.modality === 'vision' && ext !== '.jsonl') throw new OptinError('data', `${what} ${p} is a ${ext || 'extension-less'} file, but ${m.path} is ${modalityWords(st)}: give ${wanted(st)}`);
    if (st.modality === 'text' && !TEXT_EXT.has(ext)) throw new OptinError('data', `${what} ${p} is a ${ext || 'extension-less'} file, but ${m.path} is ${modalityWords(st)}: give ${wanted(st)}`);
    if (st.modality === 'hidden-states' && ext !== '.jsonl') throw new OptinError('data', `${what} ${p} is a ${ext || 'extension-less'} file, but ${m.path} is ${modalityWords(st)}: give ${wanted(st)}`);
  }
  // Read two examples for real: columns, tokenizer, preprocessor and image decoding all fail here.
  await loadCalibration(m.path, st, { ...d, samples: 2 });
}

/**
 * Check a destination for a pruned model (or a small file when `bytes` is 0): not a folder, not
 * the input, in an existing writable folder with room for `bytes`; stale temp files of killed runs
 * there are removed.
 * @returns the free bytes there (when known) and the temp files removed
 */
export function checkOutput(input: string, out: string, bytes: number): { free?: number; removed: string[] } {
  const abs = path.resolve(out);
  const dir = path.dirname(abs);
  const same = (a: string, b: string): boolean => {
    if (path.resolve(a) === path.resolve(b)) return true;
    try {
      const x = fs.statSync(a), y = fs.statSync(b);
      return x.dev === y.dev && x.ino === y.ino;
    } catch {
      return false;
    }
  };
  if (same(abs, input)) throw new OptinError('usage', `output ${abs} is the input model; OPTIN never overwrites the original`);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) {
    throw new OptinError('usage', `output ${abs} is a folder; give a file path such as ${path.join(abs, path.basename(input).replace(/\.onnx$/i, '') + '.optin.onnx')}`);
  }
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new OptinError('io', `cannot write ${abs}: folder ${dir} does not exist`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new OptinError('io', `cannot write to ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; choose another output path`);
  }
  const removed = removeStaleTemps(dir);
  const free = freeBytes(dir);
  const need = bytes > 0 ? bytes + (1 << 20) : 0;
  if (free !== undefined && need > free) {
    throw new OptinError('io', `not enough free space for ${abs}: it needs about ${MB(need)} (the model's size), ${MB(free)} free in ${dir}`);
  }
  return { ...(free !== undefined ? { free } : {}), removed };
}

/**
 * Everything that can be checked before scoring, in about a second: the model decodes and is a
 * supported float32 encoder, the data fits the model's inputs (modality named), tokenizer and
 * preprocessor are there, and every destination can take its file.
 * @throws OptinError with one line naming the file and what was expected
 */
export async function preflight(req: PreflightRequest): Promise<PreflightReport> {
  const m = loadModel(req.model);
  const a = await analyzeModel(m, inputSizeFor(req.model, req.data));
  const st: DataModel = a.kind === 'transformer' ? a.st : a.cs;
  if (req.repair && a.kind === 'transformer') {
    requireFloatWeights(m.path, a.st.layers.flatMap(outputProjections), `the repair (${req.repair})`);
  }
  await checkData(m, st, req.data, 'calibration data');
  await checkData(m, st, req.evalData, 'evaluation data');
  const bytes = modelBytes(m);
  const removed: string[] = [];
  for (const f of req.files ?? []) removed.push(...checkOutput(m.path, f, 0).removed);
  let free: number | undefined;
  if (req.out) {
    const o = checkOutput(m.path, req.out, bytes);
    removed.push(...o.removed);
    free = o.free;
  }
  return { model: m.path, modality: st.modality, modelBytes: bytes, ...(free !== undefined ? { freeBytes: free } : {}), removedTemps: removed };
}
