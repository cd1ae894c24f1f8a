import * as path from 'node:path';
import { OptinError } from '../engine/errors';
import { EngineClient } from '../engine/worker/client';
import type { DataOptions } from '../engine/data/calibration';
import { parseInputSize } from '../engine/data/inputSize';
import { EP_CHOICES, type EpChoice } from '../engine/runtime/providers';
import { intFlag, type Args } from './args';
import { removeOwnTemps } from '../engine/util/temps';
import { ProgressBar } from './progress';
import type { ScoreProgress } from '../engine/optin/types';


/** Flags every data-reading command accepts. */
export const DATA_FLAGS = ['data', 'tokenizer', 'samples', 'max-length', 'preprocessor', 'input-size'] as const;

/** A string flag, or undefined. */
export function str(args: Args, k: string): string | undefined {
  const v = args.flags.get(k);
  return typeof v === 'string' ? v : undefined;
}

/** Calibration/evaluation data options from --data/--tokenizer/--samples/--max-length/--preprocessor/--input-size. */
export function dataOptions(args: Args, dataFlag = 'data'): DataOptions {
  const samples = intFlag(args, 'samples');
  const maxLength = intFlag(args, 'max-length');
  const o: DataOptions = {};
  if (str(args, dataFlag)) o.data = str(args, dataFlag)!;
  if (str(args, 'tokenizer')) o.tokenizer = str(args, 'tokenizer')!;
  if (samples) o.samples = samples;
  if (maxLength) o.maxLength = maxLength;
  if (str(args, 'preprocessor')) o.preprocessor = str(args, 'preprocessor')!;
  if (str(args, 'input-size')) o.inputSize = parseInputSize(str(args, 'input-size')!);
  return o;
}

/** --ep, validated. */
export function epFlag(args: Args): EpChoice {
  const ep = (args.flags.get('ep') ?? 'cpu') as EpChoice;
  if (!EP_CHOICES.includes(ep)) throw new OptinError('usage', `--ep must be one of ${EP_CHOICES.join(', ')}`);
  return ep;
}

/** Scoring-mode flags shared by `score` and `prune`: --mode, --neuron-examples, --time-budget (minutes). */
export const MODE_FLAGS = ['mode', 'neuron-examples', 'horizon', 'time-budget'] as const;

/** --mode exact|fast|auto with its options, validated. */
export function modeOptions(args: Args): { mode: 'exact' | 'fast' | 'auto'; neuronExamples?: number; horizon?: number; timeBudget?: number } {
  const mode = (str(args, 'mode') ?? 'exact') as 'exact' | 'fast' | 'auto';
  if (!['exact', 'fast', 'auto'].includes(mode)) throw new OptinError('usage', `--mode must be exact, fast or auto, got "${mode}"`);
  const n = intFlag(args, 'neuron-examples');
  const horizon = intFlag(args, 'horizon');
  const tb = str(args, 'time-budget');
  const minutes = tb === undefined ? undefined : Number(tb);
  if (minutes !== undefined && !(minutes > 0)) throw new OptinError('usage', `--time-budget must be a positive number of minutes, got "${tb}"`);
  return { mode, ...(n ? { neuronExamples: n } : {}), ...(horizon ? { horizon } : {}), ...(minutes ? { timeBudget: minutes * 60 } : {}) };
}

/** --multiple-of N (kept neurons per layer a multiple of N), default 1. */
export function multipleOfFlag(args: Args): number | undefined {
  const v = args.flags.get('multiple-of');
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(typeof v === 'string' && Number.isInteger(n) && n >= 1)) throw new OptinError('usage', `--multiple-of must be a whole number >= 1, got "${String(v)}"`);
  return n;
}

/** `--allocation uniform|global` (channel groups; unset: the default of plan/files.ts). */
export function allocationFlag(args: Args): 'uniform' | 'global' | undefined {
  const v = args.flags.get('allocation');
  if (v === undefined) return undefined;
  if (v !== 'uniform' && v !== 'global') throw new OptinError('usage', `--allocation must be uniform (every channel group keeps about the same share, its best channels) or global (one ranking over all channels, as the paper), got "${String(v)}"`);
  return v;
}

/** `--tune` / `--refit` / `--no-tune` as request fields (unset: the default, a repair for channel groups only). */
export function repairFlags(args: Args): { tune?: boolean; refit?: true } {
  const on = args.flags.has('tune'), off = args.flags.has('no-tune'), refit = args.flags.has('refit');
  if (off && (on || refit)) throw new OptinError('usage', '--no-tune turns the repair off; it cannot go with --tune or --refit');
  return { ...(on ? { tune: true } : off ? { tune: false } : {}), ...(refit ? { refit: true } : {}) };
}

