import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DataOptions } from '../engine/data/calibration';
import { settings } from './config';

const DATA_EXT = new Set(['.tsv', '.csv', '.jsonl', '.txt']);

/** Candidate calibration data beside a model: text files and folders (image folders, data folders). */
export function candidates(model: string): string[] {
  const dir = path.dirname(model);
  const out: string[] = [];
  const scan = (d: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      if (e.isFile() && DATA_EXT.has(path.extname(e.name).toLowerCase()) && !/^(license|readme|notice)/i.test(e.name)) out.push(p);
      else if (e.isDirectory()) {
        out.push(p);
        if (depth > 0) scan(p, depth - 1);
      }
    }
  };
  scan(dir, 1);
  return out.slice(0, 100);
}

/**
 * Calibration data for a model: the `optin.calibration.data` setting ("synthetic" for none), or a
 * quick pick of data found beside the model, a file/folder picker, or synthetic data with a warning.
 * Returns undefined when the user cancels.
 */
export async function pickCalibration(model: vscode.Uri): Promise<DataOptions | undefined> {
  const cfg = settings(model);
  const base: DataOptions = { samples: cfg.calibrationSamples, maxLength: cfg.maxSequenceLength };
  const configured = cfg.calibrationData.trim();
  if (configured === 'synthetic') return base;
  if (configured) {
    const folder = vscode.workspace.getWorkspaceFolder(model)?.uri.fsPath ?? path.dirname(model.fsPath);
    return { ...base, data: path.isAbsolute(configured) ? configured : path.join(folder, configured) };
  }
  type Item = vscode.QuickPickItem & { data?: string; browse?: boolean };
  const items: Item[] = [
    ...candidates(model.fsPath).map((p) => ({ label: path.relative(path.dirname(model.fsPath), p), description: fs.statSync(p).isDirectory() ? 'folder' : 'file', data: p })),
    { label: '$(folder-opened) Browse...', browse: true },
    { label: '$(warning) Synthetic data', description: 'random tokens / noise images: scores are much less meaningful' },
  ];
  const pick = await vscode.window.showQuickPick(items, { placeHolder: 'Calibration data for OPTIN (a few dozen examples of what the model sees)', ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.browse) {
    const chosen = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: true, defaultUri: vscode.Uri.file(path.dirname(model.fsPath)), openLabel: 'Use as calibration data' });
    return chosen?.[0] ? { ...base, data: chosen[0].fsPath } : undefined;
  }
  return pick.data ? { ...base, data: pick.data } : base;
}
