import * as fs from 'node:fs';
import * as path from 'node:path';
import { TEXT_EXT, imageCount } from './kinds';

/** How near a candidate is to the model: its folder, a sibling folder, elsewhere in the workspace. */
export type Nearness = 'beside' | 'sibling' | 'workspace';

/** Which split a data file or folder looks like, from its name and the names of the folders above it. */
export type Split = 'train' | 'test' | 'other';

/** Calibration data that fits a model. */
export interface DataCandidate {
  path: string;
  /** What it is ("text examples (.tsv)", "image folder, 40 images"). */
  what: string;
  nearness: Nearness;
  split: Split;
}

/** Candidates best first, and data-looking entries that do not fit the model. */
export interface Discovery {
  fits: DataCandidate[];
  /** Paths (relative to the model's folder) of data the model cannot read. */
  skipped: string[];
}

const NOT_DATA = /^(license|readme|notice|changelog|requirements|package|tsconfig|tokenizer|vocab|merges|special_tokens|config|preprocessor)/i;
const SKIP_DIR = new Set(['node_modules', '.git', 'dist', 'out', 'build', '__pycache__', '.venv', 'venv']);
const TEST = /(^|[^a-z])(test|dev|val|valid|validation|eval|holdout|heldout)([^a-z]|$)/i;
const TRAIN = /(^|[^a-z])(train|training|calib|calibration)([^a-z]|$)/i;
/** Entries visited at most, so a huge workspace never stalls the pick. */
const MAX_VISITS = 20_000;

function splitOf(rel: string): Split {
  if (TRAIN.test(rel)) return 'train';
  if (TEST.test(rel)) return 'test';
  return 'other';
}

const NEARNESS_RANK: Record<Nearness, number> = { beside: 0, sibling: 1, workspace: 2 };
const SPLIT_RANK: Record<Split, number> = { train: 0, other: 1, test: 2 };

/**
 * Calibration data for a model, found where it usually lives: beside the model (and one folder
 * down), in the sibling folders of the model's folder and of its parent (`models/bert/` beside
 * `data/sst2/`, two levels down) when they are inside a workspace root, then anywhere in the
 * workspace roots (three levels down). Text files fit text models,
 * image folders (ImageFolder roots, not their class subfolders) fit vision models and CNNs, `.jsonl`
 * feeds fit any. Sorted nearest first, then training splits before unnamed ones before test
 * splits, then larger first.
 */
export function discoverData(model: string, modality: string, workspaceRoots: string[] = []): Discovery {
  const modelDir = path.dirname(path.resolve(model));
  const found = new Map<string, DataCandidate & { size: number }>();
  const skipped = new Set<string>();
  const seen = new Set<string>();
  let visits = 0;
  const scan = (dir: string, depth: number, nearness: Nearness): void => {
    if (seen.has(`${dir}\0${depth}`) || visits > MAX_VISITS) return;
    seen.add(`${dir}\0${depth}`);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (++visits > MAX_VISITS) return;
      if (e.name.startsWith('.') || SKIP_DIR.has(e.name)) continue;
      const p = path.join(dir, e.name);
      if (found.has(p)) continue;
      const rel = path.relative(modelDir, p);
      if (e.isFile()) {
        const ext = path.extname(e.name).toLowerCase();
        if (!TEXT_EXT.has(ext) || NOT_DATA.test(e.name)) continue;
        if (ext === '.jsonl' || modality === 'text') {
          found.set(p, { path: p, what: ext === '.jsonl' ? 'examples or feeds (.jsonl)' : `text examples (${ext})`, nearness, split: splitOf(rel), size: fs.statSync(p).size });
        } else skipped.add(rel);
      } else if (e.isDirectory()) {
        const images = imageCount(p);
        if (images > 0) {
          if (modality === 'vision') found.set(p, { path: p, what: `image folder, ${images} images`, nearness, split: splitOf(rel), size: images });
          else skipped.add(`${rel}/`);
        } else if (depth > 0) scan(p, depth - 1, nearness);
      }
    }
  };
  scan(modelDir, 1, 'beside');
  const roots = workspaceRoots.map((r) => path.resolve(r));
  const inWorkspace = (p: string): boolean => roots.some((r) => p === r || p.startsWith(r + path.sep));
  // Sibling folders of the model's folder and of its parent (`models/bert/` beside `data/sst2/`),
  // as long as they are inside the workspace.
  for (let child = modelDir, up = path.dirname(modelDir), level = 0; level < 2 && up !== child && inWorkspace(up); child = up, up = path.dirname(up), level++) {
    let siblings: fs.Dirent[] = [];
    try {
      siblings = fs.readdirSync(up, { withFileTypes: true });
    } catch { /* unreadable: nothing there */ }
    for (const e of siblings.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(up, e.name);
      if (e.isDirectory() && p !== child && !e.name.startsWith('.') && !SKIP_DIR.has(e.name)) scan(p, 2, 'sibling');
    }
    scan(up, 0, 'sibling');
  }
  for (const root of roots) scan(root, 3, 'workspace');
  const fits = [...found.values()].sort((a, b) => NEARNESS_RANK[a.nearness] - NEARNESS_RANK[b.nearness] || SPLIT_RANK[a.split] - SPLIT_RANK[b.split] || b.size - a.size || a.path.localeCompare(b.path));
  return { fits: fits.slice(0, 100).map(({ size: _size, ...c }) => c), skipped: [...skipped] };
}

/**
 * The test split that goes with a calibration file or folder: a sibling whose name is the
 * calibration's with train replaced by test, dev or val (`train.tsv` -> `test.tsv`, `train/` ->
 * `test/`, `sst2-train.tsv` -> `sst2-dev.tsv`). Undefined when there is none.
 */
export function testSplitFor(calibration: string): string | undefined {
  const dir = path.dirname(calibration);
  const base = path.basename(calibration);
  if (!TRAIN.test(base)) return undefined;
  for (const word of ['test', 'dev', 'val', 'valid', 'validation']) {
    const candidate = path.join(dir, base.replace(/train(ing)?|calib(ration)?/i, word));
    if (candidate !== calibration && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}
