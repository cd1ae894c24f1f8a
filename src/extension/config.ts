import * as vscode from 'vscode';
import type { EpChoice } from '../engine/runtime/providers';

/** The `optin.*` settings, read fresh on every use. */
export interface OptinSettings {
  defaultBudget: number;
  calibrationData: string;
  calibrationSamples: number;
  scoringMode: 'exact' | 'fast' | 'auto';
  executionProvider: EpChoice;
  maxSequenceLength: number;
  maskTuning: boolean;
  /** Channel groups (CNNs): repair the consumers of cut channels (default on). */
  channelRepair: boolean;
  outputNaming: string;
  /** When the pruned model's file exists already: ask, keep both (a free name), or replace it. */
  existingOutput: 'ask' | 'keepBoth' | 'replace';
  /** Kept widths are a multiple of this; undefined = automatic (1 for transformers, 8 for channel groups). */
  multipleOf: number | undefined;
  /** What latency targets time on decoders exported with their key/value cache: the whole sequence (prefill) or one decode step. */
  latencyPhase: 'prefill' | 'decode';
}

/** Read the settings (scoped to the model's workspace folder when given). */
export function settings(scope?: vscode.Uri): OptinSettings {
  const c = vscode.workspace.getConfiguration('optin', scope);
  return {
    defaultBudget: c.get<number>('defaultBudget', 0.6),
    calibrationData: c.get<string>('calibration.data', ''),
    calibrationSamples: c.get<number>('calibration.samples', 32),
    scoringMode: c.get<'exact' | 'fast' | 'auto'>('scoringMode', 'auto'),
    executionProvider: c.get<EpChoice>('executionProvider', 'auto'),
    maxSequenceLength: c.get<number>('maxSequenceLength', 128),
    maskTuning: c.get<boolean>('maskTuning', false),
    channelRepair: c.get<boolean>('channelRepair', true),
    outputNaming: c.get<string>('outputNaming', '${name}.optin-${pct}.onnx'),
    existingOutput: c.get<'ask' | 'keepBoth' | 'replace'>('existingOutput', 'ask'),
    latencyPhase: c.get<'prefill' | 'decode'>('latencyPhase', 'prefill') === 'decode' ? 'decode' : 'prefill',
    multipleOf: Math.round(c.get<number>('multipleOf', 0)) >= 1 ? Math.round(c.get<number>('multipleOf', 0)) : undefined,
  };
}

/** The prune request's repair field: mask tuning on when asked; else unset (channel groups repaired) unless channel repair is turned off. */
export function repairRequest(cfg: OptinSettings): { tune?: boolean } {
  return cfg.maskTuning ? { tune: true } : cfg.channelRepair ? {} : { tune: false };
}

/** Output file name from the naming pattern: ${name} = model name without .onnx, ${pct} = budget in %. */
export function outputName(pattern: string, model: string, budget: number): string {
  const name = model.replace(/\.onnx$/i, '');
  const out = pattern.replace(/\$\{name\}/g, name).replace(/\$\{pct\}/g, String(Math.round(budget * 100)));
  return out.toLowerCase().endsWith('.onnx') ? out : `${out}.onnx`;
}