/** `--budget C` (fraction of MACs) or `--latency C` (fraction of the dense latency): exactly one, in (0, 1]. */
export function targetFlag(args: Args): { kind: 'macs' | 'latency'; value: number } {
  const l = args.flags.get('latency');
  if (l === undefined) return { kind: 'macs', value: budgetFlag(args) };
  if (args.flags.has('budget')) throw new OptinError('usage', 'give --budget (fraction of MACs) or --latency (fraction of the dense latency), not both');
  const n = Number(l);
  if (typeof l !== 'string' || !Number.isFinite(n) || !(n > 0 && n <= 1)) throw new OptinError('usage', `--latency ${String(l)} is outside (0, 1]; it is the fraction of the dense model's measured latency to keep (0.5 = twice as fast)`);
  return { kind: 'latency', value: n };
}

/** The benchmark shape of `prune`/`sweep`: --bench-batch (32), --bench-seq-len (48), --bench-runs (20). */
export function benchFlags(args: Args): { batch: number; seqLen: number; runs: number } {
  return { batch: intFlag(args, 'bench-batch') ?? 32, seqLen: intFlag(args, 'bench-seq-len') ?? 48, runs: intFlag(args, 'bench-runs') ?? 20 };
}

/** Progress bar and step/warning lines of a long job on stderr (bar and steps silent under --json/--quiet; warnings always). */
export function jobEvents(args: Args): { bar?: ProgressBar; progress: (p: ScoreProgress, warning?: string) => void; step: (s: string) => void } {
  const quiet = args.flags.has('json') || args.flags.has('quiet');
  const bar = quiet ? undefined : new ProgressBar();
  return {
    ...(bar ? { bar } : {}),
    progress: (p, warning) => { if (warning) process.stderr.write(`optin: warning: ${warning}\n`); bar?.update(p); },
    step: (s) => { bar?.done(); if (!quiet) process.stderr.write(`${s}...\n`); },
  };
}

/** A budget in (0, 1]. */
export function budgetFlag(args: Args): number {
  const b = args.flags.get('budget');
  if (typeof b !== 'string') throw new OptinError('usage', '--budget C is required (fraction of MACs to keep: 0.6 = keep 60% of MACs), or --latency C (fraction of the dense latency)');
  const n = Number(b);
  if (!Number.isFinite(n) || !(n > 0 && n <= 1)) throw new OptinError('usage', `--budget ${b} is outside (0, 1]; it is the fraction of MACs to keep (0.6 = keep 60% of MACs)`);
  return n;
}

/** The engine process for a command; what it prints (onnxruntime's warnings) is shown only with OPTIN_DEBUG set. */
export function newEngine(): EngineClient {
  return new EngineClient(path.join(__dirname, 'engineWorker.js'), process.env.OPTIN_DEBUG ? (line) => process.stderr.write(`engine: ${line}\n`) : undefined);
}

/**
 * Run with an engine process. Ctrl-C cancels the job (exit 130, nothing written); a second Ctrl-C or
 * SIGTERM stops at once: the engine process is killed and this process's temporary files in the folders
 * of `outputs` are removed before exiting (130 / 143).
 */
export async function withEngine(fn: (engine: EngineClient, signal: AbortSignal) => Promise<number>, outputs: string[] = []): Promise<number> {
  const engine = newEngine();
  const ac = new AbortController();
  let stopping = false;
  const stopNow = (code: number, why: string): void => {
    stopping = true;
    process.stderr.write(`\noptin: ${why}; stopping now; no partial file is left\n`);
    const enginePid = engine.pid;
    void engine.dispose().finally(() => {
      for (const o of outputs) removeOwnTemps(path.dirname(path.resolve(o)), [enginePid]);
      process.exit(code);
    });
  };
  const onSigint = (): void => {
    if (ac.signal.aborted) return stopNow(130, 'interrupted again');
    process.stderr.write('\ncancelling... (Ctrl-C again to stop at once)\n');
    ac.abort();
  };
  const onSigterm = (): void => stopNow(143, 'terminated (SIGTERM)');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    return await fn(engine, ac.signal);
  } catch (e) {
    if (e instanceof OptinError && e.code === 'cancelled') {
      if (!stopping) process.stderr.write('optin: cancelled; nothing was written\n');
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    await engine.dispose();
  }
}
