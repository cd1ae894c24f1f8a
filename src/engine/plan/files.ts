import * as fs from 'node:fs';
import { OptinError } from '../errors';
import type { LayerShape, ModelStructure } from '../structure/types';
import type { Scores } from '../optin/types';
import { TOOL } from '../version';
import { searchMasks, searchUnderCost, type SearchResult } from './search';
import { macCosts } from './costs';
import { searchChannels, type ChannelAllocation } from './channelSearch';
import { searchHybrid } from './hybridSearch';
import { fixedMs, latencyCosts, predictMs, type LatencyTable } from '../latency/table';
import { SCHEMA_VERSION, type LayerGeometry, type ModelRef, type PlanFile, type PlanLatency, type ScoresFile } from './schema';
import { headCount, outputProjections } from '../structure/layer';

/** Channel groups share the budget uniformly unless asked otherwise (measured: docs/cnn.md, "The choices behind the defaults"). */
export const DEFAULT_ALLOCATION: ChannelAllocation = 'uniform';

/** The part of a measured layer shape the MAC model needs. */
function geometryShape(x: LayerShape): NonNullable<LayerGeometry['shape']> {
  return { hidden: x.hidden, tokens: x.tokens, queries: x.queries, keys: x.keys };
}

/** Model identity + geometry for scores and plans. */
export function modelRef(path: string, sha256: string, st: ModelStructure): ModelRef {
  return {
    path, sha256, architecture: st.architecture, modality: st.modality, hidden: st.hidden, norm: st.norm,
    layers: st.layers.map((l) => ({ heads: headCount(l), headSize: l.attention?.headSize ?? 0, vHeadSize: l.attention?.vHeadSize ?? 0, ffn: l.ffn?.width ?? 0, ...(l.ffn?.gate ? { gated: true } : {}), ...(l.attention?.group ? { group: l.attention.group } : {}), ...(l.attention?.sharedKv ? { sharedKv: true } : {}), ...(l.ffn?.down.blockSize ? { neuronBlock: l.ffn.down.blockSize } : {}), ...(l.shape ? { shape: geometryShape(l.shape) } : {}) })),
    ...(st.notes ? { notes: st.notes } : {}),
    ...(st.layers.some((l) => outputProjections(l).some((x) => x.op === 'MatMulNBits')) ? { quantized: true } : {}),
  };
}

/** Package scores for `optin score --out`. */
export function scoresFile(model: ModelRef, s: Scores, macSeqLen: number): ScoresFile {
  return {
    schema: 'optin-scores', version: SCHEMA_VERSION, tool: { ...TOOL }, created: new Date().toISOString(), model,
    mode: s.mode, ...(s.modeReason ? { modeReason: s.modeReason } : {}), outputLoss: s.outputLoss, provider: s.provider, ...(s.inputsOnDevice ? { inputsOnDevice: true } : {}), seconds: s.seconds,
    calibration: { ...s.calibration, tokenRows: s.tokenRows }, macSeqLen,
    heads: s.heads, neurons: s.neurons, raw: s.raw,
  };
}

