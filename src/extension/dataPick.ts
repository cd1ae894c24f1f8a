import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DataOptions } from '../engine/data/calibration';
import { discoverData, type DataCandidate } from '../engine/data/discover';
import { settings } from './config';

const memoryKey = (model: vscode.Uri): string => `optin.calibration:${model.fsPath}`;

function skippedNote(modality: string, skipped: string[]): string {
  if (!skipped.length) return '';
  const wants = modality === 'vision' ? 'image folders and .jsonl feeds' : modality === 'text' ? 'text files' : '.jsonl feeds';
  return ` · not offered: ${skipped.slice(0, 3).join(', ')}${skipped.length > 3 ? ` and ${skipped.length - 3} more` : ''} (this ${modality} model reads ${wants})`;
}

function describe(c: DataCandidate): string {
  const where = c.nearness === 'beside' ? '' : c.nearness === 'sibling' ? ' · nearby folder' : ' · in the workspace';
  const split = c.split === 'test' ? ' · a test split (better kept for measuring accuracy)' : '';
  return `${c.what}${where}${split}`;
}

/**
 * Calibration data for a model: the `optin.calibration.data` setting ("synthetic" for none), or a
 * quick pick of data that fits its modality, found beside the model, in sibling folders and in the
 * workspace (nearest and training splits first; the last choice for this model first of all,
 * remembered in `memory`), a file/folder picker, or synthetic data with a warning. Returns
 * undefined when the user cancels.
 */
export async function pickCalibration(model: vscode.Uri, modality = 'text', memory?: vscode.Memento): Promise<DataOptions | undefined> {
  const cfg = settings(model);
  const base: DataOptions = { samples: cfg.calibrationSamples, maxLength: cfg.maxSequenceLength };
  const configured = cfg.calibrationData.trim();
  if (configured === 'synthetic') return { ...base, synthetic: 'chosen' };
  if (configured) {
    const folder = vscode.workspace.getWorkspaceFolder(model)?.uri.fsPath ?? path.dirname(model.fsPath);
    return { ...base, data: path.isAbsolute(configured) ? configured : path.join(folder, configured) };
  }
  type Item = vscode.QuickPickItem & { data?: string; browse?: boolean };
  const roots = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const found = discoverData(model.fsPath, modality, roots);
  const last = memory?.get<string>(memoryKey(model));
  const remembered = last && fs.existsSync(last) ? last : undefined;
  const label = (p: string): string => path.relative(path.dirname(model.fsPath), p) || path.basename(p);
  const items: Item[] = [
    ...(remembered ? [{ label: label(remembered), description: 'last used for this model', data: remembered }] : []),
    ...found.fits.filter((c) => c.path !== remembered).map((c) => ({ label: label(c.path), description: describe(c), data: c.path })),
    { label: '$(folder-opened) Browse...', browse: true },
    { label: '$(warning) Synthetic data', description: 'random tokens / noise images: scores are much less meaningful' },
  ];
  const title = `Calibration data for ${path.basename(model.fsPath)} (a ${modality} model)`;
  const pick = await vscode.window.showQuickPick(items, { title, placeHolder: `A few dozen examples of what the model sees${skippedNote(modality, found.skipped)}`, ignoreFocusOut: true });
  if (!pick) return undefined;
  let data: string | undefined = pick.data;
  if (pick.browse) {
    const chosen = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: true, defaultUri: vscode.Uri.file(path.dirname(model.fsPath)), openLabel: 'Use as calibration data' });
    if (!chosen?.[0]) return undefined;
    data = chosen[0].fsPath;
  }
  if (data) await memory?.update(memoryKey(model), data);
  return data ? { ...base, data } : { ...base, synthetic: 'chosen' };
}
