import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DataOptions } from '../engine/data/calibration';
import { TEXT_EXT, imageCount } from '../engine/data/kinds';
import { settings } from './config';

/** Calibration data found beside a model that fits it, best first, and what was left out. */
export interface Candidates {
  /** Files or folders the model can read, best match first. */
  fits: Array<{ path: string; what: string }>;
  /** Data-looking files or folders that do not fit this model. */
  skipped: string[];
}

const NOT_DATA = /^(license|readme|notice|changelog|requirements)/i;

/**
 * Calibration data beside a model (its folder and one level down) that fits its modality: text
 * files for text models, image folders (not their class subfolders) for vision models, feeds
 * `.jsonl` for any. Files named train* come first, then the largest.
 */
export function candidates(model: string, modality = 'text'): Candidates {
  const fits: Array<{ path: string; what: string; rank: number }> = [];
  const skipped: string[] = [];
  const scan = (d: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      const train = /train/i.test(path.relative(path.dirname(model), p)) ? 1e9 : 0;
      if (e.isFile()) {
        const ext = path.extname(e.name).toLowerCase();
        if (!TEXT_EXT.has(ext) || NOT_DATA.test(e.name)) continue;
        const size = fs.statSync(p).size;
        if (ext === '.jsonl' || modality === 'text') fits.push({ path: p, what: ext === '.jsonl' ? 'examples or feeds (.jsonl)' : `text examples (${ext})`, rank: train + size });
        else skipped.push(path.relative(path.dirname(model), p));
      } else if (e.isDirectory()) {
        const images = imageCount(p);
        if (images > 0) {
          if (modality === 'vision') fits.push({ path: p, what: `image folder, ${images} images`, rank: train + images });
          else skipped.push(`${path.relative(path.dirname(model), p)}/`);
        } else if (depth > 0) scan(p, depth - 1);
      }
    }
  };
  scan(path.dirname(model), 1);
  fits.sort((a, b) => b.rank - a.rank);
  return { fits: fits.slice(0, 100).map(({ path: p, what }) => ({ path: p, what })), skipped };
}

function skippedNote(modality: string, skipped: string[]): string {
  if (!skipped.length) return '';
  const wants = modality === 'vision' ? 'image folders and .jsonl feeds' : modality === 'text' ? 'text files' : '.jsonl feeds';
  return ` · not offered: ${skipped.slice(0, 3).join(', ')}${skipped.length > 3 ? ` and ${skipped.length - 3} more` : ''} (this ${modality} model reads ${wants})`;
}

/**
 * Calibration data for a model: the `optin.calibration.data` setting ("synthetic" for none), or a
 * quick pick of data beside the model that fits its modality (best match first), a file/folder
 * picker, or synthetic data with a warning. Returns undefined when the user cancels.
 */
export async function pickCalibration(model: vscode.Uri, modality = 'text'): Promise<DataOptions | undefined> {
  const cfg = settings(model);
  const base: DataOptions = { samples: cfg.calibrationSamples, maxLength: cfg.maxSequenceLength };
  const configured = cfg.calibrationData.trim();
  if (configured === 'synthetic') return { ...base, synthetic: 'chosen' };
  if (configured) {
    const folder = vscode.workspace.getWorkspaceFolder(model)?.uri.fsPath ?? path.dirname(model.fsPath);
    return { ...base, data: path.isAbsolute(configured) ? configured : path.join(folder, configured) };
  }
  type Item = vscode.QuickPickItem & { data?: string; browse?: boolean };
  const found = candidates(model.fsPath, modality);
  const items: Item[] = [
    ...found.fits.map((c) => ({ label: path.relative(path.dirname(model.fsPath), c.path), description: c.what, data: c.path })),
    { label: '$(folder-opened) Browse...', browse: true },
    { label: '$(warning) Synthetic data', description: 'random tokens / noise images: scores are much less meaningful' },
  ];
  const title = `Calibration data for ${path.basename(model.fsPath)} (a ${modality} model)`;
  const pick = await vscode.window.showQuickPick(items, { title, placeHolder: `A few dozen examples of what the model sees${skippedNote(modality, found.skipped)}`, ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.browse) {
    const chosen = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: true, defaultUri: vscode.Uri.file(path.dirname(model.fsPath)), openLabel: 'Use as calibration data' });
    return chosen?.[0] ? { ...base, data: chosen[0].fsPath } : undefined;
  }
  return pick.data ? { ...base, data: pick.data } : { ...base, synthetic: 'chosen' };
}