function readJson(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OptinError('io', `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new OptinError('data', `${file} is not valid JSON (${(e as Error).message})`);
  }
}

/** Read and validate a scores file. */
export function readScores(file: string): ScoresFile {
  const j = readJson(file, 'scores file');
  if (j.schema !== 'optin-scores') throw new OptinError('data', `${file} is not an OPTIN scores file (schema "${String(j.schema)}")`);
  if (j.version !== SCHEMA_VERSION) throw new OptinError('data', `${file} has scores schema version ${String(j.version)}; this tool reads version ${SCHEMA_VERSION}`);
  const s = j as unknown as ScoresFile;
  const ok = Array.isArray(s.heads) && Array.isArray(s.neurons) && s.model?.layers?.length === s.heads.length &&
    s.model.layers.every((g, l) => s.heads[l]?.length === g.heads && s.neurons[l]?.length === g.ffn);
  if (!ok) throw new OptinError('data', `${file}: scores do not match the model geometry recorded in it`);
  return s;
}

/**
 * Default width multiple of channel plans: onnxruntime's CPU convolutions run odd channel counts no
 * faster (measured on the MNIST ResNet at 0.6: 0.96x with any width, 1.53x with multiples of 8, same
 * accuracy; `npm run bench:cnn`).
 */
export const CHANNEL_MULTIPLE = 8;

/** Plan at a budget from scores (no model needed: this is instant). */
export function makePlan(s: ScoresFile, budget: number, seqLen = s.macSeqLen, multipleOf?: number, allocation: ChannelAllocation = DEFAULT_ALLOCATION): PlanFile {
  if (s.model.channels) {
    const m = multipleOf ?? CHANNEL_MULTIPLE;
    return { ...planFile(s, budget, seqLen, m, searchChannels(s.model.layers.map((g) => g.ffn), s.model.channels.terms, s.neurons, budget, m, allocation)), allocation };
  }
  if (s.model.hybrid) {
    const h = s.model.hybrid, L = h.transformerLayers;
    const ch = { widths: s.model.layers.slice(L).map((g) => g.ffn), terms: h.terms, scores: s.neurons.slice(L) };
    const r = searchHybrid(s.model.layers.slice(0, L), s.model.hidden, seqLen, s.heads.slice(0, L), s.neurons.slice(0, L), ch, budget, { neurons: multipleOf ?? 1, channels: multipleOf ?? CHANNEL_MULTIPLE });
    return planFile(s, budget, seqLen, multipleOf ?? 1, r);
  }
  multipleOf ??= 1;
  const r = searchMasks(s.model.layers, s.model.hidden, seqLen, s.heads, s.neurons, budget, multipleOf);
  return planFile(s, budget, seqLen, multipleOf, r);
}

/**
 * Plan under a latency target (fraction of the dense model's measured latency) with a latency
 * table of the same model: the search spends predicted milliseconds instead of MACs. The plan's
 * `budget` is the fraction of MACs the chosen masks keep.
 * @throws OptinError('data') when the table belongs to another model; OptinError('usage') for a target the fixed part alone exceeds
 */
export function makeLatencyPlan(s: ScoresFile, table: LatencyTable, target: number, seqLen = s.macSeqLen, multipleOf: number = 1): PlanFile {
  if (s.model.channels || s.model.hybrid) throw new OptinError('usage', `${s.model.path}: latency targets are measured per transformer layer; for channel groups use a MAC budget (--budget)`);
  if (!(target > 0 && target <= 1)) throw new OptinError('usage', `latency target ${target} is outside (0, 1]; it is the fraction of the dense latency to keep (0.5 = twice as fast)`);
  if (table.model.sha256 !== s.model.sha256) throw new OptinError('data', `the latency table was measured on ${table.model.path} (sha256 ${table.model.sha256.slice(0, 12)}), not on the scored model ${s.model.path}`);
  if (table.layers.length !== s.model.layers.length) throw new OptinError('data', `the latency table has ${table.layers.length} layers, the model ${s.model.layers.length}`);
  const fixed = fixedMs(table);
  const cap = target * table.denseMs - fixed;
  const r = searchUnderCost(s.model.layers, s.heads, s.neurons, latencyCosts(table), () => cap, multipleOf);
  if (!r) {
    throw new OptinError('usage', `latency target ${target} (${(target * table.denseMs).toFixed(2)} ms) is out of reach: what pruning cannot remove (embeddings, norms, classifier) takes ${fixed.toFixed(2)} ms of the dense ${table.denseMs.toFixed(2)} ms on ${table.provider} (${table.phase === 'decode' ? `one decode step of batch ${table.batch} after ${table.seqLen} tokens` : `batch ${table.batch} x ${table.seqLen}`}), leaving no room for even one attention head`);
  }
  const counts = (m: boolean[][]): number[] => m.map((row) => row.filter(Boolean).length);
  const macs = macCosts(s.model.layers, s.model.hidden, seqLen);
  const perLayer = s.model.layers.map((_, l) => macs.head(l, counts(r.heads)[l]!) + macs.neuron(l, counts(r.neurons)[l]!));
  const baseline = s.model.layers.reduce((a, g, l) => a + macs.head(l, g.heads) + macs.neuron(l, g.ffn), 0);
  const kept = perLayer.reduce((a, b) => a + b, 0);
  const latency: PlanLatency = {
    target, denseMs: table.denseMs, predictedMs: predictMs(table, counts(r.heads), counts(r.neurons)),
    provider: table.provider, batch: table.batch, seqLen: table.seqLen, ...(table.phase ? { phase: table.phase } : {}),
  };
  return planFile(s, kept / baseline, seqLen, multipleOf, { ...r, baseline, kept, perLayerMacs: perLayer }, latency);
}

function planFile(s: ScoresFile, budget: number, seqLen: number, multipleOf: number, r: SearchResult, latency?: PlanLatency): PlanFile {
  const idx = (m: boolean[][]): number[][] => m.map((row) => row.flatMap((k, i) => (k ? [i] : [])));
  const keep = { heads: idx(r.heads), neurons: idx(r.neurons) };
  return {
    schema: 'optin-plan', version: SCHEMA_VERSION, tool: { ...TOOL }, created: new Date().toISOString(), model: s.model, budget, ...(multipleOf > 1 ? { multipleOf } : {}),
    macs: { seqLen, baseline: r.baseline, kept: r.kept, ratio: r.kept / r.baseline },
    ...(latency ? { latency } : {}),
    keep,
    layers: keep.heads.map((h, l) => ({ heads: h.length, neurons: keep.neurons[l]!.length, macs: r.perLayerMacs[l]! })),
    importance: r.importance,
    scores: { heads: s.heads, neurons: s.neurons, mode: s.mode, calibration: s.calibration },
  };
}

/** Read and validate a latency table (`optin latency --out`). */
export function readLatencyTable(file: string): LatencyTable {
  const j = readJson(file, 'latency table');
  if (j.schema !== 'optin-latency' || j.version !== 1) throw new OptinError('data', `${file} is not an OPTIN latency table (schema "${String(j.schema)}", version ${String(j.version)})`);
  const t = j as unknown as LatencyTable;
  const curveOk = (c: { kept?: unknown; ms?: unknown }): boolean => Array.isArray(c?.kept) && Array.isArray(c?.ms) && c.kept.length === c.ms.length && c.kept.length > 0;
  if (!Array.isArray(t.layers) || !(t.denseMs > 0) || !(t.floor?.ms > 0) || !t.layers.every((l) => curveOk(l.heads) && curveOk(l.neurons))) throw new OptinError('data', `${file}: latency table is incomplete (needs denseMs, floor and head/neuron curves per layer)`);
  return t;
}
